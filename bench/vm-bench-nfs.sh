# bench/vm-bench-nfs.sh: the guest half of bench/run-nfs (Debian guest: systemd, nfs-kernel-server,
# cachefilesd). Not a test. One PHASE per boot, because /dev/cachefiles has one holder per host:
#   fsc         NFS mounted with -o fsc + Debian's cachefilesd (classic cachefiles mode)
#   blobcached  blobcached with its managed NFS origin (on-demand front end, EROFS)
# Both phases export the same model (the same bytes, generated from a fixed seed and published
# the same way) from the guest's nfs-kernel-server over 127.0.0.1, and both measure plain NFS
# (no fsc) as the reference. Every NFS byte is counted by the server itself: the read bytes of
# the "io" line of /proc/net/rpc/nfsd. Prints per-repetition results between
# BENCH-NFS-RES-BEGIN/END (after every repetition; the last block wins), the model's digests on
# a BENCH-NFS-MODEL line, the fsc checks on BENCH-NFS-CHECK lines, and raw output between
# BENCH-RAW-BEGIN/END. bench/run-nfs turns both boots' output into one table.
#
# Arguments: PHASE MODEL_MB REPS
# bench/run-nfs inserts the job files of bench/fio/ at the @FIO-JOBS@ line (into /tmp/fio/).
# vm: --rootfs debian --timeout 3000 --mem 3072 --cache-size 4G --work-size 4G
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh

PHASE=${1:-fsc}
MODEL_MB=${2:-256}
REPS=${3:-1}

# @FIO-JOBS@

FIO_DIR=/tmp/fio
RES=/tmp/res # one file per measurement: lines "MiB/s wall_s server_bytes rep"
RAW=/tmp/raw.txt
EXPORT=/srv/export
NMNT=/mnt/nfs
MNT=/models/m
# cachefilesd's cache: on the cache volume (/dev/vda, ext4), the disk blobcached caches on.
FSC_DIR=/var/cache/blobcached/fscache
SEED=20261206
mkdir -p $RES $NMNT $MNT
: >$RAW

