# The HTTP origin end to end: nginx in the guest serves the publish directory; blobcached fetches
# chunks from it with range requests (206, exact Content-Range), the model reads back equal to
# the source, connections are reused. Then nginx stops: a read of an uncached range fails with
# EIO within the deadline and the daemon lives on; nginx starts again: reads work again.
# vm: --with-binary /usr/sbin/nginx --timeout 900
# shellcheck source=tests/vm/lib.sh
. /usr/share/blobcache-tests/lib.sh
# shellcheck source=tests/vm/blobcache.sh
. /usr/share/blobcache-tests/blobcache.sh

NGX=$BC_NGX
show_logs() {
	bc_show_log
	bc_nginx_logs
}
trap show_logs EXIT

nginx_start() {
	bc_nginx_start || fail "nginx did not start"
}
nginx_stop() {
	bc_nginx_stop
	# Nothing listens any more: connections are refused.
	! wget -q -O /dev/null http://127.0.0.1:8080/models/m.model 2>/dev/null ||
		fail "nginx still answers after it was stopped"
}

make_model /srv/src/m 24 60
make_model /srv/src/m2 40 5
bc_publish m /srv/src/m || fail "publish m"
bc_publish m2 /srv/src/m2 || fail "publish m2"
nginx_start
note "nginx $(nginx -v 2>&1 | sed 's/.*\///') serving /srv/origin on 127.0.0.1:8080"

BC_ORIGIN_URL=http://127.0.0.1:8080 BC_ORIGIN_KEYS="retries=1 max_connections=4" \
	bc_config request_timeout=3s workers=4
grep -q "^url = http://127.0.0.1:8080" "$BC_CONF" || fail "bc_config did not write url"
bc_start || fail "daemon start"
grep -q "HTTP origin http://127.0.0.1:8080" "$BC_LOG" || fail "the daemon did not start the HTTP origin"

# --- every byte through HTTP, equal to the source ---
mkdir -p /mnt/m /mnt/m2
mount -t erofs -o fsid=m none /mnt/m || fail "mount m"
tree_sums /srv/src/m >/tmp/m.src
tree_sums /mnt/m >/tmp/m.mnt || fail "reading m"
assert_eq "$(wc -l </tmp/m.src)" "$(wc -l </tmp/m.mnt)" "file count of m"
cmp /tmp/m.src /tmp/m.mnt || { diff /tmp/m.src /tmp/m.mnt | head; fail "m content differs"; }
note "sha256 of $(wc -l </tmp/m.mnt) files equal to the source"

blob_lines=$(grep -c " /blobs/sha256/" $NGX/access.log)
ranged=$(grep " /blobs/sha256/" $NGX/access.log | awk '$5 == 206 && $6 ~ /^bytes=[0-9]+-[0-9]+$/' | wc -l)
other=$(grep " /blobs/sha256/" $NGX/access.log | awk '$5 != 206' | wc -l)
conns=$(grep " /blobs/sha256/" $NGX/access.log | awk '{ print $1 }' | sort -u | wc -l)
[ "$blob_lines" -ge 24 ] || fail "only $blob_lines blob requests for a 24 MiB model"
assert_eq "$ranged" "$blob_lines" "blob requests answered 206 with a byte range"
assert_eq "$other" 0 "blob requests with another status"
[ "$conns" -le 4 ] || fail "$conns connections for $blob_lines requests (max_connections=4)"
note "nginx: $ranged range requests, all 206, over $conns connection(s)"
grep " /blobs/sha256/" $NGX/access.log | head -n 3

# --- the origin goes away: EIO within the deadline, the daemon lives on ---
mount -t erofs -o fsid=m2 none /mnt/m2 || fail "mount m2"
nginx_stop
start=$(now)
if timeout 60 dd if=/mnt/m2/model.safetensors of=/dev/null bs=1M skip=30 count=2 2>/tmp/err; then
	fail "read of an uncached range succeeded with the origin down"
fi
took=$(elapsed_since "$start")
grep -q "Input/output error" /tmp/err || fail "expected EIO, got: $(cat /tmp/err)"
note "origin down: EIO after $took s (request_timeout 3 s, retries 1)"
# Bound from the reliability bar: never longer than twice the deadline.
[ "$took" -le 6 ] || fail "EIO after $took s, more than twice the 3 s deadline"
kill -0 "$BC_PID" 2>/dev/null || fail "the daemon died when the origin went away"
grep -q "HTTP origin: GET http://127.0.0.1:8080/blobs/sha256/.*failed after 2 attempts: connect" "$BC_LOG" ||
	fail "no log line naming the URL and the connect failure after the retry"

# --- the origin is back: reads work again, nothing wrong was cached ---
nginx_start
dd if=/mnt/m2/model.safetensors bs=1M skip=30 count=2 2>/dev/null | sha256sum >/tmp/part.mnt ||
	fail "read after the origin came back"
dd if=/srv/src/m2/model.safetensors bs=1M skip=30 count=2 2>/dev/null | sha256sum >/tmp/part.src
cmp /tmp/part.src /tmp/part.mnt || fail "bytes after recovery differ from the source"
tree_sums /srv/src/m2 >/tmp/m2.src
tree_sums /mnt/m2 >/tmp/m2.mnt || fail "reading m2"
cmp /tmp/m2.src /tmp/m2.mnt || fail "m2 content differs after recovery"
note "origin back: m2 reads back equal to the source"

umount /mnt/m
umount /mnt/m2
dmesg | grep -q "blocked for more than" && fail "hung task reported by the kernel"
bc_stop
nginx_stop
pass "HTTP origin: 206 range fills through nginx, EIO within the deadline when it is down, recovery"
