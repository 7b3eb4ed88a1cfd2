# Reliability D1, the partition: the NFS origin becomes unreachable for 5 minutes (every packet
# to or from port 2049 dropped with tc netem on the loopback link; the probe endpoint on the
# same link keeps working). A reader of ranges not cached yet gets EIO within the request
# deadline, never a hang, every 30 s of the partition; cached ranges keep reading; /readyz
# stays 503 and /livez 200; the daemon stays up. When the network heals, everything recovers
# by itself: /readyz 200 and reads of every range correct. Argument: PARTITION seconds (300).
# Needs the Debian guest (nfs-kernel-server, tc): run-scenario --rootfs debian.
# vm: --rootfs debian --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464
PARTITION=${1:-300}

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$P$1"; }
origin_mounted() { awk '$2 == "/srv/origin" && $3 ~ /^nfs/ { f = 1 } END { exit !f }' /proc/mounts; }

modprobe sch_netem && modprobe sch_prio && modprobe cls_u32 ||
	fail "modprobe sch_netem sch_prio cls_u32"
bc_nfs_export m 24

mkdir -p /etc/blobcached /var/cache/blobcached/blobcached
cat >"$BC_CONF" <<EOF
[cache]
dir = /var/cache/blobcached/blobcached
[origin]
path = /srv/origin
nfs = 127.0.0.1:/srv/export
nfs_options = soft,timeo=10,retrans=2,retry=0
[daemon]
catalogue = /srv/catalogue
run_dir = /run/blobcached
request_timeout = 10s
readahead = 0
[model m]
mount = /models/m
EOF
bc_start || fail "daemon start"
wait_for origin_mounted 30
wait_for 'grep -q " /models/m erofs " /proc/mounts' 30
wait_for '[ "$(http_status /readyz)" = 200 ]' 10
# The first 4 MiB cached before the partition: those keep reading from the cache.
dd if=/models/m/model.safetensors of=/dev/null bs=1M count=4 2>/dev/null || fail "first read"
pass "NFS origin and model mounted by the daemon; ready"

# The partition: port 2049 only, both ways.
tc qdisc add dev lo root handle 1: prio bands 3 priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 &&
	tc qdisc add dev lo parent 1:3 handle 30: netem loss 100% &&
	tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport 2049 0xffff flowid 1:3 &&
	tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport 2049 0xffff flowid 1:3 ||
	fail "tc netem"
t0=$(ms)
note "partition: NFS traffic dropped for $PARTITION s"
# An uncached range: EIO within the deadline (10 s), not a hang.
if dd if=/models/m/model.safetensors of=/dev/null bs=1M skip=10 count=1 2>/tmp/dd.err; then
	fail "an uncached range read during the partition succeeded?"
fi
eio_ms=$(($(ms) - t0))
cat /tmp/dd.err
echo "MEASURED: uncached read during the partition failed after $eio_ms ms (request_timeout 10 s)"
[ "$eio_ms" -le 12000 ] || fail "the read took $eio_ms ms, past the 10 s deadline"
# The cached range still reads, from the cache.
drop_caches
dd if=/models/m/model.safetensors of=/dev/null bs=1M count=4 2>/dev/null || fail "cached range during the partition"
wait_for '[ "$(http_status /readyz)" = 503 ]' 20 0.5
unready_ms=$(($(ms) - t0))
curl -s --max-time 2 "$P/readyz" | head -n 3
echo "MEASURED: /readyz 503 after $unready_ms ms of partition"
assert_eq 200 "$(http_status /livez)" "/livez during the partition"
kill -0 "$BC_PID" || fail "the daemon died during the partition"
pass "partition: uncached reads fail within the deadline, cached ranges read, unready, daemon alive"

# Until PARTITION seconds have passed: every 30 s, an uncached range (another each time) fails
# with EIO, a cached one reads, the daemon is alive, /livez 200 and /readyz 503. Each request
# fails at its deadline; one read(2) may cost two requests in turn (after a failed read-ahead
# the kernel reads the page again, a new request), so a read is bounded by twice the deadline.
rounds=0
max_eio_ms=$eio_ms
skip=11
while [ $(($(ms) - t0 + 30000)) -le $((PARTITION * 1000)) ]; do
	sleep 30
	r0=$(ms)
	if dd if=/models/m/model.safetensors of=/dev/null bs=1M skip=$skip count=1 2>/dev/null; then
		fail "an uncached range read $(((r0 - t0) / 1000)) s into the partition succeeded?"
	fi
	took=$(($(ms) - r0))
	[ "$took" -le 22000 ] || fail "a read $(((r0 - t0) / 1000)) s into the partition took $took ms, past twice the 10 s deadline"
	[ "$took" -le "$max_eio_ms" ] || max_eio_ms=$took
	drop_caches
	dd if=/models/m/model.safetensors of=/dev/null bs=1M count=4 2>/dev/null ||
		fail "cached range $(((r0 - t0) / 1000)) s into the partition"
	kill -0 "$BC_PID" || fail "the daemon died $(((r0 - t0) / 1000)) s into the partition"
	assert_eq 200 "$(http_status /livez)" "/livez $(((r0 - t0) / 1000)) s into the partition"
	assert_eq 503 "$(http_status /readyz)" "/readyz $(((r0 - t0) / 1000)) s into the partition"
	rounds=$((rounds + 1))
	skip=$((skip + 1))
done
echo "MEASURED: $rounds more checks during the $PARTITION s partition: uncached reads EIO after $max_eio_ms ms at most (deadline 10 s per request), cached ranges read, /livez 200, /readyz 503"
left=$((PARTITION * 1000 - ($(ms) - t0)))
[ $left -le 0 ] || sleep $((left / 1000))
tc qdisc del dev lo root || fail "tc qdisc del"
t1=$(ms)
note "network healed"
wait_for '[ "$(http_status /readyz)" = 200 ]' 120 0.5
ready_ms=$(($(ms) - t1))
wait_for origin_mounted 5
drop_caches
got=$(sha256sum </models/m/model.safetensors | cut -d' ' -f1)
back_ms=$(($(ms) - t1))
assert_eq "$(sha256sum </srv/src/m/model.safetensors | cut -d' ' -f1)" "$got" "the whole model after the partition"
echo "MEASURED: after the heal: /readyz 200 in $ready_ms ms; whole model read correctly $back_ms ms after the heal"
grep -E "origin origin" "$BC_LOG" | tail -n 4
pass "after a $PARTITION s partition the daemon recovered by itself: ready, every range correct"
bc_stop
