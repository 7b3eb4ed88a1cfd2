# ublk: the second read comes from the cache volume. After drop_caches and a remount (new
# devices over the same cache files), and again after a daemon restart (the chunk maps persist),
# every file is byte-identical and the origin gives 0 bytes.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
gone() { wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20 || fail "ublk devices left"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m 32 60
bc_publish m /srv/src/m || fail "publish"
bc_config workers=4 frontend=ublk
bc_start || fail "daemon start"
mkdir -p /models/m
tree_sums /srv/src/m >/tmp/src

ctl mount m /models/m || fail "mount"
start=$(now)
tree_sums /models/m >/tmp/first || fail "first read"
cold=$(elapsed_since "$start")
cmp /tmp/src /tmp/first || fail "first read differs from the source"
o1=$(bc_stat origin_bytes)
[ "$o1" -gt 0 ] || fail "first read took nothing from the origin"
ctl umount m || fail "umount"
gone

drop_caches
ctl mount m /models/m || fail "remount"
start=$(now)
tree_sums /models/m >/tmp/second || fail "second read"
warm=$(elapsed_since "$start")
cmp /tmp/first /tmp/second || fail "second read differs from the first"
o2=$(bc_stat origin_bytes)
cached=$(bc_stat ublk_reads_cached)
echo "FIGURE ublk first read ${cold} s (origin $o1 bytes), second read ${warm} s (origin $((o2 - o1)) bytes, $cached requests served from the cache file)"
assert_eq "$o1" "$o2" "origin bytes after the second read (0 new)"
[ "$cached" -gt 0 ] || fail "no request served from the cache file"
ctl umount m || fail "umount 2"
gone
bc_stop

# A new daemon finds the chunks through the maps on the cache volume.
drop_caches
: >$BC_LOG
bc_start || fail "daemon restart"
ctl mount m /models/m || fail "mount after restart"
tree_sums /models/m >/tmp/third || fail "read after restart"
cmp /tmp/first /tmp/third || fail "read after restart differs"
assert_eq 0 "$(bc_stat origin_bytes)" "origin bytes after a restart"
assert_eq 0 "$(bc_stat ublk_reads_failed)" "failed requests"
grep -q "chunks cached" $BC_LOG || fail "cache files not found again"
grep "chunks cached" $BC_LOG
ctl umount m || fail "umount 3"
gone
bc_stop
pass "ublk: second read byte-identical with 0 origin bytes, after remount and restart"
