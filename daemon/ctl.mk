# blobcachectl: the operator CLI (publish, ...).
bin_PROGRAMS += daemon/blobcachectl
daemon_blobcachectl_SOURCES = \
	daemon/blobcachectl.c \
	daemon/ctlclient.c daemon/ctlclient.h \
	daemon/ctlspace.c daemon/ctlspace.h \
	daemon/publish.c daemon/publish.h
daemon_blobcachectl_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
daemon_blobcachectl_LDADD = $(COMMON_LIBS) $(CRYPTO_LIBS)
dist_man_MANS += man/blobcachectl.1
