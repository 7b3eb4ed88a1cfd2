# ublk: restart without breaking mounts (issue 8, part 4; reliability A1). The devices are made
# with UBLK_F_USER_RECOVERY: when the daemon is killed (SIGKILL, every 2 s, 50 times) during
# the sha256 of a 1 GiB file, the kernel quiesces them and keeps the readers' requests; each
# new daemon serves the same devices again (START/END_USER_RECOVERY), the mount stays, and the
# reader sees pauses, never an error. Arguments: KILLS (50), SIZE_MB (1024).
# vm: --modules stock --timeout 1500 --cache-size 2G --work-size 6G
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
KILLS=${1:-50}
SIZE=${2:-1024}

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
t0=$(now)
make_model /srv/src/m "$SIZE" 3
want=$(checksum /srv/src/m/model.safetensors)
bc_publish m /srv/src/m || fail "publish"
note "model of $SIZE MiB made and published in $(elapsed_since "$t0") s"
bc_config frontend=ublk
bc_start || fail "daemon start"
mkdir -p /models/m
ctl mount m /models/m || fail "mount"
devs=$(ls /dev/ublkb* | tr '\n' ' ')
mnt_id=$(awk '$5 == "/models/m" && $9 == "erofs" { print $1 }' /proc/self/mountinfo)

bc_kill9_reader /models/m/model.safetensors "$SIZE" "$KILLS"
echo "reader: $SIZE MiB in $KR_SECONDS s across $KR_KILLS kill -9 of the daemon; $KR_ERRORS read errors"
assert_eq 0 "$KR_ERRORS" "read errors"
assert_eq "$KILLS" "$KR_KILLS" "kills during the read"
assert_eq yes "$KR_MID" "the reader still running when the last kill landed"
assert_eq "$want" "$KR_SUM" "sha256 of the file read across the restarts"
recovered=$(grep -c "block devices of the earlier daemon served again" $BC_LOG)
assert_eq "$KR_KILLS" "$recovered" "restarts that served the model's devices again"
assert_eq "$devs" "$(ls /dev/ublkb* | tr '\n' ' ')" "the block devices after the restarts"
assert_eq "$mnt_id" "$(awk '$5 == "/models/m" && $9 == "erofs" { print $1 }' /proc/self/mountinfo)" \
	"the mount after the restarts (its mountinfo id)"
! grep -q "deleted device" $BC_LOG || fail "a restart deleted a device"
# The whole model, once more, after the last restart.
tree_sums /srv/src/m >/tmp/src
drop_caches
tree_sums /models/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after the restarts differs"
echo "FIGURE ublk: $KR_KILLS kill -9 during the sha256 of $SIZE MiB: $KR_ERRORS read errors, $KR_SECONDS s"
ctl umount m || fail "umount"
wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 30 || fail "devices left after umount"
bc_stop
pass "ublk: $KR_KILLS kill -9 of the daemon during the sha256 of a $SIZE MiB file: 0 read errors, same devices and mount"
