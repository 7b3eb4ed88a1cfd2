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

bc_kill9_reader /mnt/m/model.safetensors "$SIZE" "$KILLS"
kills=$KR_KILLS
echo "reader: $SIZE MiB in $KR_SECONDS s across $kills kill -9 of the daemon; $KR_ERRORS read errors"
assert_eq 0 "$KR_ERRORS" "read errors"
assert_eq "$KILLS" "$kills" "kills during the read"
assert_eq yes "$KR_MID" "the reader still running when the last kill landed"
assert_eq "$want" "$KR_SUM" "sha256 of the file read across the restarts"
resumed=$(grep -c "resumed the cache from the device holder" $BC_LOG)
assert_eq "$kills" "$resumed" "restarts that resumed the cache with restore"
# The whole model, once more, after the last restart.
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after the restarts differs"
umount /mnt/m
bc_stop
pass "$kills kill -9 of the daemon during the sha256 of a $SIZE MiB file: 0 read errors, sum correct"
