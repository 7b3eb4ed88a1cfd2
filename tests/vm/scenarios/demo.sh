# The demo: publish a sample model, serve it with blobcached on a real 6.12 kernel, and show the
# lazy fill: what each step costs the origin and what the cache holds.
# vm: --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'echo; echo "(daemon log: last lines)"; tail -n 15 $BC_LOG' EXIT

mib() {
	if [ "$1" -lt 1048576 ]; then echo "$(($1 / 1024)) KiB"; else
		echo "$(($1 / 1048576)).$(( ($1 % 1048576) * 10 / 1048576 )) MiB"; fi
}
cache_bytes() { du -sk /var/cache/blobcached/blobcached/cache | awk '{print $1 * 1024}'; }
step() { echo; echo "== $*"; }

step "1. A sample model: one 64 MiB weights file and 200 small files"
make_model /srv/src/sample 64 200
du -sh /srv/src/sample

step "2. Publish it: EROFS metadata blob + chunked data blob, named by sha256"
bc_publish sample /srv/src/sample
ls -l /srv/origin/blobs/sha256/
model_size=$(cat /srv/origin/blobs/sha256/* | wc -c)

step "3. Start blobcached (file origin /srv/origin, cache on the ext4 volume)"
blobcache-kcheck | tail -n 1
bc_config workers=4
bc_start
cat "$BC_LOG"

step "4. Mount by fsid: mount -t erofs -o fsid=sample none /models/sample"
mkdir -p /models/sample
mount -t erofs -o fsid=sample none /models/sample
ls /models/sample | head
echo "origin bytes so far: $(mib "$(bc_stat origin_bytes)") of $(mib "$model_size") (metadata only)"

step "5. Read one small file: only its chunk is fetched"
before=$(bc_stat origin_bytes)
cat /models/sample/config.json
small=$(($(bc_stat origin_bytes) - before))
echo "origin bytes for config.json: $small (one 1 MiB chunk at most); so far: $(mib "$(bc_stat origin_bytes)"), READs: $(bc_stat reads)"
# Read-ahead follows a sequential reader, not a single request: one small file costs one chunk.
[ "$small" -le 1048576 ] || fail "reading config.json fetched $small bytes from the origin"
blobcachectl --run-dir /run/blobcached status

step "6. Read the whole model (sha256 of every file, checked against the source)"
t0=$(date +%s)
tree_sums /models/sample >/tmp/mnt
t1=$(date +%s)
tree_sums /srv/src/sample >/tmp/src
cmp /tmp/src /tmp/mnt && echo "all $(wc -l </tmp/mnt) files match the source"
reads_cold=$(bc_stat reads)
origin_cold=$(bc_stat origin_bytes)
echo "cold read: $((t1 - t0)) s; READs: $reads_cold; from the origin: $(mib "$origin_cold")"

step "7. Drop the page cache and read everything again: served from the cache volume"
drop_caches
t0=$(date +%s)
tree_sums /models/sample >/tmp/mnt2
t1=$(date +%s)
cmp /tmp/src /tmp/mnt2 && echo "all files match again"
reads_warm=$(bc_stat reads)
origin_warm=$(bc_stat origin_bytes)
echo "warm read: $((t1 - t0)) s; new READs: $((reads_warm - reads_cold)); new origin bytes: $((origin_warm - origin_cold))"

step "8. Status"
bytes_read=$(( 2 * $(find /srv/src/sample -type f -exec cat {} + | wc -c) ))
echo "read by the application: $(mib $bytes_read) (two passes)"
echo "from the origin:         $(mib "$origin_warm")"
echo "from the cache:          $(mib $((bytes_read - origin_warm > 0 ? bytes_read - origin_warm : 0)))"
echo "--- blobcachectl status ---"
blobcachectl --run-dir /run/blobcached status
echo "--- /run/blobcached/status ---"
cat "$BC_STATUS"
# Cache files of a mounted model are unlinked (O_TMPFILE) until the unmount links them in.
umount /models/sample
sync
echo "cache volume holds after umount: $(mib "$(cache_bytes)")"
bc_stop
[ "$reads_warm" = "$reads_cold" ] || fail "warm read reached the daemon"
pass "demo"
