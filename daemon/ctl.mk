# blobcachectl: the operator CLI (publish, ...).
