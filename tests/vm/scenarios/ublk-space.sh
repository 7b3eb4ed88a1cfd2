# The bounded cache in ublk mode (Debian's stock modules): the space manager sees the ublk cache
# files (<cache dir>/ublk/<digest> + <digest>.map). A warm of an unmounted model fills them
# with no private mount, and a mount then reads it with 0 origin bytes; GET /models/NAME turns
# 200 after the warm, and by itself for a preload = yes model; status counts cached bytes from
# the chunk maps; the watermark cull removes the least recently used unmounted models' files
# (file and map), never a mounted model's, which still reads right; evict of a mounted model is
# refused, of an unmounted one removes its files and maps; a chunk map left without its file is
# removed by the periodic scan.
# vm: --modules stock --cache-size 256M --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
http() { printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" | nc 127.0.0.1 9464 | tr -d '\r'; }
status() { http "$1" | sed -n '1s/^HTTP\/1.[01] \([0-9]*\).*/\1/p'; }
UDIR=/var/cache/blobcached/blobcached/ublk
# files MODEL: how many of the model's cache files and maps are in the ublk cache directory.
files() {
	n=0
	for role in meta data; do
		d=$(bc_model_blob "$1" $role)
		for f in "$UDIR/$d" "$UDIR/$d.map"; do
			[ -e "$f" ] && n=$((n + 1))
		done
	done
	echo $n
}

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/pre 8 5
bc_publish pre /srv/src/pre >/dev/null || fail "publish pre"
for m in w m1 m2 m3 m4; do
	make_model /srv/src/$m 20 10
	bc_publish $m /srv/src/$m >/dev/null || fail "publish $m"
done
# ~230 MiB of ext4: high 40% ~ 92 MiB, low 30% ~ 69 MiB; 8 MiB + five models of 20 MiB.
bc_config frontend=ublk request_timeout=20s
sed -i 's/^\[cache\]$/[cache]\nhigh_watermark = 40%\nlow_watermark = 30%\ncull_interval = 500ms/' "$BC_CONF"
printf '[model pre]\npreload = yes\npin = yes\n' >>"$BC_CONF"
bc_start || fail "daemon start"
assert_eq ublk "$(bc_stat frontend)" "front end"

# preload = yes in ublk mode: no mount, the model turns ready by itself.
wait_for '[ "$(status /models/pre)" = 200 ]' 120 0.5
assert_eq "$(bc_model_field pre size_bytes)" "$(bc_model_field pre cached_bytes)" "cached bytes of pre after its preload"
grep -q "preload of model pre done" $BC_LOG || fail "no preload of pre in the log"
assert_eq 4 "$(files pre)" "cache files and maps of pre"
pass "preload = yes model fully cached by itself, GET /models/pre 200"

# warm of an unmounted model, then mount + read: nothing from the origin.
assert_eq 503 "$(status /models/w)" "GET /models/w before its warm"
assert_eq 0 "$(bc_model_field w cached_bytes)" "cached bytes of w before warm"
ctl warm w >/tmp/warm.out 2>&1 || { cat /tmp/warm.out; fail "warm w"; }
cat /tmp/warm.out
grep -q 'into its cache files' /tmp/warm.out || fail "warm w did not fill the cache files directly"
size=$(bc_model_field w size_bytes)
cached=$(bc_model_field w cached_bytes)
echo "FIGURE status after warm: w size_bytes=$size cached_bytes=$cached"
assert_eq "$size" "$cached" "cached bytes of w after warm"
assert_eq 200 "$(status /models/w)" "GET /models/w after its warm"
[ -z "$(ls /dev/ublkb* 2>/dev/null)" ] || fail "the warm left block devices: $(ls /dev/ublkb*)"
assert_eq 4 "$(files w)" "cache files and maps of w"
origin0=$(bc_stat origin_bytes)
mkdir -p /models/w
ctl mount w /models/w || fail "mount w"
tree_sums /srv/src/w >/tmp/src.w
tree_sums /models/w >/tmp/got.w
cmp /tmp/src.w /tmp/got.w || fail "content of w differs"
assert_eq "$origin0" "$(bc_stat origin_bytes)" "origin bytes while reading the warmed model"
pass "warmed unmounted model mounted and read with 0 origin bytes"

assert_eq 1 "$(bc_model_field w mounts)" "mounts of w"
out=$(ctl evict w 2>&1) && fail "evict of a mounted model succeeded"
echo "$out"
assert_contains "mounted at /models/w" "$out" "evict w while mounted"
assert_contains "unmount it first" "$out" "evict w while mounted"
assert_eq 4 "$(files w)" "cache files of w after the refused evict"
pass "evict refused while mounted through ublk"

# Watermark cull: w is mounted and the least recently used of all; pre is pinned.
for m in m1 m2 m3 m4; do
	sleep 1.1
	bc_warm $m || fail "warm $m"
done
wait_for '[ "$(bc_cache_field culled_files)" -gt 0 ]' 30 0.5
sleep 2
ctl status
culled=$(bc_cache_field culled_files)
at_cull=$(sed -n 's/.*culled .* now \([0-9]*\)% used$/\1/p' "$BC_LOG" | head -n 1)
echo "FIGURE cull: $culled file(s) culled, volume ${at_cull}% right after, $(bc_volume_pct)% at the end"
assert_eq 0 "$(bc_model_field m1 cached_bytes)" "cached bytes of m1 (least recently used, unmounted)"
assert_eq 0 "$(files m1)" "cache files and maps of m1 after the cull"
for m in w pre m4; do
	assert_eq "$(bc_model_field $m size_bytes)" "$(bc_model_field $m cached_bytes)" \
		"cached bytes of $m (mounted, pinned or recent)"
done
assert_eq 4 "$(files w)" "cache files of the mounted w after the cull"
origin=$(bc_stat origin_bytes)
drop_caches
tree_sums /models/w >/tmp/got2.w
cmp /tmp/src.w /tmp/got2.w || fail "mounted w differs after the cull"
assert_eq "$origin" "$(bc_stat origin_bytes)" "origin bytes reading the mounted w after the cull"
pass "cull removed the least recently used unmounted models' files, kept the mounted one"

# Unmounted, w can be evicted: its files and maps go.
ctl umount w || fail "umount w"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20 0.5
ctl evict w || fail "evict w after its unmount"
assert_eq 0 "$(files w)" "cache files and maps of w after evict"
assert_eq 0 "$(bc_model_field w cached_bytes)" "cached bytes of w after evict"
assert_eq 503 "$(status /models/w)" "GET /models/w after evict"
pass "evict of an unmounted model removed its files and maps"

# A chunk map without its file (a crash between the two unlinks of a removal) is a leftover: the
# periodic scan reports it from its thread, the loop removes it; the maps beside files stay.
orphan=$UDIR/$(printf '%064d' 0).map
printf 'x' >"$orphan"
wait_for '[ ! -e "$orphan" ]' 20 0.5
assert_eq 4 "$(files pre)" "cache files and maps of pre beside the removed leftover"
pass "a chunk map without its file removed by the periodic scan"
