# 8 concurrent cold readers of one model over the HTTP origin cost the origin one copy of it,
# counted from nginx's own access log (not from the daemon's counters): no byte range is
# requested twice and the bytes sent are <= 1.02 x the data blob.
# vm: --with-binary /usr/sbin/nginx --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'bc_show_log; bc_nginx_logs' EXIT

make_model /srv/src/m 48 10
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
size=$(wc -c </srv/origin/blobs/sha256/$data)
want=$(sha256sum /srv/src/m/model.safetensors | cut -d' ' -f1)
bc_nginx_start
BC_ORIGIN_URL=http://127.0.0.1:8080 bc_config
bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"

start=$(now)
i=0
pids=
while [ $i -lt 8 ]; do
	timeout 600 sha256sum /mnt/m/model.safetensors >/tmp/r$i 2>&1 &
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
echo "8 readers in $took s: nginx served $requests range requests ($distinct distinct), $sent bytes for a data blob of $size bytes"
assert_eq "$requests" "$distinct" "range requests (each range asked once)"
[ $((sent * 100)) -le $((size * 102)) ] || fail "origin sent $sent bytes > 1.02 x $size"
[ "$sent" -ge "$size" ] || fail "origin sent $sent bytes < blob size $size: counting is wrong"
umount /mnt/m
bc_stop
bc_nginx_stop
pass "8 concurrent readers: one fetch per chunk, counted at the HTTP server"
