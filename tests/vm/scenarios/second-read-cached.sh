# A second read of a model, after dropping the page cache, is served by the kernel from the
# cache files: no READ reaches the daemon and nothing more is fetched from the origin. After a
# daemon restart with the origin gone, the cached model still mounts and reads.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m 32 50
bc_publish m /srv/src/m || fail "publish"
bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"

tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/first
cmp /tmp/src /tmp/first || fail "first read differs from the source"
reads1=$(bc_stat reads)
origin1=$(bc_stat origin_bytes)
echo "first read: $reads1 READs, $origin1 bytes from the origin"

drop_caches
tree_sums /mnt/m >/tmp/second
cmp /tmp/src /tmp/second || fail "second read differs from the source"
reads2=$(bc_stat reads)
origin2=$(bc_stat origin_bytes)
echo "second read: $((reads2 - reads1)) READs, $((origin2 - origin1)) bytes from the origin"
assert_eq "$reads1" "$reads2" "READs reaching the daemon during the second read"
assert_eq "$origin1" "$origin2" "origin bytes during the second read"

# Also after a remount (the cache files persist across mounts).
umount /mnt/m || fail "umount"
mount -t erofs -o fsid=m none /mnt/m || fail "remount"
tree_sums /mnt/m >/tmp/third
cmp /tmp/src /tmp/third || fail "read after remount differs"
origin3=$(bc_stat origin_bytes)
assert_eq "$origin1" "$origin3" "origin bytes after remount"
umount /mnt/m
bc_stop

# The origin goes away (its share is lost) and the daemon restarts: the cached model still
# mounts (its metadata blob was kept verified in the state directory) and reads in full.
mv /srv/origin /srv/origin.away
mkdir /srv/origin
bc_start || fail "daemon start without the origin's blobs"
mount -t erofs -o fsid=m none /mnt/m || fail "mount of a cached model with the origin away"
tree_sums /mnt/m >/tmp/fourth
cmp /tmp/src /tmp/fourth || fail "read with the origin away differs"
assert_eq 0 "$(bc_stat origin_bytes)" "origin bytes with the origin away"
assert_eq 0 "$(bc_stat origin_errors)" "origin errors with the origin away"
umount /mnt/m
bc_stop
pass "second read served from the cache; a cached model mounts and reads without the origin"
