# ublk: kill -9 of the daemon during a cold read with restart_grace = 0 (no user recovery: the
# devices die with the daemon, its mount fails). What this proves is what follows: the next
# daemon deletes the dead devices (listed in run_dir/ublk-devices), mounts the model again over
# new devices, serves only whole chunks that were completely written before the kill (the chunk
# maps), fetches the rest, and every file is byte-identical; killed again 1.5 s after that read,
# the next daemon fetches nothing (the group commit persisted every chunk without a clean stop);
# after umount no ublk device is left. (With restart_grace > 0 the devices outlive the daemon: ublk-restart-kill9.sh.)
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m 64 20
bc_publish m /srv/src/m || fail "publish"
tree_sums /srv/src/m >/tmp/src
bc_config frontend=ublk readahead=0 workers=2 restart_grace=0
bc_start || fail "daemon start"
mkdir -p /models/m
ctl mount m /models/m || fail "mount"
old_devs=$(ls /dev/ublkb* | tr '\n' ' ')

# A slow cold reader, 1 MiB at a time; the daemon is killed under it.
(
	i=0
	while [ $i -lt 64 ]; do
		dd if=/models/m/model.safetensors of=/dev/null bs=1048576 skip=$i count=1 2>/dev/null
		sleep 0.1
		i=$((i + 1))
	done
) &
reader=$!
sleep 3
kill -9 "$BC_PID"
wait "$BC_PID" 2>/dev/null
BC_PID=
wait $reader
echo "killed the daemon mid-read; devices then: $old_devs"

: >$BC_LOG
bc_start || fail "daemon restart"
wait_for 'ctl mounts | grep -q "^model m /models/m mounted"' 60
grep "chunks cached" $BC_LOG
cached=$(sed -n 's/.*blob .*, \([0-9]*\) of 64 chunks cached/\1/p' $BC_LOG)
[ -n "$cached" ] || cached=$(sed -n 's/.*, \([0-9]*\) of [0-9]* chunks cached/\1/p' $BC_LOG | tail -n 1)
drop_caches
tree_sums /models/m >/tmp/mnt || fail "reading after the restart"
cmp /tmp/src /tmp/mnt || { diff /tmp/src /tmp/mnt | head; fail "content after kill -9 and restart differs"; }
origin=$(bc_stat origin_bytes)
echo "FIGURE ublk kill -9 mid-read: $cached data chunks kept by the map, $origin origin bytes after the restart"
[ "$origin" -lt $((64 * 1048576)) ] || fail "the restart fetched the whole model again ($origin bytes)"
assert_eq 0 "$(bc_stat ublk_reads_failed)" "failed requests after the restart"
deleted=$(grep -c "deleted device [0-9]* left by an earlier daemon" $BC_LOG)
assert_eq 2 "$deleted" "dead devices deleted by the new daemon"
pass "ublk: after kill -9 and a restart, the model mounts again and reads byte-identical"

# The chunks this daemon fetched are persisted in its maps by the group commit (an fdatasync per
# batch of chunks, or once a chunk has waited 500 ms), not at a clean stop: killed 1.5 s after the
# read, the next daemon still has every one of them.
sleep 1.5
bc_kill9
: >$BC_LOG
bc_start || fail "daemon restart 2"
wait_for 'ctl mounts | grep -q "^model m /models/m mounted"' 60
drop_caches
tree_sums /models/m >/tmp/mnt2 || fail "reading after the second kill -9"
cmp /tmp/src /tmp/mnt2 || { diff /tmp/src /tmp/mnt2 | head; fail "content after the second kill -9 differs"; }
assert_eq 0 "$(bc_stat origin_bytes)" "origin bytes after a kill -9 1.5 s after the last fetch"
assert_eq 0 "$(bc_stat ublk_reads_failed)" "failed requests after the second restart"
ctl umount m || fail "umount"
wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 30
bc_stop
pass "ublk: killed 1.5 s after a read, the next daemon has every chunk in its maps (0 origin bytes)"
