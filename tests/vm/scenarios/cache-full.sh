# Reliability B4: the cache volume fills up. A model larger than the volume is read while other
# models' files fill it too: every read either returns the right bytes or fails with EIO (the
# kernel refuses cache writes below bstop free), nothing hangs and the daemon stays alive. Once
# the big model is unmounted, culling frees the volume and another model reads correctly.
# vm: --cache-size 160M
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464
http_status() { wget -S -O /dev/null "$P$1" 2>&1 | sed -n 's/^ *HTTP\/1.[01] \([0-9]*\).*/\1/p' | tail -n 1; }

make_model /srv/src/big 200 1
make_model /srv/src/small 8 3
bc_publish big /srv/src/big >/dev/null || fail "publish big"
bc_publish small /srv/src/small >/dev/null || fail "publish small"
bc_config request_timeout=10s
sed -i 's/^\[cache\]$/[cache]\nhigh_watermark = 80%\nlow_watermark = 60%\ncull_interval = 500ms/' "$BC_CONF"
bc_start || fail "daemon start"
note "cache volume: $(df -P /var/cache/blobcached | awk 'NR == 2 { print $2 / 1024 " MiB" }')"

mkdir -p /mnt/big /mnt/small
mount -t erofs -o fsid=big none /mnt/big || fail "mount big"
want=$(sha256sum /srv/src/big/model.safetensors | cut -d' ' -f1)
# Read 1 MiB at a time, comparing each MiB with the source: a read is right or EIO, never wrong.
t0=$(now)
ok=0
eio=0
wrong=0
short=0
i=0
while [ $i -lt 200 ]; do
	if dd if=/mnt/big/model.safetensors of=/tmp/part bs=1M skip=$i count=1 2>/tmp/dd.err; then
		dd if=/srv/src/big/model.safetensors of=/tmp/src.part bs=1M skip=$i count=1 2>/dev/null
		# A read that hits an error after some bytes returns those bytes (a short read): they
		# must be right; the next read of the range gets the EIO.
		got=$(stat -c %s /tmp/part)
		if ! cmp -s -n "$got" /tmp/part /tmp/src.part; then
			wrong=$((wrong + 1))
			echo "WRONG: MiB $i: $(cmp -l -n "$got" /tmp/part /tmp/src.part | wc -l) of $got bytes differ"
		elif [ "$got" = 1048576 ]; then
			ok=$((ok + 1))
		else
			short=$((short + 1))
		fi
	else
		grep -q "I/O error\|Input/output error" /tmp/dd.err || { cat /tmp/dd.err; fail "MiB $i: not EIO"; }
		eio=$((eio + 1))
	fi
	i=$((i + 1))
done
took=$(elapsed_since "$t0")
echo "MEASURED: 200 MiB model on a $(bc_volume_pct)%-full 160 MiB volume: $ok MiB right, $short MiB short (a right prefix, then EIO), $eio MiB EIO, $wrong MiB wrong, in $took s"
assert_eq 0 "$wrong" "MiB read wrong"
[ "$eio" -gt 0 ] || fail "the volume never filled (no EIO): the test proves nothing"
[ "$took" -le 300 ] || fail "reads took $took s: something waited"
kill -0 "$BC_PID" || fail "the daemon died"
assert_eq 200 "$(http_status /livez)" "/livez with the volume full"
# The EIOs come from the full volume: the kernel refused the daemon's cache writes.
grep -q "to the cache failed" "$BC_LOG" || fail "no refused cache write logged: the EIOs have another cause"
pass "volume full: reads right or EIO, none wrong, no hang, daemon alive"

# Unmounted, the big model's files can go: culling brings the volume under the high watermark.
umount /mnt/big
bc_wait_closed 60
wait_for '[ "$(bc_volume_pct)" -lt 80 ]' 30 0.5
echo "MEASURED: volume at $(bc_volume_pct)% after the big model was unmounted (high 80%, low 60%)"
mount -t erofs -o fsid=small none /mnt/small || fail "mount small"
tree_sums /srv/src/small >/tmp/src.small
tree_sums /mnt/small >/tmp/got.small
cmp /tmp/src.small /tmp/got.small || fail "small differs"
umount /mnt/small
bc_stop
pass "culling freed the full volume; another model reads correctly"
