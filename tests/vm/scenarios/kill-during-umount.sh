# Reliability A6: the daemon is killed (kill -9, and with its device holder) while a model is
# being unmounted with reads in flight, ten times over: no oops, no kernel warning, no hung task;
# every restarted daemon serves again and the model reads correctly. Then a CLOSE queued while
# the daemon is stopped and killed reaches the next one (id -1): counted, not warned about.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m 16 20
bc_publish m /srv/src/m >/dev/null || fail "publish"
tree_sums /srv/src/m >/tmp/want
bc_config readahead=0
bc_start || fail "daemon start"
mkdir -p /mnt/m
dmesg -c >/dev/null

round=0
while [ $round -lt 10 ]; do
	round=$((round + 1))
	mount -t erofs -o fsid=m none /mnt/m || fail "round $round: mount"
	(tree_sums /mnt/m >/dev/null 2>&1) &
	readers=$!
	sleep 0.3
	if [ $((round % 2)) = 0 ]; then
		# the holder goes too: nothing keeps the device
		kill -9 "$BC_PID" "$(cat /run/blobcached/holder.pid)" 2>/dev/null
		rm -f /run/blobcached/holder.pid
	else
		kill -9 "$BC_PID"
	fi
	umount -l /mnt/m || fail "round $round: umount -l"
	wait "$BC_PID" 2>/dev/null
	BC_PID=
	bc_start || fail "round $round: restart"
	# readers of the detached mount finish: served by the new daemon (restore), or EIO
	wait_for "! kill -0 $readers 2>/dev/null" 60 0.1
done
# A CLOSE queued while the daemon cannot read it (stopped), then kill -9 with the holder alive:
# since Linux 6.8 the kernel gives it to the next daemon with the object id -1 (the fd it named
# went with the dead daemon). Nothing to close: counted, not warned about as an unknown object.
mount -t erofs -o fsid=m none /mnt/m || fail "stale close: mount"
cat /mnt/m/config.json >/dev/null || fail "stale close: read"
kill -STOP "$BC_PID"
umount /mnt/m &
unmounter=$!
sleep 3 # the kernel drops the objects and queues their CLOSEs
kill -9 "$BC_PID"
wait "$BC_PID" 2>/dev/null
BC_PID=
n0=$(wc -l <"$BC_LOG")
bc_start || fail "stale close: restart"
wait_for "! kill -0 $unmounter 2>/dev/null" 30 0.1 || fail "stale close: umount did not return"
wait "$unmounter" || fail "stale close: umount failed"
if tail -n +"$((n0 + 1))" "$BC_LOG" | grep "CLOSE for unknown object"; then
	fail "a CLOSE queued before the kill is logged as one for an unknown object"
fi
stale=$(bc_stat closes_stale)
echo "stale close: closes_stale=$stale"
[ "${stale:-0}" -ge 1 ] || fail "no CLOSE of a closed object reached the new daemon (the case is not exercised)"
mount -t erofs -o fsid=m none /mnt/m || fail "final mount"
tree_sums /mnt/m >/tmp/got
cmp -s /tmp/want /tmp/got || fail "content after the rounds differs"
umount /mnt/m
bc_stop
if dmesg | grep -E "Oops|BUG:|WARNING:|hung_task|blocked for more than|Call Trace"; then
	fail "the kernel complained (above)"
fi
pass "10 kills during umount with reads in flight: no oops, no warning; the model reads correctly; a CLOSE queued before a kill reaches the next daemon as a stale one"
