# ublk: no daemon comes back within restart_grace (issue 8, part 4). The daemon is killed
# (SIGKILL) under a cold reader and not restarted: the readers' requests wait in the quiesced
# devices until the device holder's grace period ends, then the holder stops the devices and
# the reader gets EIO: a bounded pause, never a hang. A daemon started later deletes the
# stopped devices, mounts the model again over new ones, and every file reads byte-identical.
# vm: --modules stock --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
GRACE=5

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m 64 20
bc_publish m /srv/src/m || fail "publish"
tree_sums /srv/src/m >/tmp/src
bc_config frontend=ublk readahead=0 restart_grace=${GRACE}s
bc_start || fail "daemon start"
mkdir -p /models/m
ctl mount m /models/m || fail "mount"
[ -f /run/blobcached/holder.pid ] || fail "no device holder in ublk mode"
holder=$(cat /run/blobcached/holder.pid)

# A slow cold reader, 1 MiB at a time; the first read after the kill waits, then fails.
(
	i=0
	while [ $i -lt 64 ]; do
		dd if=/models/m/model.safetensors of=/dev/null bs=1048576 skip=$i count=1 2>/dev/null ||
			{ echo "$i $(now)" >/tmp/reader.eio; exit 0; }
		sleep 0.2
		i=$((i + 1))
	done
	echo done >/tmp/reader.done
) &
reader=$!
sleep 2
killed=$(now)
bc_kill9
wait_for "! kill -0 $reader 2>/dev/null" $((GRACE + 60)) || fail "the reader hangs $((GRACE + 60)) s after the kill"
[ -f /tmp/reader.eio ] || fail "the reader finished without an error with no daemon"
failed_at=$(cut -d' ' -f2 /tmp/reader.eio)
pause=$(awk -v a="$killed" -v b="$failed_at" 'BEGIN { printf "%.1f", b - a }')
echo "FIGURE ublk restart_grace ${GRACE}s, no daemon: the reader's EIO came $pause s after the kill"
awk -v p="$pause" -v g="$GRACE" 'BEGIN { exit !(p >= g - 1 && p <= g + 30) }' ||
	fail "EIO $pause s after the kill: expected after about the grace period ($GRACE s)"
grep -q "blobcached-holder: stopped /dev/ublkb" $BC_LOG || fail "the holder did not stop the devices"
wait_for "! kill -0 $holder 2>/dev/null" 10 || fail "the holder did not exit after the grace period"

# A daemon started later: the stopped devices go, the model is mounted again over new ones.
bc_start || fail "daemon start after the grace period"
wait_for 'ctl mounts | grep -q "^model m /models/m mounted"' 60 || fail "the model was not mounted again"
wait_for '[ "$(grep -c "deleted device [0-9]* left by an earlier daemon" $BC_LOG)" = 2 ]' 30 ||
	fail "the stopped devices were not deleted"
drop_caches
tree_sums /models/m >/tmp/mnt || fail "reading after the restart"
cmp /tmp/src /tmp/mnt || fail "content after the grace period and a restart differs"
ctl umount m || fail "umount"
wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 30 || fail "devices left after umount"
bc_stop
pass "ublk: with no daemon for restart_grace the reader gets EIO after $pause s, never hangs; a later daemon serves the model again"
