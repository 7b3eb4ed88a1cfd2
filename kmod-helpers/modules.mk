# blobcache-build-modules: rebuild cachefiles.ko and erofs.ko with on-demand support for a
# distribution kernel (see kmod-helpers/README.md).
dist_sbin_SCRIPTS += kmod-helpers/blobcache-build-modules
