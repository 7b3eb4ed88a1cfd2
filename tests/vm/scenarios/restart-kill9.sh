# The serving process is killed with SIGKILL again and again while sha256sum reads a large
# model file: the device holder keeps /dev/cachefiles bound, each new daemon writes `restore`,
# the kernel re-sends what was pending, and the reader sees pauses, never an error; the sum is
# right. (Reliability rows A1 and A3; issue 4: 50 kills, 2 s apart, during the sha256 of a
# 1 GiB file.) Arguments: KILLS (50), SIZE_MB (1024).
# vm: --timeout 1500 --cache-size 2G --work-size 6G
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
KILLS=${1:-50}
SIZE=${2:-1024}

t0=$(now)
make_model /srv/src/m "$SIZE" 3
want=$(checksum /srv/src/m/model.safetensors)
bc_publish m /srv/src/m || fail "publish"
note "model of $SIZE MiB made and published in $(elapsed_since "$t0") s"
bc_config
bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"

# The reader: sha256sum of the file, fed 4 MiB at a time by dd, paced while the kills go on so
# that all of them land mid-read; each dd's status is kept, so a read error cannot hide.
blocks=$((SIZE / 4))
(
	i=0
	while [ $i -lt $blocks ]; do
		dd if=/mnt/m/model.safetensors bs=4194304 skip=$i count=1 2>/dev/null ||
			echo "read error at block $i" >>/tmp/reader.err
		[ -f /tmp/kills-done ] || sleep 0.35
		i=$((i + 1))
	done
) | sha256sum | cut -d' ' -f1 >/tmp/reader.sum &
reader=$!
rstart=$(now)

kills=0
while [ $kills -lt "$KILLS" ] && kill -0 $reader 2>/dev/null; do
	sleep 2
	bc_kill9
	kills=$((kills + 1))
	bc_start || fail "restart $kills"
done
: >/tmp/kills-done
mid=$(kill -0 $reader 2>/dev/null && echo yes || echo no)
wait_for "! kill -0 $reader 2>/dev/null" 900 || fail "the reader did not finish"
errors=$( [ -f /tmp/reader.err ] && wc -l </tmp/reader.err || echo 0)
echo "reader: $SIZE MiB in $(elapsed_since "$rstart") s across $kills kill -9 of the daemon; $errors read errors"
[ "$errors" = 0 ] || head /tmp/reader.err
assert_eq 0 "$errors" "read errors"
assert_eq "$KILLS" "$kills" "kills during the read"
assert_eq yes "$mid" "the reader still running when the last kill landed"
assert_eq "$want" "$(cat /tmp/reader.sum)" "sha256 of the file read across the restarts"
resumed=$(grep -c "resumed the cache from the device holder" $BC_LOG)
assert_eq "$kills" "$resumed" "restarts that resumed the cache with restore"
# The whole model, once more, after the last restart.
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after the restarts differs"
umount /mnt/m
bc_stop
pass "$kills kill -9 of the daemon during the sha256 of a $SIZE MiB file: 0 read errors, sum correct"
