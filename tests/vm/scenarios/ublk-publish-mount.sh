# The ublk front end on Debian's stock modules (no on-demand support, no rebuilt module):
# publish a model (one large file, many small ones), start with frontend = ublk, mount it with
# blobcachectl mount (one /dev/ublkbN per blob), and check the sha256 of every file; after
# blobcachectl umount no ublk device is left and the daemon's fd count is back to its baseline.
# Then frontend = auto picks ublk on this kernel and says so; blobcache-kcheck reports the two
# front ends.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
ublk_devs() { ls /dev/ublkb* /dev/ublkc* 2>/dev/null | wc -l; }
fds() { ls /proc/"$BC_PID"/fd | wc -l; }

modprobe ublk_drv || fail "modprobe ublk_drv"
[ -c /dev/ublk-control ] || fail "no /dev/ublk-control after modprobe ublk_drv"
# blobcache-kcheck tells, per front end, what this kernel can use (the probe binds for a moment).
mkdir -p /var/cache/blobcached/kprobe
blobcache-kcheck --probe /var/cache/blobcached/kprobe >/tmp/kcheck.out 2>&1
sed -n '/^front ends/,$p' /tmp/kcheck.out
grep -q "ondemand: not usable on this kernel" /tmp/kcheck.out || fail "kcheck: on-demand not reported unusable"
grep -q "ublk: usable (/dev/ublk-control is there)" /tmp/kcheck.out || fail "kcheck: ublk not reported usable"
grep -q "the ublk front end can" /tmp/kcheck.out || fail "kcheck: result line does not name ublk"
make_model /srv/src/m 48 150
bc_publish m /srv/src/m --blob-min 1M || fail "publish" # default layout: packed + large file

bc_config workers=4 frontend=ublk
bc_start || fail "daemon start (frontend = ublk)"
grep -q "front end: ublk (\[daemon\] frontend = ublk)" $BC_LOG || fail "front end not logged"
assert_eq ublk "$(bc_stat frontend)" "front end in the status file"
fd_base=$(fds)
mkdir -p /models/m
ctl mount m /models/m || fail "blobcachectl mount m"
assert_eq erofs "$(fs_type /models/m)" "filesystem at /models/m"
assert_eq 3 "$(ls /dev/ublkb* | wc -l)" "block devices (meta + packed + large file)"
# The mount (and the kernel's partition scan of the new devices) fetch a few chunks, no
# read-ahead: at most the metadata blob, the first and the last chunk of each data blob.
at_mount=$(bc_stat origin_bytes)
echo "origin bytes after the mount: $at_mount"
[ "$at_mount" -le $((5 * 1048576)) ] || fail "the mount fetched $at_mount bytes (read-ahead of a probe?)"
grep " /models/m " /proc/mounts
src=$(awk '$2 == "/models/m" { s = $1 } END { print s }' /proc/mounts) # the last: over the anchor
case "$src" in /dev/ublkb*) ;; *) fail "mount source $src is not a ublk device" ;; esac

tree_sums /srv/src/m >/tmp/src
start=$(now)
tree_sums /models/m >/tmp/mnt || fail "reading the model"
took=$(elapsed_since "$start")
assert_eq "$(wc -l </tmp/src)" "$(wc -l </tmp/mnt)" "file count"
cmp /tmp/src /tmp/mnt || { diff /tmp/src /tmp/mnt | head; fail "content differs"; }

reads=$(bc_stat ublk_reads)
failed=$(bc_stat ublk_reads_failed)
origin=$(bc_stat origin_bytes)
verify=$(bc_stat verify_failures)
echo "FIGURE ublk cold read: $(wc -l </tmp/mnt) files, sha256 equal, ${took} s; ublk_reads=$reads origin_bytes=$origin reads_failed=$failed"
[ "$reads" -gt 0 ] || fail "no request reached the daemon"
assert_eq 0 "$failed" "failed ublk requests"
assert_eq 0 "$verify" "verify failures"
[ "$origin" -ge $((48 * 1048576)) ] || fail "origin bytes $origin < model size"
data=$(bc_model_blob m data)
[ -f /var/cache/blobcached/blobcached/ublk/$data ] || fail "no cache file keyed by the data blob digest"
[ -f /var/cache/blobcached/blobcached/ublk/$data.map ] || fail "no chunk map beside it"
grep -q "^dev [0-9]* model m blob $data data" /run/blobcached/ublk-devices ||
	fail "data device not in the record: $(cat /run/blobcached/ublk-devices)"

ctl umount m || fail "blobcachectl umount m"
wait_for '[ "$(ublk_devs)" = 0 ]' 20 || fail "ublk devices left after umount: $(ls /dev/ublk*)"
grep -q "/models/m" /proc/mounts && fail "still mounted after umount"
wait_for '[ "$(fds)" = "$fd_base" ]' 10 || fail "fd count $(fds) after umount, $fd_base before the mount"
assert_eq 0 "$(bc_stat ublk_devices)" "live devices after umount"
grep -q "^dev " /run/blobcached/ublk-devices && fail "devices still recorded after umount"
echo "after umount: no /dev/ublk[bc]*, fds $(fds) = $fd_base"
bc_stop

# frontend = auto on this kernel (cachefiles without on-demand): ublk, said in the log.
: >$BC_LOG
bc_config workers=4
bc_start || fail "daemon start (frontend = auto)"
grep -q "front end: ublk (frontend = auto: this kernel has no cachefiles on-demand mode" $BC_LOG ||
	fail "auto did not pick ublk (or did not say so)"
assert_eq ublk "$(bc_stat frontend)" "front end picked by auto"
ctl mount m /models/m || fail "mount with frontend = auto"
sha256sum /models/m/model.safetensors | cut -d' ' -f1 >/tmp/got
sha256sum /srv/src/m/model.safetensors | cut -d' ' -f1 >/tmp/want
cmp /tmp/want /tmp/got || fail "content differs with frontend = auto"
ctl umount m || fail "umount with frontend = auto"
wait_for '[ "$(ublk_devs)" = 0 ]' 20 || fail "ublk devices left after the second umount"
bc_stop
pass "ublk: publish, blobcachectl mount, sha256 of every file, nothing left after umount"
