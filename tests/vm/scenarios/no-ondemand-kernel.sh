# On a kernel whose cachefiles lacks on-demand support (Debian's stock module), the daemon fails
# fast with a message that names the cause and the fix, and exits 78 (EX_CONFIG: systemd's
# RestartPreventExitStatus= then does not restart it in a loop).
# vm: --modules stock
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh

bc_config
start=$(date +%s)
blobcached -c "$BC_CONF" >/tmp/out 2>&1
rc=$?
took=$(($(date +%s) - start))
cat /tmp/out
assert_eq 78 "$rc" "exit status"
[ $took -le 5 ] || fail "took $took s to fail"
grep -q "no cachefiles on-demand support" /tmp/out || fail "message does not name the cause"
grep -q "blobcache-build-modules" /tmp/out || fail "message does not name the fix"

# And a cache directory on tmpfs is refused with its own message.
mkdir -p /tmp/tcache
mount -t tmpfs none /tmp/tcache
bc_config
sed -i 's|^dir = .*|dir = /tmp/tcache|' "$BC_CONF"
blobcached -c "$BC_CONF" >/tmp/out 2>&1
rc=$?
cat /tmp/out
assert_eq 78 "$rc" "exit status with the cache on tmpfs"
grep -q "ext4 or XFS" /tmp/out || fail "tmpfs message does not name the fix"
# A missing origin directory is named with its fix.
bc_config
sed -i 's|^path = .*|path = /srv/not-mounted|' "$BC_CONF"
blobcached -c "$BC_CONF" >/tmp/out 2>&1
rc=$?
cat /tmp/out
assert_eq 1 "$rc" "exit status with the origin missing (it may be mounted later)"
grep -q "origin directory /srv/not-mounted is missing (is the share mounted?)" /tmp/out ||
	fail "missing origin: unclear message"
pass "clear failure without on-demand support"
