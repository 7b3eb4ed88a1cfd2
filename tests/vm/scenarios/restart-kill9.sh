# The serving process is killed again and again while a model is being read, alternately with
# SIGKILL (a crash) and SIGTERM (a graceful restart or upgrade): the device holder keeps
# /dev/cachefiles bound, each new daemon writes `restore`, the kernel re-sends what was pending,
# and the reader sees pauses, never an error; the bytes are right.
# (Reliability rows A1 and A3; the CI version restarts KILLS times, 2 s apart.)
# vm: --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
KILLS=${1:-15}

make_model /srv/src/m 96 3
bc_publish m /srv/src/m || fail "publish"
bc_config
bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"

# A paced reader (1 MiB, then a pause), copying what it reads, so that the kills land mid-read.
(
	i=0
	while [ $i -lt 96 ]; do
		dd if=/mnt/m/model.safetensors of=/tmp/copy bs=1048576 skip=$i seek=$i count=1 \
			conv=notrunc 2>>/tmp/reader.err || { echo "read error at MiB $i" >>/tmp/reader.err; exit 1; }
		sleep 0.3
		i=$((i + 1))
	done
) &
reader=$!

kills=0
while kill -0 $reader 2>/dev/null && [ $kills -lt "$KILLS" ]; do
	sleep 2
	if [ $((kills % 2)) = 0 ]; then bc_kill9; else bc_term; fi
	kills=$((kills + 1))
	bc_start || fail "restart $kills"
done
wait $reader
rc=$?
echo "reader finished with status $rc after $kills kill -9 of the daemon"
[ -s /tmp/reader.err ] && grep -v "records\|bytes" /tmp/reader.err | head
assert_eq 0 "$rc" "reader exit status (0 read errors)"
[ "$kills" -ge 5 ] || fail "only $kills kills landed during the read"
want=$(sha256sum /srv/src/m/model.safetensors | cut -d' ' -f1)
got=$(sha256sum /tmp/copy | cut -d' ' -f1)
assert_eq "$want" "$got" "sha256 of what the reader read across the restarts"
resumed=$(grep -c "resumed the cache from the device holder" $BC_LOG)
assert_eq "$kills" "$resumed" "restarts that resumed the cache with restore"
# And the whole model, once more, after the last restart.
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after the restarts differs"
umount /mnt/m
bc_stop
pass "$kills restarts (kill -9 and SIGTERM) during a read: 0 read errors, checksum correct"
