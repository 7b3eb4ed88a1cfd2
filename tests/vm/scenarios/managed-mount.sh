# Managed model mounts: the daemon mounts a configured model and keeps it mounted. Unmounted
# from outside (umount, then umount -l), it is mounted again within 5 s (measured) and reads
# stay correct; a restart adopts the mounts instead of stacking second ones; blobcachectl
# mount/umount work and persist across a restart; a bad mount point is refused without touching
# what is in it, and readiness says why; a link going down and up makes the daemon re-check.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464
STATE=/var/lib/blobcached/mounts

# erofs_count PATH [FSID]: EROFS mounts at PATH (of model FSID) in the host's mount table.
erofs_count() {
	awk -v p="$1" -v id="${2:-}" '$5 == p && $9 == "erofs" && (id == "" || $0 ~ ("fsid=" id "([, ]|$)")) { n++ } END { print n + 0 }' /proc/self/mountinfo
}
http_status() { wget -S -O /dev/null "$P$1" 2>&1 | sed -n 's/^ *HTTP\/1.[01] \([0-9]*\).*/\1/p' | tail -n 1; }
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

make_model /srv/src/m 6 5
make_model /srv/src/m2 2 3
bc_publish m /srv/src/m >/dev/null || fail "publish m"
bc_publish m2 /srv/src/m2 >/dev/null || fail "publish m2"
tree_sums /srv/src/m >/tmp/want-m
tree_sums /srv/src/m2 >/tmp/want-m2
bc_config request_timeout=10s
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
bc_start || fail "daemon start"

wait_for '[ "$(erofs_count /models/m m)" = 1 ]' 20
(cd /models/m && find . -type f | sort | while read -r f; do sha256sum "$f"; done) >/tmp/got-m
cmp -s /tmp/want-m /tmp/got-m || fail "configured mount: content differs from the source"
pass "configured model mounted by the daemon at /models/m, content correct"
# The mount point is a shared anchor (a bind of itself) with the model on top.
awk '$5 == "/models/m" && $9 != "erofs"' /proc/self/mountinfo | grep -q "shared:" ||
	fail "no shared anchor under /models/m: $(grep /models/m /proc/self/mountinfo)"
pass "the mount point is a shared bind mount (containers binding /models rslave follow remounts)"
assert_eq 200 "$(http_status /readyz)" "/readyz with the model mounted"

# Unmounted from outside, then lazily: back within 5 s each time.
for how in "umount" "umount -l"; do
	drop_caches
	t0=$(ms)
	$how /models/m || fail "$how /models/m"
	wait_for '[ "$(erofs_count /models/m m)" = 1 ]' 10 0.05
	took=$(($(ms) - t0))
	echo "MEASURED: $how /models/m: mounted again after $took ms"
	[ "$took" -le 5000 ] || fail "$how: remount took $took ms (> 5000)"
	(cd /models/m && find . -type f | sort | while read -r f; do sha256sum "$f"; done) >/tmp/got-m
	cmp -s /tmp/want-m /tmp/got-m || fail "after $how: content differs"
	pass "$how from outside: remounted in $took ms, reads correct"
done
grep -q "gone from /models/m" $BC_LOG || fail "the loss was not logged"
wget -q -O - "$P/metrics" | grep 'blobcached_mount_remounts_total{kind="model",name="m"' |
	grep -q ' 2$' || fail "remounts not counted: $(wget -q -O - "$P/metrics" | grep mount_)"
pass "two remounts counted in /metrics"

# blobcachectl mount/umount, and a restart adopting both mounts.
ctl mount m2 /models/m2 || fail "blobcachectl mount m2"
assert_eq 1 "$(erofs_count /models/m2 m2)" "m2 mounted by blobcachectl"
grep -q "^model m2 /models/m2$" $STATE || fail "m2 not persisted: $(cat $STATE)"
ctl mounts | grep -q "^model m2 /models/m2 mounted" || fail "mounts: $(ctl mounts)"
assert_fails ctl umount m
assert_fails ctl mount m2 /models/elsewhere
pass "blobcachectl mount works, is persisted, and conflicting requests are refused"

bc_term
bc_start || fail "daemon restart"
wait_for 'ctl mounts | grep -q "^model m2 /models/m2 mounted"' 20
assert_eq 1 "$(erofs_count /models/m m)" "m after restart (adopted, not stacked)"
assert_eq 1 "$(erofs_count /models/m2 m2)" "m2 after restart (adopted, not stacked)"
[ "$(grep -c "adopting the existing mount" $BC_LOG)" -ge 2 ] || fail "adoption not logged"
drop_caches
(cd /models/m2 && find . -type f | sort | while read -r f; do sha256sum "$f"; done) >/tmp/got-m2
cmp -s /tmp/want-m2 /tmp/got-m2 || fail "m2 after restart: content differs"
pass "a restart adopts both mounts; reads correct"

ctl umount m2 || fail "blobcachectl umount m2"
assert_eq 0 "$(erofs_count /models/m2)" "m2 after umount"
grep -q m2 $STATE && fail "m2 still in $STATE"
bc_term
bc_start || fail "daemon restart 2"
wait_for '[ "$(erofs_count /models/m m)" = 1 ]' 20
sleep 2
assert_eq 0 "$(erofs_count /models/m2)" "m2 must stay unmounted after a restart"
pass "blobcachectl umount persists across a restart"

# A link going down and up: logged, and the mounts are re-checked at once.
ip link set lo down
ip link set lo up
wait_for 'grep -q "link lo up: checking the managed mounts now" $BC_LOG' 10
grep -q "network link lo is down" $BC_LOG || fail "link down not logged"
pass "link down/up noticed; mounts re-checked"

# Bad mount points: refused with the cause, and nothing in them is touched.
mkdir -p /tmp/full && echo keep >/tmp/full/file
out=$(ctl mount m2 /tmp/full 2>&1) && fail "mount on a non-empty directory succeeded"
assert_contains "not empty" "$out" "refusal of a non-empty mount point"
assert_eq keep "$(cat /tmp/full/file)" "file in the refused mount point"
out=$(ctl mount m2 /var/cache/blobcached/mnt 2>&1) && fail "mount on the cache volume succeeded"
assert_contains "cache volume" "$out" "refusal of a mount point on the cache volume"
[ -e /var/cache/blobcached/mnt ] && fail "the refused mount point was created on the cache volume"
out=$(ctl mount nosuchmodel /models/x 2>&1) && fail "mount of an unknown model succeeded"
echo "unknown model: $out"
pass "bad mount points and unknown models refused with the cause"

# A configured mount that cannot be made: /readyz says why.
bc_term
printf '[model m2]\nmount = /tmp/full\n' >>"$BC_CONF"
bc_start || fail "daemon restart 3"
wait_for '[ "$(http_status /readyz)" = 503 ]' 10
why=$(printf 'GET /readyz HTTP/1.0\r\n\r\n' | nc 127.0.0.1 9464)
echo "$why" | tail -n 3
assert_contains "model mount m2 at /tmp/full" "$why" "/readyz reason"
assert_eq keep "$(cat /tmp/full/file)" "file in the configured, refused mount point"
rm /tmp/full/file
wait_for '[ "$(erofs_count /tmp/full m2)" = 1 ]' 20
wait_for '[ "$(http_status /readyz)" = 200 ]' 10
pass "/readyz false while a configured mount cannot be made, true once it is"

bc_stop
umount /models/m /tmp/full 2>/dev/null
pass "managed mounts"
