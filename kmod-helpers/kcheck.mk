# blobcache-kcheck
