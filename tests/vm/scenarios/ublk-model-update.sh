# ublk: a model re-published under its name (blobcachectl publish --force) three times (issue 9,
# part 1, in ublk mode). A mount of v1 made before the update keeps reading v1 after v2 is
# published and across a kill -9 + restart (the next daemon serves v1's devices again: v1 is a
# kept version); after its unmount, the next mount reads v2 over new devices; v3, published
# with the daemon running, is noticed without a restart; with the old versions' blobs gone from
# the origin and a restart, the next mount reads v3 and the kept versions are dropped.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
STATE=/var/lib/blobcached
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
no_devices() { wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 30 || fail "devices left after umount"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
bc_update_setup copy frontend=ublk
mkdir -p /models/m
ctl mount m /models/m || fail "mount v1"
bc_check_part_sums bc_part_sums /srv/src/v1 /models/m "v1 mount"
v1devs=$(ls /dev/ublkb* | tr '\n' ' ')
pass "v1 mounted through ublk ($v1devs) reads v1 (small files, first 4 MiB)"

bc_publish_version v2
assert_ne "$(bc_model_blob m meta)" "$(sed -n 's/^meta *= *//p' /tmp/v1.model)" "v2's metadata digest"
drop_caches
bc_check_part_sums bc_part_sums /srv/src/v1 /models/m "the v1 mount after v2 was published"
pass "the v1 mount keeps reading v1 after v2 is published"

bc_kill9
bc_start || fail "daemon restart with v1 mounted"
grep -q "block devices of the earlier daemon served again" $BC_LOG || fail "the restart did not serve v1's devices again"
assert_eq "$v1devs" "$(ls /dev/ublkb* | tr '\n' ' ')" "the devices after the restart"
drop_caches
bc_check_tree /models/m /tmp/want-v1 "the v1 mount after a kill -9 and restart"
pass "the v1 mount reads v1 across a kill -9 + restart with v2 in the catalogue"
ctl umount m || fail "umount v1"
no_devices

ctl mount m /models/m || fail "mount v2"
bc_check_tree /models/m /tmp/want-v2 "v2 mount"
ctl umount m || fail "umount v2"
no_devices
pass "after the unmount, the next mount reads v2"

bc_publish_version v3
ctl mount m /models/m || fail "mount v3"
bc_check_tree /models/m /tmp/want-v3 "v3 mount"
ctl umount m || fail "umount v3"
no_devices
pass "v3 published with the daemon running and mounted reads v3"

bc_remove_old_blobs
bc_stop
bc_start || fail "daemon start without the old blobs"
ls $STATE/versions
[ "$(ls $STATE/versions | wc -l)" -le 1 ] || fail "kept versions not dropped: $(ls $STATE/versions)"
ctl mount m /models/m || fail "mount v3 after the restart"
drop_caches
bc_check_tree /models/m /tmp/want-v3 "v3 mount after the old blobs were removed and a restart"
ctl umount m
no_devices
bc_stop
pass "ublk: with the old versions' blobs removed and a restart, the next mount reads v3"
