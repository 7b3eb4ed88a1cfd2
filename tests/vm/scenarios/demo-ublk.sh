# The demo on a stock kernel: the same sample model served through the ublk front end (Debian's
# own modules, no rebuilt module): devices made at mount, the lazy fill, the second read from
# the cache volume, nothing left after umount.
# vm: --modules stock --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'echo; echo "(daemon log: last lines)"; tail -n 15 $BC_LOG' EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
mib() {
	if [ "$1" -lt 1048576 ]; then echo "$(($1 / 1024)) KiB"; else
		echo "$(($1 / 1048576)).$(( ($1 % 1048576) * 10 / 1048576 )) MiB"; fi
}
step() { echo; echo "== $*"; }

step "1. A sample model: one 64 MiB weights file and 200 small files"
make_model /srv/src/sample 64 200
du -sh /srv/src/sample

step "2. Publish it: EROFS metadata blob + chunked data blob, named by sha256"
bc_publish sample /srv/src/sample
ls -l /srv/origin/blobs/sha256/
model_size=$(cat /srv/origin/blobs/sha256/* | wc -c)

step "3. A stock kernel: no cachefiles on-demand mode; load ublk_drv"
modprobe ublk_drv
blobcache-kcheck | sed -n '/^front ends/,$p'

step "4. Start blobcached with frontend = auto: it picks ublk"
bc_config workers=4
bc_start
grep "front end" "$BC_LOG"

step "5. Mount through the daemon: blobcachectl mount sample /models/sample"
mkdir -p /models/sample
ctl mount sample /models/sample
grep " /models/sample " /proc/mounts | tail -n 1
ls -l /dev/ublkb*
echo "origin bytes so far: $(mib "$(bc_stat origin_bytes)") of $(mib "$model_size")"

step "6. Read one small file: only its chunk is fetched"
cat /models/sample/config.json
echo "origin bytes so far: $(mib "$(bc_stat origin_bytes)"), ublk requests: $(bc_stat ublk_reads)"

step "7. Read the whole model (sha256 of every file, checked against the source)"
t0=$(date +%s)
tree_sums /models/sample >/tmp/mnt
t1=$(date +%s)
tree_sums /srv/src/sample >/tmp/src
cmp /tmp/src /tmp/mnt && echo "all $(wc -l </tmp/mnt) files match the source"
reads_cold=$(bc_stat ublk_reads)
cached_cold=$(bc_stat ublk_reads_cached)
origin_cold=$(bc_stat origin_bytes)
echo "cold read: $((t1 - t0)) s; ublk requests: $reads_cold; from the origin: $(mib "$origin_cold")"

step "8. Drop the page cache and read everything again: from the cache volume, through the daemon"
drop_caches
t0=$(date +%s)
tree_sums /models/sample >/tmp/mnt2
t1=$(date +%s)
cmp /tmp/src /tmp/mnt2 && echo "all files match again"
reads_warm=$(bc_stat ublk_reads)
cached_warm=$(bc_stat ublk_reads_cached)
origin_warm=$(bc_stat origin_bytes)
echo "warm read: $((t1 - t0)) s; new ublk requests: $((reads_warm - reads_cold)), of them from the cache file: $((cached_warm - cached_cold)); new origin bytes: $((origin_warm - origin_cold))"

step "9. Status, then umount: the devices go"
grep "^ublk\|^frontend" "$BC_STATUS"
ctl umount sample
wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 20
echo "after umount: $(ls /dev/ublkb* 2>/dev/null | wc -l) ublk devices; cache files:"
ls -l /var/cache/blobcached/blobcached/ublk/
bc_stop
cmp -s /tmp/src /tmp/mnt2 || fail "warm read differs"
[ "$origin_warm" = "$origin_cold" ] || fail "warm read went to the origin"
[ $((cached_warm - cached_cold)) -gt 0 ] || fail "warm read not served from the cache file"
pass "demo (ublk)"
