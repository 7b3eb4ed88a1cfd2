# mount.blobcache, mount(8)'s helper, in the Debian guest (util-linux mount, systemd, fstab):
# - the daemon down: `mount -t blobcache` fails with 32 at once, naming the cause and the fix;
# - -o timeout=60 waits for a daemon started after the mount command began, then mounts;
#   every file reads back right (sha256); the mount is the daemon's (EROFS, managed);
# - an unknown model: 32, naming the catalogue and how to publish;
# - `umount DIR` runs umount.blobcache (helper=blobcache in utab): the model is unmounted and
#   stays unmounted (the daemon does not mount it again); the mount point is left empty;
# - an fstab line (x-systemd.requires=blobcached.service): starting its mount unit starts the
#   daemon and mounts the model; stopping it unmounts.
# vm: --rootfs debian --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
journal() { journalctl -q -b -u blobcached.service --no-pager -o cat; }
show_journal() {
	echo "----- journal of blobcached.service (last 40 lines) -----"
	journal | tail -n 40
	echo "----- end -----"
}
trap show_journal EXIT
mounted() { findmnt -n -t erofs "$1" >/dev/null; }

make_model /srv/src/m 16 40
bc_publish m /srv/src/m || fail "publish"
bc_config
tree_sums /srv/src/m >/tmp/m.src
[ -x /sbin/mount.blobcache ] && [ -x /sbin/umount.blobcache ] || fail "mount.blobcache/umount.blobcache not in /sbin"

# --- daemon down ---------------------------------------------------------------------------
mkdir -p /models/m /models/x /models/f
rc=0
t0=$(now)
out=$(mount -t blobcache m /models/m 2>&1) || rc=$?
echo "$out"
assert_eq 32 "$rc" "exit status of mount with the daemon down"
assert_contains "blobcached is not running" "$out" "message"
assert_contains "systemctl start blobcached" "$out" "message (the fix)"
note "daemon down: exit 32 in $(elapsed_since "$t0") s"
mounted /models/m && fail "mounted although the daemon is down"
pass "daemon down: exit 32, the cause and the fix named"

# --- timeout=: the daemon starts after the mount command began --------------------------------
t0=$(now)
mount -t blobcache -o timeout=60 m /models/m >/tmp/mount.out 2>&1 &
mount_pid=$!
sleep 3
kill -0 $mount_pid 2>/dev/null || { cat /tmp/mount.out; fail "mount did not wait for the daemon"; }
systemctl start blobcached.service || { systemctl status --no-pager blobcached; fail "systemctl start blobcached"; }
started=$(elapsed_since "$t0")
rc=0
wait $mount_pid || rc=$?
cat /tmp/mount.out
assert_eq 0 "$rc" "exit status of mount -o timeout=60"
note "mount returned $(elapsed_since "$t0") s after it began (daemon started at $started s)"
mounted /models/m || fail "/models/m is not an EROFS mount"
findmnt /models/m
blobcachectl mounts | grep -q "^model m /models/m mounted" || { blobcachectl mounts; fail "the daemon does not manage /models/m"; }
grep -q "TARGET=/models/m .*helper=blobcache" /run/mount/utab || { cat /run/mount/utab; fail "no helper=blobcache for /models/m in utab"; }
tree_sums /models/m >/tmp/m.mnt || fail "reading /models/m"
cmp /tmp/m.src /tmp/m.mnt || { diff /tmp/m.src /tmp/m.mnt | head; fail "content of /models/m differs"; }
pass "timeout=60 waited for the daemon; sha256 of $(wc -l </tmp/m.mnt) files equal to the source"

# --- unknown model ------------------------------------------------------------------------------
rc=0
out=$(mount -t blobcache nope /models/x 2>&1) || rc=$?
echo "$out"
assert_eq 32 "$rc" "exit status for an unknown model"
assert_contains "no model 'nope' in blobcached's catalogue" "$out" "message"
assert_contains "blobcachectl publish" "$out" "message (the fix)"
mounted /models/x && fail "an unknown model got mounted"
rc=0
out=$(mount -t blobcache -o noexec m /models/x 2>&1) || rc=$?
assert_eq 1 "$rc" "exit status for an unsupported option"
assert_contains "noexec" "$out" "message"
pass "unknown model: exit 32 naming the catalogue and publish; a bad option: exit 1"

# --- umount ------------------------------------------------------------------------------------
umount /models/m || fail "umount /models/m"
mounted /models/m && fail "/models/m still mounted after umount"
sleep 3
mounted /models/m && fail "the daemon mounted /models/m again after umount"
blobcachectl mounts | grep -q "^model m " && { blobcachectl mounts; fail "the daemon still manages m"; }
findmnt /models/m >/dev/null && { findmnt /models/m; fail "something is still mounted at /models/m"; }
[ -z "$(ls -A /models/m)" ] || fail "/models/m is not empty"
grep -q "TARGET=/models/m " /run/mount/utab 2>/dev/null && fail "utab still has /models/m"
journal | grep -q "unmounted from /models/m (on request)" || fail "the daemon did not log the unmount"
pass "umount ran umount.blobcache: unmounted for good, the mount point left empty"

# --- fstab ------------------------------------------------------------------------------------
systemctl stop blobcached.service
echo "m /models/f blobcache defaults,nofail,x-systemd.requires=blobcached.service,timeout=60 0 0" >>/etc/fstab
systemctl daemon-reload
unit=$(systemd-escape -p --suffix=mount /models/f)
t0=$(now)
systemctl start "$unit" || { systemctl status --no-pager "$unit"; fail "systemctl start $unit"; }
note "fstab: $unit started (daemon included) in $(elapsed_since "$t0") s"
assert_eq active "$(systemctl is-active blobcached.service)" "the daemon, pulled in by x-systemd.requires"
mounted /models/f || fail "/models/f not mounted from fstab"
assert_eq "$(sha256sum </srv/src/m/model.safetensors)" "$(sha256sum </models/f/model.safetensors)" "sha256 through the fstab mount"
systemctl stop "$unit" || fail "systemctl stop $unit"
sleep 2
mounted /models/f && fail "/models/f still mounted after stopping $unit"
pass "fstab line: the mount unit starts the daemon and mounts the model; stopping it unmounts"
