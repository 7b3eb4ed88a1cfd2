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
	daemon/lib/verify.c daemon/lib/verify.h
daemon_lib_libblobcache_a_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS)
COMMON_LIBS = daemon/lib/libblobcache.a $(INIH_LIBS)

# blobcached: the daemon. Kernel front end (ondemand.c) is kept apart from the fill core
# (fill.c, origin*.c, catalogue) so that another front end can serve the same cache.
sbin_PROGRAMS += daemon/blobcached
daemon_blobcached_SOURCES = \
	daemon/main.c \
	daemon/configfile.c daemon/configfile.h \
	daemon/loop.c daemon/loop.h \
	daemon/msg.c daemon/msg.h \
	daemon/ondemand.c daemon/ondemand.h \
	daemon/fill.c daemon/fill.h \
	daemon/models.c daemon/models.h \
	daemon/origin.h daemon/origin_file.c \
	daemon/http.c daemon/http.h daemon/origin_http.c \
	daemon/workpool.c daemon/workpool.h \
	daemon/holder.c daemon/holder.h \
	daemon/probe.c daemon/probe.h \
	daemon/control.c daemon/control.h \
	daemon/mounts.c daemon/mounts.h daemon/mountpolicy.c daemon/mountpolicy.h \
	daemon/linkwatch.c daemon/linkwatch.h \
	daemon/sdnotify.c daemon/sdnotify.h \
	daemon/caps.c daemon/caps.h \
	daemon/space.c daemon/space.h daemon/spacepolicy.c daemon/spacepolicy.h
daemon_blobcached_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS) $(CRYPTO_CFLAGS) $(CURL_CFLAGS) $(MHD_CFLAGS) \
	$(SYSTEMD_CFLAGS) $(CAP_CFLAGS) $(MOUNT_CFLAGS) $(NL_CFLAGS)
daemon_blobcached_LDADD = $(COMMON_LIBS) $(CRYPTO_LIBS) $(CURL_LIBS) $(MHD_LIBS) -lpthread \
	$(SYSTEMD_LIBS) $(CAP_LIBS) $(MOUNT_LIBS) $(NL_LIBS)

include daemon/ctl.mk

dist_man_MANS += man/blobcached.8 man/blobcached.conf.5
