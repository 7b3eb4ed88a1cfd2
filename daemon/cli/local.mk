# blobcachectl: the operator CLI (publish, and a client of the daemon's control socket).
bin_PROGRAMS += daemon/blobcachectl
daemon_blobcachectl_SOURCES = \
	daemon/cli/blobcachectl.c \
	daemon/cli/ctlclient.c daemon/cli/ctlclient.h \
	daemon/cli/ctlspace.c daemon/cli/ctlspace.h \
	daemon/cli/publish.c daemon/cli/publish.h \
	daemon/cli/gc.c daemon/cli/gc.h
daemon_blobcachectl_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
daemon_blobcachectl_LDADD = $(COMMON_LIBS) $(CRYPTO_LIBS)
dist_man_MANS += man/blobcachectl.1
