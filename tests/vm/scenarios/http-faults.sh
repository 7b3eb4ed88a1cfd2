# Bad HTTP responses are errors, never cache content, on the real kernel path: a tiny server
# (busybox nc + a shell handler) answers range requests with a fault chosen per phase:
# 503, a truncated body, a misplaced Content-Range (the right length at the wrong offset), and
# 200 with the whole blob. Each gives the reader EIO; afterwards the same ranges read back
# correctly from a well-behaved server: nothing wrong was cached.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

mkdir -p /srv/src/m
dd if=/dev/urandom of=/srv/src/m/weights.bin bs=1048576 count=6 2>/dev/null
bc_publish m /srv/src/m || fail "publish"
meta=$(bc_model_blob m meta)

# The handler: reads the request line and headers, then answers according to /tmp/mode.
cat >/tmp/handler.sh <<'HANDLER'
#!/bin/sh
read -r method path proto
range=
while read -r line; do
	line=$(echo "$line" | tr -d '\r')
	[ -z "$line" ] && break
	case "$line" in [Rr]ange:*) range=${line#*=} ;; esac
done
file=/srv/origin${path}
size=$(wc -c <"$file")
if [ -z "$range" ]; then # a plain GET (the readiness probe below)
	printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $size
	cat "$file"
	exit 0
fi
from=${range%-*}
to=${range#*-}
len=$((to - from + 1))
mode=$(cat /tmp/mode)
# The metadata blob is always served correctly: the faults are about data chunks.
case "$path" in *"$(cat /tmp/meta)") mode=ok ;; esac
echo "$mode $path $range" >>/tmp/handler.log
send() { # send SKIP COUNT (bytes of the file)
	dd if="$file" bs=4096 skip=$(($1 / 4096)) count=$((($2 + 4095) / 4096)) 2>/dev/null | head -c "$2"
}
case $mode in
ok)
	printf 'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %s-%s/%s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $from $to $size $len
	send $from $len ;;
503)
	printf 'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' ;;
truncate)
	printf 'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %s-%s/%s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $from $to $size $len
	send $from $((len / 2)) ;;
misplaced)
	# Honest about what it sends, but it is not what was asked: bytes shifted by 4096.
	shift=$((from >= 4096 ? from - 4096 : from + 4096))
	printf 'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %s-%s/%s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $shift $((shift + len - 1)) $size $len
	send $shift $len ;;
liar)
	# Claims the asked range but sends the bytes of another offset: only the digest catches it.
	shift=$((from >= 4096 ? from - 4096 : from + 4096))
	printf 'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %s-%s/%s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $from $to $size $len
	send $shift $len ;;
whole200)
	printf 'HTTP/1.1 200 OK\r\nContent-Length: %s\r\nConnection: close\r\n\r\n' $size
	cat "$file" ;;
esac
HANDLER
chmod +x /tmp/handler.sh
echo "$meta" >/tmp/meta
echo ok >/tmp/mode
nc -ll -p 8081 -e /tmp/handler.sh &
echo alive >/srv/origin/.alive
wait_for "wget -q -O /dev/null http://127.0.0.1:8081/.alive" 10

BC_ORIGIN_URL=http://127.0.0.1:8081 BC_ORIGIN_KEYS="retries=1" bc_config request_timeout=5s
bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount (metadata served correctly)"

mib=0
for mode in 503 truncate misplaced liar whole200; do
	echo $mode >/tmp/mode
	# A fresh MiB of the file for each fault, so that none of it is cached yet.
	if timeout 60 dd if=/mnt/m/weights.bin of=/dev/null bs=4096 skip=$((mib * 256)) count=16 2>/tmp/err; then
		fail "$mode: read succeeded"
	fi
	grep -q "Input/output error" /tmp/err || fail "$mode: expected EIO, got $(cat /tmp/err)"
	echo "$mode: EIO"
	mib=$((mib + 1))
done
grep -q "does not match its digest" $BC_LOG || fail "the lying server was not caught by the digest"

# A well-behaved server again: every byte reads back equal to the source.
echo ok >/tmp/mode
want=$(sha256sum /srv/src/m/weights.bin | cut -d' ' -f1)
got=$(sha256sum /mnt/m/weights.bin | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 after the faults (nothing wrong was cached)"
umount /mnt/m
bc_stop
pass "HTTP faults give EIO and are never cached"
