# Unknown or malformed fsids fail the mount cleanly: copen -ENOENT, nothing opened on the origin,
# no fd leak, and the daemon keeps serving.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m 2 5
bc_publish m /srv/src/m || fail "publish"
bc_start || fail "daemon start"
fds_before=$(ls /proc/$BC_PID/fd | wc -l)
mkdir -p /mnt/x /mnt/m

for fsid in nosuchmodel '../../etc/passwd' '.hidden' 'a*b' \
	'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; do
	start=$(date +%s)
	if mount -t erofs -o "fsid=$fsid" none /mnt/x 2>/tmp/err; then
		umount /mnt/x
		fail "mount of fsid '$fsid' succeeded"
	fi
	took=$(($(date +%s) - start))
	[ $took -le 5 ] || fail "refusing fsid '$fsid' took $took s"
	echo "fsid '$fsid' refused: $(cat /tmp/err)"
done
sleep 1.2
refused=$(bc_stat opens_refused)
[ "$refused" -ge 4 ] || fail "daemon refused $refused OPENs, expected at least 4"
assert_eq 0 "$(bc_stat origin_bytes)" "origin bytes"
assert_eq 0 "$(bc_stat objects)" "objects left open"
fds_after=$(ls /proc/$BC_PID/fd | wc -l)
assert_eq "$fds_before" "$fds_after" "daemon fd count"

# A second daemon cannot take the device: it says who holds it and how to fix that.
blobcached -c "$BC_CONF" >/tmp/second 2>&1 && fail "a second daemon started"
grep -q "another blobcached (pid $BC_PID) is serving this cache; stop it first" /tmp/second ||
	fail "second daemon: unclear message: $(cat /tmp/second)"
# Without a device holder to ask, the device itself says busy: the message names the usual
# culprit (cachefilesd) and the fix.
sed 's/^\[daemon\]$/[daemon]\nrestart_grace = 0/' "$BC_CONF" >/tmp/nohold.conf
blobcached -c /tmp/nohold.conf >/tmp/second 2>&1 && fail "a second daemon started"
grep -q "in use by another process, probably cachefilesd" /tmp/second ||
	fail "second daemon without holder: unclear message: $(cat /tmp/second)"

# The daemon still serves a known model afterwards.
mount -t erofs -o fsid=m none /mnt/m || fail "mount of a known model after refusals"
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content differs"
umount /mnt/m
bc_stop
pass "unknown and malformed fsids refused cleanly"
