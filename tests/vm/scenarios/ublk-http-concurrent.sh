# ublk: 8 concurrent cold readers of one model over the HTTP origin cost the origin one copy of
# it, counted from nginx's own access log (not from the daemon's counters): the same fill core
# as on-demand, one fetch per chunk whatever the front end.
# vm: --modules stock --with-binary /usr/sbin/nginx --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'bc_show_log; bc_nginx_logs' EXIT

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m 48 10
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
size=$(wc -c </srv/origin/blobs/sha256/$data)
want=$(sha256sum /srv/src/m/model.safetensors | cut -d' ' -f1)
bc_nginx_start
BC_ORIGIN_URL=http://127.0.0.1:8080 bc_config frontend=ublk
bc_start || fail "daemon start"
mkdir -p /models/m
blobcachectl --run-dir /run/blobcached mount m /models/m || fail "mount"

start=$(now)
i=0
pids=
while [ $i -lt 8 ]; do
	timeout 600 sha256sum /models/m/model.safetensors >/tmp/r$i 2>&1 &
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait $p; done
took=$(elapsed_since "$start")
i=0
while [ $i -lt 8 ]; do
	assert_eq "$want" "$(cut -d' ' -f1 /tmp/r$i)" "reader $i checksum"
	i=$((i + 1))
done

log=$BC_NGX/access.log
grep " /blobs/sha256/$data " $log >/tmp/data.log
requests=$(wc -l </tmp/data.log)
distinct=$(awk '{print $6}' /tmp/data.log | sort -u | wc -l)
sent=$(awk '{s += $7} END {print s + 0}' /tmp/data.log)
ratio=$(awk -v s="$sent" -v b="$size" 'BEGIN { printf "%.4f", s / b }')
echo "FIGURE ublk 8 readers in $took s: nginx served $requests range requests ($distinct distinct), $sent bytes for a data blob of $size bytes (${ratio}x)"
assert_eq "$requests" "$distinct" "range requests (each range asked once)"
[ $((sent * 100)) -le $((size * 102)) ] || fail "origin sent $sent bytes > 1.02 x $size"
[ "$sent" -ge "$size" ] || fail "origin sent $sent bytes < blob size $size: counting is wrong"
blobcachectl --run-dir /run/blobcached umount m || fail "umount"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20
bc_stop
bc_nginx_stop
pass "ublk: 8 concurrent readers, one fetch per chunk, counted at the HTTP server"
