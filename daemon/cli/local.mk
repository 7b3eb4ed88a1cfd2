# blobcachectl: the operator CLI (publish, and a client of the daemon's control socket).
bin_PROGRAMS += daemon/blobcachectl
daemon_blobcachectl_SOURCES = \
	daemon/cli/blobcachectl.c \
	daemon/cli/ctlclient.c daemon/cli/ctlclient.h \
	daemon/cli/ctlspace.c daemon/cli/ctlspace.h \
	daemon/cli/publish.c daemon/cli/publish.h daemon/cli/publish_image.c \
	daemon/cli/gc.c daemon/cli/gc.h
daemon_blobcachectl_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
daemon_blobcachectl_LDADD = $(COMMON_LIBS) $(CRYPTO_LIBS)
dist_man_MANS += man/blobcachectl.1

# mount.blobcache (and umount.blobcache, the same program): mount(8)'s external helper for
# `mount -t blobcache MODEL DIR` and fstab. mount(8) looks for helpers in /sbin: the default
# with --prefix=/usr (configure --with-mount-helper-dir=DIR to change it).
# (an "exec" directory, so that install-exec installs it before install-exec-hook runs)
mounthelperexecdir = $(mounthelperdir)
mounthelperexec_PROGRAMS = daemon/mount.blobcache
daemon_mount_blobcache_SOURCES = \
	daemon/cli/mount-blobcache.c \
	daemon/cli/mountopts.c daemon/cli/mountopts.h \
	daemon/cli/ctlclient.c daemon/cli/ctlclient.h
daemon_mount_blobcache_CFLAGS = $(AM_CFLAGS) $(MOUNT_CFLAGS)
daemon_mount_blobcache_LDADD = $(COMMON_LIBS) $(MOUNT_LIBS)
dist_man_MANS += man/mount.blobcache.8 man/umount.blobcache.8

install-exec-hook: install-umount-helper
install-umount-helper:
	$(MKDIR_P) $(DESTDIR)$(mounthelperdir) && cd $(DESTDIR)$(mounthelperdir) && rm -f umount.blobcache && $(LN_S) mount.blobcache umount.blobcache
uninstall-hook: uninstall-umount-helper
uninstall-umount-helper:
	rm -f $(DESTDIR)$(mounthelperdir)/umount.blobcache
.PHONY: install-umount-helper uninstall-umount-helper
