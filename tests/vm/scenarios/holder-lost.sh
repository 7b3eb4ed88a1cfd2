# Reliability A2: the daemon and its device holder are both killed (kill -9), so nothing keeps
# /dev/cachefiles: a read in flight fails with EIO at once (never hangs), /livez and /readyz are
# gone with the daemon; a restarted daemon binds the cache anew, sees that the managed mount in
# place belongs to the old binding and mounts the model again instead of adopting a dead mount;
# readiness comes back by itself and the model reads correctly.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464

http_status() { wget -S -O /dev/null "$P$1" 2>&1 | sed -n 's/^ *HTTP\/1.[01] \([0-9]*\).*/\1/p' | tail -n 1; }
erofs_count() {
	awk -v p="$1" '$5 == p && $9 == "erofs" { n++ } END { print n + 0 }' /proc/self/mountinfo
}

make_model /srv/src/m 48 3
bc_publish m /srv/src/m >/dev/null || fail "publish"
tree_sums /srv/src/m >/tmp/want
bc_config request_timeout=10s readahead=0
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
bc_start || fail "daemon start"
wait_for '[ "$(erofs_count /models/m)" = 1 ]' 20
wait_for '[ "$(http_status /readyz)" = 200 ]' 10

# A paced reader of ranges not cached yet (no read-ahead), so that reads are in flight or
# still to come when both processes die.
(
	i=0
	while [ $i -lt 48 ]; do
		if ! dd if=/models/m/model.safetensors of=/dev/null bs=1M skip=$i count=1 2>/dev/null; then
			echo "$i $(awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime)" >/tmp/reader.eio
			exit 1
		fi
		i=$((i + 1))
		sleep 0.2
	done
) &
reader=$!
sleep 2
holder=$(cat /run/blobcached/holder.pid)
t0=$(ms)
kill -9 "$BC_PID" "$holder"
wait "$BC_PID" 2>/dev/null
BC_PID=
rm -f /run/blobcached/holder.pid
wait_for "! kill -0 $reader 2>/dev/null" 20 0.05
[ -f /tmp/reader.eio ] || fail "the reader did not see an error with no daemon and no holder"
eio_at=$(($(cut -d' ' -f2 /tmp/reader.eio) - t0))
echo "MEASURED: the reader got EIO $eio_at ms after both processes died (deadline 10000 ms)"
[ "$eio_at" -le 10000 ] || fail "EIO after $eio_at ms, past the 10 s deadline"
pass "nothing holds the device: the read in flight failed with EIO in $eio_at ms, no hang"
# The old mount is still in the table but dead.
assert_eq 1 "$(erofs_count /models/m)" "the dead mount is still in place"

t1=$(ms)
bc_start || fail "daemon restart"
wait_for '[ "$(http_status /readyz)" = 200 ]' 30 0.1
ready=$(($(ms) - t1))
grep -q "predates this cache binding" $BC_LOG || fail "the stale mount was not recognised"
assert_eq 1 "$(erofs_count /models/m)" "EROFS mounts at /models/m after the restart (replaced, not stacked)"
tree_sums /models/m >/tmp/got
cmp -s /tmp/want /tmp/got || fail "content after the rebind differs"
echo "MEASURED: restarted daemon ready (model mounted again) $ready ms after its start"
pass "the restarted daemon rebound the cache and remounted the model; reads correct, ready again"
bc_stop
umount /models/m
