# No race between culling and the kernel or the fill core: with watermarks so low that every
# cache file not in use is culled every 200 ms, readers remount and read models over and over
# (each mount re-opens files that are being culled), another reader drops its page cache and
# reads a mounted model, and warms and evicts run meanwhile. Every checksum stays right, no
# READ fails, no reader gets EIO.
# vm: --cache-size 256M
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'kill $pids 2>/dev/null; bc_show_log' EXIT
CTL="blobcachectl --run-dir /run/blobcached"
ROUNDS=6

for m in r1 r2 s w; do
	make_model /srv/src/$m 6 20
	bc_publish $m /srv/src/$m >/dev/null || fail "publish $m"
	tree_sums /srv/src/$m >/tmp/src.$m
done
bc_config
sed -i 's/^\[cache\]$/[cache]\nhigh_watermark = 1%\nlow_watermark = 0%\ncull_interval = 200ms/' "$BC_CONF"
bc_start || fail "daemon start"

remount_reader() { # MODEL: mount, read, compare, unmount; ROUNDS times
	mkdir -p /mnt/$1
	i=0
	while [ $i -lt $ROUNDS ]; do
		mount -t erofs -o fsid=$1 none /mnt/$1 || { echo "mount $1 failed" >/tmp/err.$1; return; }
		if ! tree_sums /mnt/$1 >/tmp/got.$1 2>/tmp/eio.$1; then
			echo "read error on $1 round $i" >>/tmp/err.$1
		fi
		cmp -s /tmp/src.$1 /tmp/got.$1 || echo "checksums of $1 differ in round $i" >>/tmp/err.$1
		umount /mnt/$1
		i=$((i + 1))
	done
	echo done >/tmp/done.$1
}

mkdir -p /mnt/s
mount -t erofs -o fsid=s none /mnt/s || fail "mount s"
rm -f /tmp/err.* /tmp/done.*
remount_reader r1 &
pids="$!"
remount_reader r2 &
pids="$pids $!"
( # the steady reader: a mounted model, page cache dropped before each pass
	while [ ! -e /tmp/done.r1 ] || [ ! -e /tmp/done.r2 ]; do
		drop_caches
		tree_sums /mnt/s >/tmp/got.s 2>>/tmp/eio.s || echo "read error on s" >>/tmp/err.s
		cmp -s /tmp/src.s /tmp/got.s || echo "checksums of s differ" >>/tmp/err.s
	done
) &
pids="$pids $!"
( # warm and evict, over and over
	while [ ! -e /tmp/done.r1 ] || [ ! -e /tmp/done.r2 ]; do
		$CTL warm w >/dev/null 2>>/tmp/warm.log || echo "blobcachectl: (warm w failed)" >>/tmp/warm.log
		$CTL evict w >/dev/null 2>>/tmp/warm.log
	done
) &
pids="$pids $!"
wait_for '[ -e /tmp/done.r1 ] && [ -e /tmp/done.r2 ]' 400 1
wait $pids
pids=
cat /tmp/err.* 2>/dev/null && fail "a reader saw an error (above)"
cat /tmp/eio.* 2>/dev/null | grep -i "error" && fail "I/O errors (above)"
culled=$(bc_cache_field culled_files)
busy=$(wget -q -O - http://127.0.0.1:9464/metrics | sed -n 's/^blobcached_cull_busy_total //p')
reads=$(bc_stat reads)
echo "figures: $ROUNDS remounts x 2 models, $culled file(s) culled meanwhile, $busy cull(s) refused by the kernel (in use), $reads READs"
sed -n 's/^blobcachectl: //p' /tmp/warm.log | sort | uniq -c
[ "$culled" -ge $((2 * ROUNDS)) ] || fail "only $culled files culled: the race was not exercised"
assert_eq 0 "$(bc_stat reads_failed)" "failed READs"
assert_eq 0 "$(bc_stat verify_failures)" "verify failures"
assert_eq 0 "$(bc_stat cache_write_errors)" "cache write errors"
assert_eq "$(bc_model_field s size_bytes)" "$(bc_model_field s cached_bytes)" "the mounted model s stays cached"
umount /mnt/s
bc_stop
pass "culling raced remounts, reads, warms and evicts without a wrong byte or an EIO"