uptime_s() { awk '{ print $1 }' /proc/uptime; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
raw() { echo "$*" >>$RAW; }
record() { echo "$2 $3 ${4:--} $rep" >>"$RES/$1"; }
# try_wait CMD TIMEOUT: like wait_for, but returns 1 instead of failing the script.
try_wait() {
	_tw_deadline=$(($(date +%s) + $2))
	while ! eval "$1"; do
		[ "$(date +%s)" -lt "$_tw_deadline" ] || { note "timed out after $2 s: $1"; return 1; }
		sleep 0.2
	done
}

# nfsd_bytes: the bytes the NFS server has read for clients' READs since it started (the "io"
# line of /proc/net/rpc/nfsd: read bytes, written bytes).
nfsd_bytes() { awk '$1 == "io" { print $2 }' /proc/net/rpc/nfsd; }
# fscache_io: the "IO" line of /proc/fs/fscache/stats (reads from and writes to the cache).
fscache_io() { grep '^IO' /proc/fs/fscache/stats 2>/dev/null | tr -s ' ' || echo "no fscache stats"; }
# cache_bytes DIR: the bytes of data under DIR (allocated blocks: cache files are sparse).
cache_bytes() { du -s -B1 "$1" 2>/dev/null | awk '{ print $1 + 0 }'; }

# run_fio NAME JOB FILE: fio with the job file on FILE, page cache dropped first; sets FIO_MIBS
# (bandwidth of all jobs) and FIO_WALL (runtime of the slowest job); raw JSON to $RAW.
run_fio() {
	_name=$1 _job=$2 _file=$3
	drop_caches
	_t0=$(uptime_s)
	BENCH_FILE=$_file fio --eta=never --output-format=json --output=/tmp/fio.json "$FIO_DIR/$_job"
	_rc=$?
	_t1=$(uptime_s)
	raw "### $_name: fio $_job on $_file (rep $rep, exit $_rc, wall $(fsub "$_t1" "$_t0") s incl. fio start-up)"
	cat /tmp/fio.json >>$RAW
	[ $_rc = 0 ] || { note "fio $_name failed ($_rc)"; return 1; }
	set -- $(awk '
		/"read" *: *\{/ { inr = 1 }
		inr && /"io_bytes"/ { gsub(/[^0-9]/, "", $3); b = $3 }
		inr && /"bw_bytes"/ { gsub(/[^0-9]/, "", $3); bw = $3 }
		inr && /"runtime"/ { gsub(/[^0-9]/, "", $3); rt = $3; exit }
		END { printf "%s %.2f %.3f\n", b, bw / 1048576, rt / 1000 }' /tmp/fio.json)
	FIO_BYTES=$1 FIO_MIBS=$2 FIO_WALL=$3
	note "$_name: $FIO_MIBS MiB/s, $FIO_WALL s, $FIO_BYTES bytes"
}

# measure NAME JOB FILE: run_fio and record it with the server's bytes since N0 (set by the
# caller before the mount, so that a mount's own reads count too).
measure() {
	run_fio "$1" "$2" "$3" || return 1
	_sent=$(($(nfsd_bytes) - N0))
	record "$1" "$FIO_MIBS" "$FIO_WALL" "$_sent"
	raw "### $1: the NFS server sent $_sent bytes"
	note "$1: the NFS server sent $_sent bytes"
}

nfs_umount() {
	while grep -q " $NMNT nfs" /proc/mounts; do umount $NMNT || return 1; done
}
# nfs_mount [OPTION]: a fresh NFS client mount of the export at $NMNT (read-only, the client's
# defaults otherwise: NFS 4.2 here; the mount line goes into the raw output).
nfs_mount() {
	nfs_umount || return 1
	mount -t nfs -o ro${1:+,$1} 127.0.0.1:$EXPORT $NMNT || return 1
	raw "### mount: $(grep " $NMNT nfs" /proc/mounts)"
}

# --- the fsc baseline --------------------------------------------------------------------------

# Debian's cachefilesd, run in the foreground (-n) with messages to stderr (-s): the package's
# LSB init script reports a failure when the daemon has not written its pid file yet (a race
# that TCG's slowness makes frequent), and this script needs to know when the cache is gone.
CFD_PID=
cfd_stop() {
	[ -n "$CFD_PID" ] || return 0
	kill "$CFD_PID" 2>/dev/null
	wait "$CFD_PID" 2>/dev/null
	CFD_PID=
}
# fsc_fresh: unmount, stop cachefilesd, empty its cache directory, start it, mount with -o fsc.
fsc_fresh() {
	nfs_umount || return 1
	cfd_stop
	try_wait "! grep -q mycache /proc/fs/fscache/caches" 30 || return 1
	rm -rf "${FSC_DIR:?}"/*
	cachefilesd -n -s -f /etc/cachefilesd.conf >>/tmp/cachefilesd.log 2>&1 &
	CFD_PID=$!
	try_wait "grep -q mycache /proc/fs/fscache/caches" 30 || {
		tail -n 20 /tmp/cachefilesd.log
		cat /proc/fs/fscache/caches
		return 1
	}
	N0=$(nfsd_bytes)
	nfs_mount fsc
}

# check NAME VERDICT DETAIL: a line for the table of checks (bench/run-nfs prints it).
check() {
	echo "BENCH-NFS-CHECK $1 $2 $3"
	raw "### check $1: $2: $3"
	[ "$2" = yes ] || FSC_DEFECT=1
}

fsc_setup() {
	# Debian's /etc/cachefilesd.conf as shipped, but for its cache directory
	# (/var/cache/fscache on the root disk by default): onto the cache volume.
	mkdir -p $FSC_DIR
	sed -i "s|^dir .*|dir $FSC_DIR|" /etc/cachefilesd.conf
	raw "### /etc/cachefilesd.conf (comments left out):"
	grep -v '^#' /etc/cachefilesd.conf | grep . >>$RAW
	raw "### cache volume: $(grep ' /var/cache/blobcached ' /proc/mounts)"
	raw "### $(dpkg-query -W cachefilesd 2>/dev/null)"
}

fsc_rep() {
	f=$NMNT/blobs/sha256/$DATA
	# Cold: empty cache, page cache dropped.
	if fsc_fresh && io0=$(fscache_io) && measure fsc-cold seq-read.fio "$f"; then
		# The copy to the cache is written behind the read: give it up to 15 s.
		try_wait "[ \$(cache_bytes $FSC_DIR) -ge \$((DATA_SIZE * 95 / 100)) ]" 15
		cb=$(cache_bytes $FSC_DIR)
		raw "### fsc-cold: fscache IO before: $io0; after: $(fscache_io)"
		raw "### fsc-cold: cache directory $FSC_DIR holds $cb bytes"
		filled=$(awk -v c="$cb" -v d="$DATA_SIZE" 'BEGIN { print (c >= 0.95 * d) ? "yes" : "no" }')
		check "rep$rep-fsc-cache-filled" "$filled" "$cb bytes in $FSC_DIR after the cold read of $DATA_SIZE"
		# Warm: the same cache, page cache dropped: served from fscache, not the server.
		N0=$(nfsd_bytes)
		io0=$(fscache_io)
		if measure fsc-warm seq-read.fio "$f"; then
			raw "### fsc-warm: fscache IO before: $io0; after: $(fscache_io)"
			sent=$(($(nfsd_bytes) - N0))
			ok=$(awk -v s="$sent" -v d="$DATA_SIZE" 'BEGIN { print (s <= 0.05 * d) ? "yes" : "no" }')
			check "rep$rep-fsc-warm-from-cache" "$ok" "the server sent $sent bytes for the warm read"
		fi
	else
		check "rep$rep-fsc-cold" no "the cold -o fsc read did not run"
	fi
	# Eight cold readers, fresh cache.
	fsc_fresh && measure fsc-cold8 seq-read-8.fio "$f"
	raw "### fsc-cold8: cache directory holds $(cache_bytes $FSC_DIR) bytes"
	nfs_umount
	cfd_stop
}

# --- blobcached over the same export -----------------------------------------------------------

origin_mounted() { awk '$2 == "/srv/origin" && $3 ~ /^nfs/ { f = 1 } END { exit !f }' /proc/mounts; }
# bc_fresh: stop the daemon, unmount its origin, empty its cache, start it with the managed NFS
# origin (so each run starts with a fresh NFS client mount, as the fsc runs do), mount the model.
bc_fresh() {
	umount $MNT 2>/dev/null
	bc_stop
	while origin_mounted; do umount /srv/origin || return 1; done
	rm -rf /var/cache/blobcached/blobcached
	mkdir -p /var/cache/blobcached/blobcached
	cat >"$BC_CONF" <<EOF
[cache]
dir = /var/cache/blobcached/blobcached
[origin]
path = /srv/origin
nfs = 127.0.0.1:$EXPORT
[daemon]
catalogue = /srv/catalogue
run_dir = /run/blobcached
EOF
	N0=$(nfsd_bytes)
	bc_start || return 1
	try_wait origin_mounted 30 || { bc_show_log; return 1; }
	raw "### origin mount: $(grep ' /srv/origin nfs' /proc/mounts)"
	mount -t erofs -o fsid=m none $MNT || { note "mount failed"; bc_show_log; return 1; }
}

bc_rep() {
	if bc_fresh && measure bc-cold seq-read.fio $MNT/model.safetensors; then
		raw "### bc-cold: daemon origin_bytes $(bc_stat origin_bytes)"
		N0=$(nfsd_bytes)
		measure bc-warm seq-read.fio $MNT/model.safetensors
	fi
	if bc_fresh && measure bc-cold8 seq-read-8.fio $MNT/model.safetensors; then
		raw "### bc-cold8: daemon status:"
		cat "$BC_STATUS" >>$RAW
	fi
	umount $MNT 2>/dev/null
	bc_stop
	while origin_mounted; do umount /srv/origin || break; done
}

# --- set-up ------------------------------------------------------------------------------------

note "phase $PHASE: model one ${MODEL_MB} MiB file (seed $SEED) + config.json; $REPS repetition(s)"
case $PHASE in fsc | blobcached) ;; *) fail "unknown phase '$PHASE' (fsc or blobcached)" ;; esac
command -v fio >/dev/null || fail "fio is not in the guest (bench/run-nfs passes --with-binary fio)"
modprobe nfsd && modprobe nfs || fail "modprobe nfsd nfs"
mkdir -p /etc/nfs.conf.d /srv/src/m $EXPORT /srv/catalogue /srv/origin
printf '[nfsd]\ngrace-time=10\nlease-time=10\n' >/etc/nfs.conf.d/blobcache-bench.conf
# The same bytes in both boots: a fixed seed (checked on the host by the data blob's digest).
python3 -c '
import random, sys
r = random.Random(int(sys.argv[1]))
with open(sys.argv[3], "wb") as f:
    for _ in range(int(sys.argv[2])):
        f.write(r.randbytes(1 << 20))
' $SEED "$MODEL_MB" /srv/src/m/model.safetensors || fail "model generation"
echo '{"architectures": ["BenchForCausalLM"]}' >/srv/src/m/config.json
# One data blob (the file and config.json packed), as the figures of bench/README assume.
blobcachectl publish --blob-min 16T --catalogue /srv/catalogue m /srv/src/m $EXPORT >/dev/null || fail "publish"
rm -rf /srv/src/m
DATA=$(bc_model_blob m data)
META=$(bc_model_blob m meta)
DATA_SIZE=$(file_size $EXPORT/blobs/sha256/"$DATA")
MODEL_SIZE=$((DATA_SIZE + $(file_size $EXPORT/blobs/sha256/"$META")))
echo "BENCH-NFS-MODEL data=$DATA data_size=$DATA_SIZE meta=$META model_size=$MODEL_SIZE"
echo "$EXPORT 127.0.0.1(ro,no_subtree_check,fsid=1)" >/etc/exports
systemctl restart nfs-server || fail "nfs-server start"
sync
ko=$(modinfo -F filename cachefiles 2>/dev/null)
echo "BENCH-NFS-KERNEL $(uname -r); cachefiles $ko version $(modinfo -F version cachefiles 2>/dev/null)" \
	"srcversion $(cat /sys/module/cachefiles/srcversion 2>/dev/null)"
raw "### $(nproc) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB, kernel $(uname -r)"
[ $PHASE = blobcached ] || fsc_setup

# --- measurements ------------------------------------------------------------------------------

report() {
	echo "BENCH-NFS-RES-BEGIN $PHASE $1"
	for f in $RES/*; do [ -f "$f" ] && sed "s|^|${f##*/} |" "$f"; done
	echo "BENCH-NFS-RES-END"
}

rep=1
while [ $rep -le "$REPS" ]; do
	note "=== phase $PHASE, repetition $rep of $REPS"
	# The reference: plain NFS, no fsc, one reader, fresh mount.
	N0=$(nfsd_bytes)
	nfs_mount && measure nfs-plain seq-read.fio $NMNT/blobs/sha256/"$DATA"
	nfs_umount
	if [ $PHASE = fsc ]; then
		N0=$(nfsd_bytes)
		nfs_mount && measure nfs-plain8 seq-read-8.fio $NMNT/blobs/sha256/"$DATA"
		nfs_umount
		fsc_rep
	else
		bc_rep
	fi
	report "$rep"
	rep=$((rep + 1))
done
echo "BENCH-RAW-BEGIN"
echo "### every repetition (name MiB/s wall_s server_bytes rep):"
for f in $RES/*; do sed "s|^|${f##*/} |" "$f"; done
cat $RAW
if [ $PHASE = fsc ]; then
	echo "--- /proc/fs/fscache/stats ---"
	cat /proc/fs/fscache/stats
	echo "--- cachefilesd log (tail) ---"
	tail -n 20 /tmp/cachefilesd.log
else
	echo "--- blobcached log (tail) ---"
	tail -n 30 "$BC_LOG"
fi
echo "--- /proc/net/rpc/nfsd ---"
cat /proc/net/rpc/nfsd
echo "BENCH-RAW-END"
[ -z "${FSC_DEFECT:-}" ] || fail "the -o fsc baseline did not cache (see BENCH-NFS-CHECK)"
if [ $PHASE = fsc ]; then
	[ -s $RES/fsc-cold ] || fail "no cold -o fsc read was measured"
else
	[ -s $RES/bc-cold ] || fail "no cold read through blobcached was measured"
fi
pass "bench-nfs $PHASE"
