# Publish two models (one large file plus many small ones each) with publish's default layout
# (the large file a blob of its own, the small ones packed into another), mount both at once by
# fsid, and check the sha256 of every file against the source. The daemon serves OPEN and READ
# for several objects at once; every byte comes through it from the origin.
# vm: --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m1 48 150
make_model /srv/src/m2 8 40
bc_publish m1 /srv/src/m1 --blob-min 1M || fail "publish m1"
bc_publish m2 /srv/src/m2 --blob-min 1M --chunk-size 64K || fail "publish m2"
assert_eq 3 "$(grep -c '^\[blob ' /srv/catalogue/m1.model)" "blobs of m1 (meta, packed, the large file)"
bc_config workers=4
bc_start || fail "daemon start"
# frontend = auto (the default) picks on-demand where the kernel has it.
grep -q "front end: cachefiles on-demand (frontend = auto" $BC_LOG || fail "auto did not pick on-demand"
assert_eq ondemand "$(bc_stat frontend)" "front end picked by auto"

mkdir -p /mnt/m1 /mnt/m2
mount -t erofs -o fsid=m1 none /mnt/m1 || fail "mount m1 by fsid"
mount -t erofs -o fsid=m2 none /mnt/m2 || fail "mount m2 by fsid"

# Read both models at the same time: objects of two volumes in flight together.
tree_sums /mnt/m1 >/tmp/m1.mnt &
p1=$!
tree_sums /mnt/m2 >/tmp/m2.mnt || fail "reading m2"
wait $p1 || fail "reading m1"
tree_sums /srv/src/m1 >/tmp/m1.src
tree_sums /srv/src/m2 >/tmp/m2.src
assert_eq "$(wc -l </tmp/m1.src)" "$(wc -l </tmp/m1.mnt)" "file count of m1"
cmp /tmp/m1.src /tmp/m1.mnt || { diff /tmp/m1.src /tmp/m1.mnt | head; fail "m1 content differs"; }
cmp /tmp/m2.src /tmp/m2.mnt || fail "m2 content differs"
echo "sha256 of $(wc -l </tmp/m1.mnt) + $(wc -l </tmp/m2.mnt) files equal to the source"

reads=$(bc_stat reads)
origin=$(bc_stat origin_bytes)
failed=$(bc_stat reads_failed)
objects=$(bc_stat objects)
echo "daemon: reads=$reads origin_bytes=$origin reads_failed=$failed objects=$objects"
[ "$reads" -gt 0 ] || fail "no READ reached the daemon"
assert_eq 0 "$failed" "failed READs"
assert_eq 6 "$objects" "open objects (2 models x meta + packed + large file)"
# Every data byte of m1 came from the origin once, padded to whole chunks at most.
[ "$origin" -ge $((48 * 1048576)) ] || fail "origin bytes $origin < model size"
grep -q "OPEN object .*: model m1 blob .* (meta" $BC_LOG || fail "no OPEN logged for m1's meta blob"
grep -q "OPEN object .*: model m1 blob .* (data" $BC_LOG || fail "no OPEN logged for m1's data blob"

umount /mnt/m1 || fail "umount m1"
umount /mnt/m2 || fail "umount m2"
sleep 1.2
assert_eq 0 "$(bc_stat objects)" "objects after umount (CLOSE handled)"
bc_stop
pass "publish, mount by fsid, sha256 of every file"
