# The shared internal library: used by the daemon, blobcachectl and kmod-helpers.
noinst_LIBRARIES += daemon/lib/libblobcache.a
daemon_lib_libblobcache_a_SOURCES = \
	daemon/lib/macros.h \
	daemon/lib/log.c daemon/lib/log.h \
	daemon/lib/io.c daemon/lib/io.h \
	daemon/lib/names.c daemon/lib/names.h \
	daemon/lib/parse.c daemon/lib/parse.h \
	daemon/lib/catalogue.c daemon/lib/catalogue.h \
	daemon/lib/erofs.c daemon/lib/erofs.h \
	daemon/lib/erofs_write.c daemon/lib/erofs_write.h \
	daemon/lib/verify.c daemon/lib/verify.h
daemon_lib_libblobcache_a_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS)
COMMON_LIBS = daemon/lib/libblobcache.a $(INIH_LIBS)

# The fill core (event loop, worker pool, origins, chunk fills, chunk maps): linked by the daemon
# and by the host benchmark bench/fill-core, so that the benchmark measures the daemon's own code.
noinst_LIBRARIES += daemon/core/libfillcore.a
daemon_core_libfillcore_a_SOURCES = \
	daemon/core/loop.c daemon/core/loop.h \
	daemon/core/workpool.c daemon/core/workpool.h \
	daemon/core/origin.h daemon/core/origin_file.c \
	daemon/core/http.c daemon/core/http.h daemon/core/origin_http.c \
	daemon/core/fill.c daemon/core/fill.h \
	daemon/core/chunkmap.c daemon/core/chunkmap.h
daemon_core_libfillcore_a_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS) $(CURL_CFLAGS)
FILLCORE_LIBS = daemon/core/libfillcore.a $(COMMON_LIBS) $(CRYPTO_LIBS) $(CURL_LIBS) -lpthread

# blobcached: the daemon, in layers whose includes point one way (each uses only those above it):
#   lib/       shared with the CLI and kmod-helpers: logging, names, catalogue, EROFS, digests
#   core/      the fill core: event loop, origins, chunk fills, models, cache space
#   frontend/  the kernel interfaces that turn reads into fills (cachefiles on-demand, ublk)
#   ops/       operations around them: control socket, managed mounts, probes, systemd
#   main.c and configfile.c put them together.
sbin_PROGRAMS += daemon/blobcached
daemon_blobcached_SOURCES = \
	daemon/main.c \
	daemon/configfile.c daemon/configfile.h \
	daemon/core/models.c daemon/core/models.h \
	daemon/core/mountinfo.c daemon/core/mountinfo.h \
	daemon/core/space.c daemon/core/space.h daemon/core/spacepolicy.c daemon/core/spacepolicy.h \
	daemon/core/spacescan.c daemon/core/spacescan.h \
	daemon/frontend/msg.c daemon/frontend/msg.h \
	daemon/frontend/ondemand.c daemon/frontend/ondemand.h \
	daemon/frontend/ondemand_records.c daemon/frontend/ondemand_records.h \
	daemon/frontend/holder.c daemon/frontend/holder.h \
	daemon/frontend/ublk.c daemon/frontend/ublk.h \
	daemon/frontend/ublkplan.c daemon/frontend/ublkplan.h \
	daemon/ops/control.c daemon/ops/control.h \
	daemon/ops/cachectl.c daemon/ops/cachectl.h \
	daemon/ops/probe.c daemon/ops/probe.h \
	daemon/ops/cachevol.c daemon/ops/cachevol.h \
	daemon/ops/catsync.c daemon/ops/catsync.h \
	daemon/ops/mounts.c daemon/ops/mounts.h daemon/ops/mountpolicy.c daemon/ops/mountpolicy.h \
	daemon/ops/linkwatch.c daemon/ops/linkwatch.h \
	daemon/ops/sdnotify.c daemon/ops/sdnotify.h \
	daemon/ops/caps.c daemon/ops/caps.h
daemon_blobcached_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS) $(CURL_CFLAGS) $(MHD_CFLAGS) \
	$(SYSTEMD_CFLAGS) $(CAP_CFLAGS) $(MOUNT_CFLAGS) $(NL_CFLAGS) $(URING_CFLAGS)
daemon_blobcached_LDADD = daemon/core/libfillcore.a $(COMMON_LIBS) $(CRYPTO_LIBS) $(CURL_LIBS) $(MHD_LIBS) -lpthread \
	$(SYSTEMD_LIBS) $(CAP_LIBS) $(MOUNT_LIBS) $(NL_LIBS) $(URING_LIBS)

include daemon/cli/local.mk

dist_man_MANS += man/blobcached.8 man/blobcached.conf.5
