# blobcache-kcheck: can this kernel run blobcached? The decisions live in kcheck-rules.c
# (pure, unit tested); kcheck.c gathers the facts and prints the report.
sbin_PROGRAMS += kmod-helpers/blobcache-kcheck
kmod_helpers_blobcache_kcheck_SOURCES = \
	kmod-helpers/kcheck.c \
	kmod-helpers/kcheck-rules.c kmod-helpers/kcheck-rules.h
kmod_helpers_blobcache_kcheck_CFLAGS = $(AM_CFLAGS) $(KMOD_CFLAGS)
kmod_helpers_blobcache_kcheck_LDADD = $(COMMON_LIBS) $(KMOD_LIBS)
dist_man_MANS += man/blobcache-kcheck.8
