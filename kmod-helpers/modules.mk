# blobcache-build-modules: rebuild cachefiles.ko and erofs.ko with on-demand support for a
# distribution kernel; kmod-helpers/dkms: the same as a DKMS package (see kmod-helpers/README.md).
dist_sbin_SCRIPTS += kmod-helpers/blobcache-build-modules
dist_man_MANS += man/blobcache-build-modules.8
EXTRA_DIST += kmod-helpers/README.md \
	kmod-helpers/dkms/dkms.conf \
	kmod-helpers/dkms/Makefile \
	kmod-helpers/dkms/dkms-prepare-sources \
	kmod-helpers/dkms/dkms-kernel-check
