# bench/vm-bench.sh: the guest half of bench/run (busybox sh, in the tests/vm VM). Not a test.
# Measures, on the same model bytes in one boot: direct origin reads (file, HTTP via nginx), cold
# and warm reads through blobcached (on-demand front end, then ublk), a plain file on the cache
# volume, 8 concurrent cold readers, and rclone's VFS cache over the same nginx origin. Prints a markdown table between
# BENCH-TABLE-BEGIN/END and the raw fio/curl output between BENCH-RAW-BEGIN/END.
#
# Arguments: MODEL_MB REPS [WORD...]   WORDs: http rclone ublk (leave those rows out), scale (add
# the scale rows: a model 4x MODEL_MB, 1/8/32 cold readers)
# bench/run inserts the job files of bench/fio/ at the @FIO-JOBS@ line (into /tmp/fio/).
# vm: --timeout 3000 --mem 3072 --cache-size 4G --work-size 4G
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh

MODEL_MB=${1:-256}
REPS=${2:-1}
shift 2 2>/dev/null
SKIP=" $* "

# @FIO-JOBS@

FIO_DIR=/tmp/fio
RES=/tmp/res   # one file per measurement: lines "MiB/s wall_s origin_bytes"
RAW=/tmp/raw.txt
NGINX_DIR=/tmp/nginx
NGINX_LOG=$NGINX_DIR/access.log
PORT=8080
URL=http://127.0.0.1:$PORT
MNT=/models/m
BM=m   # the model bc_fresh mounts at $MNT
RC_MNT=/mnt/rclone
RC_CACHE=/var/cache/blobcached/rclone
PLAIN=/var/cache/blobcached/plain/model.safetensors
BIG_MNT=/models/big
mkdir -p $RES $MNT $RC_MNT $BIG_MNT
: >$RAW

uptime_s() { awk '{ print $1 }' /proc/uptime; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
raw() { echo "$*" >>$RAW; }
have() { command -v "$1" >/dev/null 2>&1; }
skipped() { case $SKIP in *" $1 "*) return 0 ;; esac; return 1; }
wanted() { skipped "$1"; }
# try_wait CMD TIMEOUT: like wait_for, but returns 1 instead of failing the script.
try_wait() {
	_tw_deadline=$(($(date +%s) + $2))
	while ! eval "$1"; do
		[ "$(date +%s)" -lt "$_tw_deadline" ] || { note "timed out after $2 s: $1"; return 1; }
		sleep 0.2
	done
}

# record NAME MIBS WALL [ORIGIN_BYTES]: one line per repetition, the repetition last.
record() { echo "$2 $3 ${4:--} $rep" >>"$RES/$1"; }

# run_fio NAME JOB FILE: fio with the job file on FILE; records fio's bandwidth (all jobs) and
# runtime (the slowest job), raw JSON to $RAW. Prints nothing; returns fio's status.
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

# proc_snap: "busy total" jiffies of all guest CPUs, then the daemon's utime+stime (0 if none).
proc_snap() {
	awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d ", t - $5 - $6, t }' /proc/stat
	if [ -n "$BC_PID" ] && [ -r /proc/$BC_PID/stat ]; then
		sed 's/.*) //' /proc/$BC_PID/stat | awk '{ print $12 + $13 }'
	else
		echo 0
	fi
}
# verify_us: the daemon's CPU time hashing fetched chunks so far (status verify_cpu_us: its pool
# threads' own CPU clock around sha256), "x" if this daemon does not count it. Waits for a
# fresh status file (1.1 s).
verify_us() {
	_v=$(bc_stat verify_cpu_us)
	echo "${_v:-x}"
}
# cpu_snap: proc_snap and verify_us, the latter read first (its wait stays out of the window).
cpu_snap() {
	_v=$(verify_us)
	echo "$(proc_snap) $_v"
}
# cpu_since SNAP NAME: record guest CPU busy %, the daemon's CPU seconds since SNAP, of which
# hashing, and the rest ("busy cpu hash rest rep"; hash and rest "-" if not counted).
cpu_since() {
	set -- $1 $(proc_snap) $(verify_us) "$2"
	_busy=$(awk -v b0="$1" -v t0="$2" -v b1="$5" -v t1="$6" 'BEGIN { printf "%.0f", (t1 > t0) ? 100 * (b1 - b0) / (t1 - t0) : 0 }')
	_dcpu=$(awk -v d0="$3" -v d1="$7" 'BEGIN { printf "%.2f", (d1 - d0) / 100 }')
	if [ "$4" = x ] || [ "$8" = x ]; then
		_hash=- _rest=-
	else
		_hash=$(awk -v v0="$4" -v v1="$8" 'BEGIN { printf "%.2f", (v1 - v0) / 1e6 }')
		_rest=$(awk -v c="$_dcpu" -v h="$_hash" 'BEGIN { printf "%.2f", c - h }')
	fi
	echo "$_busy $_dcpu $_hash $_rest $rep" >>"$RES/cpu-$9"
	raw "### $9: guest CPUs ${_busy}% busy, daemon ${_dcpu} CPU-s, of which hashing $_hash"
	note "$9: guest CPUs ${_busy}% busy, daemon ${_dcpu} CPU-s, of which hashing $_hash"
}

# nginx_bytes: sum of $body_bytes_sent in the access log so far.
nginx_bytes() { [ -f $NGINX_LOG ] || { echo 0; return; }; awk '{ s += $NF } END { printf "%.0f\n", s }' $NGINX_LOG; }

start_nginx() {
	mkdir -p $NGINX_DIR
	cat >$NGINX_DIR/nginx.conf <<EOF
user root root;
worker_processes 2;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log;
events { worker_connections 256; }
http {
	log_format bench '\$request_method \$uri \$status \$http_range \$body_bytes_sent';
	access_log $NGINX_LOG bench;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000;
	client_body_temp_path $NGINX_DIR/body;
	proxy_temp_path $NGINX_DIR/proxy;
	fastcgi_temp_path $NGINX_DIR/fastcgi;
	uwsgi_temp_path $NGINX_DIR/uwsgi;
	scgi_temp_path $NGINX_DIR/scgi;
	server {
		listen 127.0.0.1:$PORT;
		root /srv/origin;
		autoindex on;
	}
}
EOF
	nginx -e $NGINX_DIR/error.log -c $NGINX_DIR/nginx.conf || return 1
	try_wait "wget -q -O /dev/null $URL/models/ 2>/dev/null" 20
}

# bc_fresh file|http [ublk]: stop the daemon, wipe the cache directory, restart, mount the
# model: on-demand (mount -t erofs -o fsid=m), or with ublk through blobcachectl mount (one
# /dev/ublkbN per blob).
bc_fresh() {
	bc_umount
	bc_stop
	rm -rf /var/cache/blobcached/blobcached
	if [ "$2" = ublk ]; then bc_config frontend=ublk; else bc_config frontend=ondemand; fi
	if [ "$1" = http ]; then
		sed -i "s|^path = .*|url = $URL|" "$BC_CONF"
	fi
	bc_start || return 1
	if [ "$2" = ublk ]; then
		ctl mount $BM $MNT || { note "blobcachectl mount failed"; bc_show_log; return 1; }
	else
		mount -t erofs -o fsid=$BM none $MNT || { note "mount failed"; bc_show_log; return 1; }
	fi
}
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
# bc_umount: unmount the model, through the daemon in ublk mode (which removes the devices).
bc_umount() {
	grep -q " $MNT " /proc/mounts || return 0
	if [ "$(bc_stat frontend 2>/dev/null)" = ublk ]; then
		ctl umount $BM || umount $MNT
		try_wait '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20
	else
		umount $MNT
	fi
}
# daemon_requests: the requests that reached the daemon so far: READs from cachefiles
# (on-demand) or ublk I/O requests, the latter "total cached" (served from the cache file).
daemon_requests() {
	if [ "$(bc_stat frontend)" = ublk ]; then
		echo "$(sed -n 's/^ublk_reads=//p' "$BC_STATUS") $(sed -n 's/^ublk_reads_cached=//p' "$BC_STATUS")"
	else
		echo "$(sed -n 's/^reads=//p' "$BC_STATUS") 0"
	fi
}
# record_req NAME BEFORE: the requests since BEFORE (daemon_requests), "total cached rep".
record_req() {
	set -- "$1" $2 $(daemon_requests)
	echo "$(($4 - $2)) $(($5 - $3)) $rep" >>"$RES/req-$1"
}

# rc_fresh: unmount rclone, wipe its cache, mount again.
rc_fresh() {
	rc_stop
	rm -rf $RC_CACHE
	mkdir -p $RC_CACHE
	: >/tmp/rclone.conf
	rclone mount :http: $RC_MNT --http-url $URL/ --config /tmp/rclone.conf --read-only \
		--vfs-cache-mode full --cache-dir $RC_CACHE --log-file /tmp/rclone.log \
		--log-level INFO >>/tmp/rclone.log 2>&1 &
	RC_PID=$!
	try_wait "grep -q ' $RC_MNT fuse' /proc/mounts" 60 || { tail -n 20 /tmp/rclone.log; return 1; }
}
rc_stop() {
	grep -q " $RC_MNT fuse" /proc/mounts && umount $RC_MNT
	[ -z "$RC_PID" ] || { kill $RC_PID 2>/dev/null; wait $RC_PID 2>/dev/null; }
	RC_PID=
}

# --- set-up -------------------------------------------------------------------------------------

note "model: one ${MODEL_MB} MiB file (urandom) + config.json; $REPS repetition(s); skip:$SKIP"
have fio || fail "fio is not in the guest (bench/run passes --with-binary fio)"
mkdir -p /srv/src/m
dd if=/dev/urandom of=/srv/src/m/model.safetensors bs=1048576 count="$MODEL_MB" 2>/dev/null ||
	fail "dd"
echo '{"architectures": ["BenchForCausalLM"]}' >/srv/src/m/config.json
t0=$(now)
bc_publish m /srv/src/m >/dev/null || fail "publish"
note "published in $(elapsed_since "$t0") s"
DATA=$(bc_model_blob m data)
META=$(bc_model_blob m meta)
DATA_BLOB=/srv/origin/blobs/sha256/$DATA
DATA_SIZE=$(file_size "$DATA_BLOB")
MODEL_SIZE=$((DATA_SIZE + $(file_size /srv/origin/blobs/sha256/"$META")))
FILE_SIZE=$(file_size /srv/src/m/model.safetensors)
note "data blob $DATA_SIZE bytes, meta+data $MODEL_SIZE bytes, the file $FILE_SIZE bytes"
mkdir -p "${PLAIN%/*}"
cp /srv/src/m/model.safetensors $PLAIN
SMALL_SIZE=$(file_size /srv/src/m/config.json)
sync

# The scale model: one file 4x the size (+ config.json), published next to the first; its
# source is removed once published (the work disk holds the origin).
SCALE=0
if wanted scale; then
	BIG_MB=$((MODEL_MB * 4))
	mkdir -p /srv/src/big
	if dd if=/dev/urandom of=/srv/src/big/model.safetensors bs=1048576 count="$BIG_MB" 2>/dev/null &&
		cp /srv/src/m/config.json /srv/src/big/ && t0=$(now) &&
		bc_publish big /srv/src/big >/dev/null; then
		note "scale model: $BIG_MB MiB, published in $(elapsed_since "$t0") s"
		BIG_FILE_SIZE=$(file_size /srv/src/big/model.safetensors)
		BIG_DATA=$(bc_model_blob big data)
		BIG_DATA_BLOB=/srv/origin/blobs/sha256/$BIG_DATA
		BIG_MODEL_SIZE=$(($(file_size "$BIG_DATA_BLOB") + $(file_size /srv/origin/blobs/sha256/"$(bc_model_blob big meta)")))
		SCALE=1
	else
		SCALE_WHY="making or publishing the $BIG_MB MiB model failed"
		note "no scale rows: $SCALE_WHY"
	fi
	rm -rf /srv/src/big
	sync
fi

HTTP=0
if skipped http; then
	note "HTTP rows skipped (argument)"
elif ! printf '[origin]\npath = /srv/origin\n' >/tmp/probe.conf ||
	! blobcached -c /tmp/probe.conf --dump-config 2>/dev/null | grep -q 'url'; then
	HTTP_WHY="this blobcached has no [origin] url"
elif ! have nginx; then
	HTTP_WHY="nginx is not in the guest"
elif ! start_nginx; then
	HTTP_WHY="nginx did not start: $(cat $NGINX_DIR/error.log)"
else
	HTTP=1
fi
[ $HTTP = 1 ] || note "no HTTP rows: ${HTTP_WHY:-skipped}"
RCLONE=0
if skipped rclone; then
	RC_WHY="skipped (argument)"
elif [ $HTTP = 0 ] && ! have nginx; then
	RC_WHY="needs nginx"
elif ! have rclone || ! have fusermount3; then
	RC_WHY="rclone or fusermount3 is not in the guest"
elif [ ! -c /dev/fuse ]; then
	RC_WHY="no /dev/fuse in this kernel"
else
	# rclone 1.60 runs "fusermount"; fuse3's fusermount3 speaks the same protocol.
	have fusermount || ln -s fusermount3 /usr/bin/fusermount
	if [ -f $NGINX_DIR/nginx.pid ] || start_nginx; then RCLONE=1; else RC_WHY="nginx did not start"; fi
fi
[ $RCLONE = 1 ] || note "no rclone rows: $RC_WHY"
UBLK=0
if skipped ublk; then
	UBLK_WHY="skipped (argument)"
elif ! modprobe ublk_drv 2>/tmp/modprobe.err; then
	UBLK_WHY="modprobe ublk_drv failed: $(cat /tmp/modprobe.err)"
elif [ ! -c /dev/ublk-control ]; then
	UBLK_WHY="no /dev/ublk-control after modprobe ublk_drv"
else
	UBLK=1
fi
[ $UBLK = 1 ] || note "no ublk rows: $UBLK_WHY"

# --- report -------------------------------------------------------------------------------------

# med NAME FIELD: the median (lower middle) of a field over the repetitions; "n/a" if none.
med() {
	[ -s "$RES/$1" ] || { echo n/a; return; }
	awk -v f="$2" '{ print $f }' "$RES/$1" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
# pratio A FIELD B FIELD: the median over repetitions of A/B, each A divided by the B of the same
# repetition (measured minutes apart, under the same host load); n/a if no repetition has both.
pratio() {
	[ -s "$RES/$1" ] && [ -s "$RES/$3" ] || { echo n/a; return; }
	awk -v fa="$2" -v fb="$4" 'NR == FNR { a[$NF] = $fa; next }
		($NF in a) && $fb > 0 { printf "%.4f\n", a[$NF] / $fb }' "$RES/$1" "$RES/$3" |
		sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f\n", v[int((NR + 1) / 2)]; else print "n/a" }'
}
# ratio A B [DIGITS]: A / B, or n/a.
ratio() {
	case "$1$2" in *n/a* | *-*) echo n/a; return ;; esac
	awk -v a="$1" -v b="$2" -v f="%.${3:-2}f\n" 'BEGIN { if (b == 0) print "n/a"; else printf f, a / b }'
}
# verdict VALUE OP TARGET
verdict() {
	[ "$1" != n/a ] || { echo "not measured"; return; }
	awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
		ok = (op == ">=") ? v >= t : v <= t; print ok ? "**met**" : "**MISSED**" }'
}
# row LABEL ORIGIN NAME [MODEL_SIZE]
row() {
	ob=$(med "$3" 3)
	[ "$ob" = n/a ] || [ "$ob" = - ] || ob="$(ratio "$ob" "${4:-$MODEL_SIZE}" 3) ($ob B)"
	[ "$ob" != n/a ] || ob=-
	echo "| $1 | $2 | $(med "$3" 1) | $(med "$3" 2) | $ob |"
}

# pergib VALUE GIB: VALUE / GIB with 2 decimals, n/a or - passed through.
pergib() {
	case "$1" in n/a | - | "") echo "${1:-n/a}"; return ;; esac
	awk -v v="$1" -v g="$2" 'BEGIN { if (g > 0) printf "%.2f\n", v / g; else print "n/a" }'
}
# cpurow FRONTEND ORIGIN NAME GIB: the daemon's CPU-s per GiB (total, hashing, rest).
cpurow() {
	echo "| $1 | $2 | $(pergib "$(med "cpu-$3" 2)" "$4") | $(pergib "$(med "cpu-$3" 3)" "$4") | $(pergib "$(med "cpu-$3" 4)" "$4") | $(med "cpu-$3" 1) % |"
}
# amprow LABEL FRONTEND NAME: bytes asked, origin bytes, their ratio, origin bytes with the mount.
amprow() {
	_a=$(med "$3" 1) _o=$(med "$3" 2)
	echo "| $1 | $2 | $_a | $_o | $(ratio "$_o" "$_a" 1) | $(med "$3" 3) |"
}
# Issue 10's CPU target: "the daemon's cold-path CPU-seconds per GiB, hashing excluded, at most a
# third of today's". Today's, when the issue was filed (bench/results/latest.md of tree 3e21f56,
# file origin, 256 MiB): 12.95 CPU-s for the read minus 6.79 for sha256 alone (row 2b) = 24.6
# CPU-s per GiB; a third: 8.2.
BASE_REST_GIB=24.6
BASE_REST_TARGET=8.2

report() {
	_done=$1
	MIB=$((FILE_SIZE / 1048576))
	r_warm=$(pratio warm 1 plain 1)
	r_warm_ra=$(pratio warm-ra16m 1 plain 1)
	r_cold_file=$(pratio cold-file 1 direct-file 1)
	r_cold_http=$(pratio cold-http 1 direct-http 1)
	r_ob_file=$(ratio "$(med cold8-file 3)" "$MODEL_SIZE" 3)
	r_ob_http=$(ratio "$(med cold8-http 3)" "$MODEL_SIZE" 3)
	r_w_file=$(pratio cold8-file 2 cold-file 2)
	r_w_http=$(pratio cold8-http 2 cold-http 2)
	r_w_plain=$(pratio plain8 2 plain 2)
	r_ob_rc=$(ratio "$(med rclone-cold8 3)" "$MODEL_SIZE" 3)
	r_w_rc=$(pratio rclone-cold8 2 rclone-cold 2)
	r_u_cold_file=$(pratio ublk-cold-file 1 cold-file 1)
	r_u_cold_http=$(pratio ublk-cold-http 1 cold-http 1)
	r_u_warm=$(pratio ublk-warm 1 warm 1)
	r_u_warm_plain=$(pratio ublk-warm 1 plain 1)
	r_u_direct=$(pratio ublk-cold-file 1 direct-file 1)
	r_u_ob8=$(ratio "$(med ublk-cold8-file 3)" "$MODEL_SIZE" 3)
	r_u_w8=$(pratio ublk-cold8-file 2 ublk-cold-file 2)
	r_ob32=$(ratio "$(med cold32-file 3)" "$MODEL_SIZE" 3)
	r_w32=$(pratio cold32-file 2 cold-file 2)
	r_big_direct=$(pratio cold-big 1 direct-big 1)
	r_big_wall=$(pratio cold-big 2 cold-file 2)
	r_big_ob=$(ratio "$(med cold-big 3)" "$BIG_MODEL_SIZE" 3)
	r_big_ob8=$(ratio "$(med cold8-big 3)" "$BIG_MODEL_SIZE" 3)
	r_big_ob32=$(ratio "$(med cold32-big 3)" "$BIG_MODEL_SIZE" 3)
	r_big_w8=$(pratio cold8-big 2 cold-big 2)
	r_big_w32=$(pratio cold32-big 2 cold-big 2)
	GIB=$(awk -v b="$FILE_SIZE" 'BEGIN { printf "%.6f", b / 1073741824 }')
	BIG_GIB=$(awk -v b="${BIG_FILE_SIZE:-0}" 'BEGIN { printf "%.6f", b / 1073741824 }')
	r_rest=$(pergib "$(med cpu-cold-file 4)" "$GIB")

	{
		echo "BENCH-TABLE-BEGIN"
		echo "Model: one $MIB MiB file (+ config.json), published as EROFS: data blob $DATA_SIZE B,"
		echo "meta + data = $MODEL_SIZE B (the \"model size\" below). chunk_size 1M. Kernel $(uname -r),"
		echo "qemu TCG, $(grep -c ^processor /proc/cpuinfo) vCPUs, $(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo) MiB."
		echo "Median of $_done of $REPS repetition(s). MiB/s and seconds are fio's (runtime of the slowest job;"
		echo "bandwidth of all jobs together), curl's for the direct HTTP read. Page cache dropped before every run."
		echo
		echo "| measurement | origin | MiB/s | wall s | origin bytes / model size |"
		echo "|---|---|---|---|---|"
		row "1. direct read of the data blob (fio)" file direct-file
		row "1. direct read of the data blob (curl, nginx)" http direct-http
		row "2. cold read through blobcached, 1 reader" file cold-file
		row "2. cold read through blobcached, 1 reader" http cold-http
		row "2b. (diagnostic) sha256 of the data blob, page cache, openssl" - sha256
		row "3. warm read through blobcached" cache warm
		row "3. plain file on the cache volume" cache plain
		row "3b. (diagnostic) warm, EROFS read_ahead_kb 16384 instead of ${RA_EROFS:-?}" cache warm-ra16m
		row "4. cold read through blobcached, 8 readers" file cold8-file
		row "4. cold read through blobcached, 8 readers" http cold8-http
		row "4b. (reference) plain file on the cache volume, 8 readers" cache plain8
		row "5. rclone --vfs-cache-mode full, cold, 1 reader" http rclone-cold
		row "5. rclone --vfs-cache-mode full, warm" http rclone-warm
		row "5. rclone --vfs-cache-mode full, cold, 8 readers" http rclone-cold8
		row "6. ublk: cold read, 1 reader" file ublk-cold-file
		row "6. ublk: cold read, 1 reader" http ublk-cold-http
		row "6. ublk: warm read (page cache dropped: the daemon serves the cache file)" cache ublk-warm
		row "6. ublk: cold read, 8 readers" file ublk-cold8-file
		if [ $SCALE = 1 ]; then
			row "8. (scale) cold read through blobcached, 32 readers" file cold32-file
			row "8. (scale, $((BIG_FILE_SIZE / 1048576)) MiB model) direct read of the data blob (fio)" file direct-big "$BIG_MODEL_SIZE"
			row "8. (scale, $((BIG_FILE_SIZE / 1048576)) MiB model) cold read, 1 reader" file cold-big "$BIG_MODEL_SIZE"
			row "8. (scale, $((BIG_FILE_SIZE / 1048576)) MiB model) cold read, 8 readers" file cold8-big "$BIG_MODEL_SIZE"
			row "8. (scale, $((BIG_FILE_SIZE / 1048576)) MiB model) cold read, 32 readers" file cold32-big "$BIG_MODEL_SIZE"
		fi
		echo
		echo "Ratios: the median over repetitions of the ratio within each repetition (not a ratio of the medians above)."
		echo
		echo "| ratio | value | target | |"
		echo "|---|---|---|---|"
		echo "| warm / plain file | $r_warm | >= 0.95 | $(verdict "$r_warm" '>=' 0.95) |"
		echo "| (diagnostic) warm with 16 MiB read-ahead / plain file | $r_warm_ra | | |"
		echo "| cold / direct, file origin | $r_cold_file | >= 0.7 | $(verdict "$r_cold_file" '>=' 0.7) |"
		echo "| cold / direct, file origin (issue 10's VM target) | $r_cold_file | >= 0.45 | $(verdict "$r_cold_file" '>=' 0.45) |"
		echo "| cold / direct, HTTP origin | $r_cold_http | >= 0.7 | $(verdict "$r_cold_http" '>=' 0.7) |"
		echo "| 8 readers: origin bytes / model size, file origin | $r_ob_file | <= 1.02 | $(verdict "$r_ob_file" '<=' 1.02) |"
		echo "| 8 readers: origin bytes / model size, HTTP origin | $r_ob_http | <= 1.02 | $(verdict "$r_ob_http" '<=' 1.02) |"
		echo "| 8 readers wall / 1 reader wall, file origin | $r_w_file | <= 1.5 | $(verdict "$r_w_file" '<=' 1.5) |"
		echo "| 8 readers wall / 1 reader wall, HTTP origin | $r_w_http | <= 1.5 | $(verdict "$r_w_http" '<=' 1.5) |"
		echo "| (reference) plain file: 8 readers wall / 1 reader wall | $r_w_plain | | |"
		echo "| rclone 8 readers: origin bytes / model size (baseline) | $r_ob_rc | | |"
		echo "| rclone 8 readers wall / 1 reader wall (baseline) | $r_w_rc | | |"
		echo "| ublk / on-demand, cold, file origin | $r_u_cold_file | | |"
		echo "| ublk / on-demand, cold, HTTP origin | $r_u_cold_http | | |"
		echo "| ublk / on-demand, warm | $r_u_warm | | |"
		echo "| ublk warm / plain file | $r_u_warm_plain | | |"
		echo "| ublk cold / direct, file origin | $r_u_direct | | |"
		echo "| ublk 8 readers: origin bytes / model size, file origin | $r_u_ob8 | <= 1.02 | $(verdict "$r_u_ob8" '<=' 1.02) |"
		echo "| ublk 8 readers wall / 1 reader wall, file origin | $r_u_w8 | | |"
		echo "| daemon CPU-s per GiB on the cold path, hashing excluded, on-demand, file origin (issue 10: a third of $BASE_REST_GIB) | $r_rest | <= $BASE_REST_TARGET | $(verdict "$r_rest" '<=' "$BASE_REST_TARGET") |"
		if [ $SCALE = 1 ]; then
			echo "| (scale) 32 readers: origin bytes / model size | $r_ob32 | | |"
			echo "| (scale) 32 readers wall / 1 reader wall | $r_w32 | | |"
			echo "| (scale) 4x model: cold / direct | $r_big_direct | | |"
			echo "| (scale) 4x model: cold wall / 1x model cold wall (4.00: linear) | $r_big_wall | | |"
			echo "| (scale) 4x model: origin bytes / model size, 1, 8, 32 readers | $r_big_ob, $r_big_ob8, $r_big_ob32 | <= 1.02 | $(verdict "$(printf '%s\n' "$r_big_ob" "$r_big_ob8" "$r_big_ob32" | sort -n | tail -n 1)" '<=' 1.02) |"
			echo "| (scale) 4x model: 8 and 32 readers wall / 1 reader wall | $r_big_w8, $r_big_w32 | | |"
		fi
		if [ $HTTP = 0 ]; then echo; echo "HTTP rows not measured: ${HTTP_WHY:-skipped}."; fi
		if [ $RCLONE = 0 ]; then echo; echo "rclone rows not measured: $RC_WHY."; fi
		if [ $UBLK = 0 ]; then echo; echo "ublk rows not measured: $UBLK_WHY."; fi
		if wanted scale && [ $SCALE = 0 ]; then echo; echo "scale rows not measured: $SCALE_WHY."; fi
		echo
		echo "The daemon's CPU on the cold path, 1 reader (median; from /proc/PID/stat, utime + stime"
		echo "over the read; hashing from its verify_cpu_us counter, the pool threads' CPU clock around sha256):"
		echo
		echo "| front end | origin | CPU-s per GiB | hashing | the rest | guest CPUs busy |"
		echo "|---|---|---|---|---|---|"
		cpurow on-demand file cold-file "$GIB"
		cpurow on-demand http cold-http "$GIB"
		cpurow ublk file ublk-cold-file "$GIB"
		cpurow ublk http ublk-cold-http "$GIB"
		[ $SCALE = 0 ] || cpurow "on-demand, $((BIG_FILE_SIZE / 1048576)) MiB model" file cold-big "$BIG_GIB"
		echo
		echo "Read amplification (file origin, fresh cache each; origin bytes counted from after the mount;"
		echo "median):"
		echo
		echo "| read | front end | bytes asked | origin bytes | per byte asked | origin bytes incl. the mount |"
		echo "|---|---|---|---|---|---|"
		amprow "config.json, one read" on-demand amp-small-ondemand
		amprow "config.json, one read" ublk amp-small-ublk
		amprow "64 random 4 KiB reads of the model file" on-demand amp-rand-ondemand
		amprow "64 random 4 KiB reads of the model file" ublk amp-rand-ublk
		echo
		echo "Requests that reached the daemon during one read of the model file (median): on-demand"
		echo "(cachefiles READs): cold $(med req-cold-file 1), warm $(med req-warm 1); ublk (I/O requests, of which"
		echo "served from the cache file): cold $(med req-ublk-cold-file 1) ($(med req-ublk-cold-file 2)),"
		echo "warm $(med req-ublk-warm 1) ($(med req-ublk-warm 2))."
		echo
		echo "CPU during the cold 1-reader runs (median): file origin: guest CPUs $(med cpu-cold-file 1) % busy,"
		echo "blobcached $(med cpu-cold-file 2) CPU-s; HTTP origin: $(med cpu-cold-http 1) % busy, $(med cpu-cold-http 2) CPU-s."
		echo "ublk: file origin: $(med cpu-ublk-cold-file 1) % busy, $(med cpu-ublk-cold-file 2) CPU-s; HTTP origin: $(med cpu-ublk-cold-http 1) % busy,"
		echo "$(med cpu-ublk-cold-http 2) CPU-s."
		echo "sha256 of the model alone costs $(med sha256 2) CPU-s here (row 2b)."
		echo "BENCH-TABLE-END"
	} >/tmp/table.md
	cat /tmp/table.md
}

# --- measurements ------------------------------------------------------------------------------

rep=1
while [ $rep -le "$REPS" ]; do
	note "=== repetition $rep of $REPS"

	# 1. Direct reads of the data blob from the origin.
	run_fio direct-file seq-read.fio "$DATA_BLOB" && record direct-file "$FIO_MIBS" "$FIO_WALL"
	# Diagnostic: what sha256 alone costs this CPU (OpenSSL, the daemon's library), the blob
	# being in the page cache after the read above.
	if have openssl; then
		cat "$DATA_BLOB" >/dev/null
		_t0=$(uptime_s)
		openssl dgst -sha256 "$DATA_BLOB" >/dev/null
		_t1=$(uptime_s)
		secs=$(fsub "$_t1" "$_t0")
		mibs=$(awk -v b="$DATA_SIZE" -v t="$secs" 'BEGIN { printf "%.2f", (t > 0) ? b / 1048576 / t : 0 }')
		raw "### sha256 (openssl dgst) of the data blob from the page cache: $secs s"
		record sha256 "$mibs" "$secs"
		note "sha256: $mibs MiB/s"
	fi
	if [ $HTTP = 1 ]; then
		drop_caches
		out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' "$URL/blobs/sha256/$DATA")
		raw "### direct-http: curl $URL/blobs/sha256/$DATA (rep $rep): code bytes seconds = $out"
		set -- $out
		if [ "$1" = 200 ] && [ "$2" = "$DATA_SIZE" ]; then
			mibs=$(awk -v b="$2" -v t="$3" 'BEGIN { printf "%.2f", b / 1048576 / t }')
			secs=$(awk -v t="$3" 'BEGIN { printf "%.3f", t }')
			record direct-http "$mibs" "$secs"
			note "direct-http: $mibs MiB/s, $secs s"
		else
			note "direct-http: curl failed: $out"
		fi
	fi

	# 2. Cold reads through blobcached, one reader.
	if bc_fresh file && q0=$(daemon_requests) && snap=$(cpu_snap) &&
		run_fio cold-file seq-read.fio $MNT/model.safetensors; then
		cpu_since "$snap" cold-file
		record cold-file "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		record_req cold-file "$q0"
		raw "### cold-file daemon status:"; cat "$BC_STATUS" >>$RAW

		# 3. Warm read (same cache, page cache dropped) and the plain file on the same volume.
		q0=$(daemon_requests)
		run_fio warm seq-read.fio $MNT/model.safetensors && record warm "$FIO_MIBS" "$FIO_WALL" &&
			record_req warm "$q0"
		run_fio plain seq-read.fio $PLAIN && record plain "$FIO_MIBS" "$FIO_WALL"
		# The machine's own 8-reader cost (8 x the bytes out of the page cache on 2 vCPUs).
		run_fio plain8 seq-read-8.fio $PLAIN && record plain8 "$FIO_MIBS" "$FIO_WALL"

		# 3b. Diagnostic: the same warm read with a 16 MiB read-ahead window on the EROFS
		# mount's bdi (the kernel's default is 128 KiB; the plain file's disk has its own).
		bdi=$(ls -d /sys/class/bdi/erofs-* 2>/dev/null | tail -n 1)
		if [ -n "$bdi" ]; then
			RA_EROFS=$(cat "$bdi/read_ahead_kb")
			RA_VDA=$(cat /sys/block/vda/queue/read_ahead_kb)
			raw "### read_ahead_kb: $bdi $RA_EROFS, vda $RA_VDA"
			echo 16384 >"$bdi/read_ahead_kb" &&
				run_fio warm-ra16m seq-read.fio $MNT/model.safetensors &&
				record warm-ra16m "$FIO_MIBS" "$FIO_WALL"
			echo "$RA_EROFS" >"$bdi/read_ahead_kb"
		else
			raw "### no /sys/class/bdi/erofs-*: $(ls /sys/class/bdi | tr '\n' ' ')"
		fi
	fi
	# nginx's count starts before the mount, as the daemon's origin_bytes does: meta + data.
	n0=$(nginx_bytes)
	if [ $HTTP = 1 ] && bc_fresh http; then
		snap=$(cpu_snap)
		if run_fio cold-http seq-read.fio $MNT/model.safetensors; then
			cpu_since "$snap" cold-http
			record cold-http "$FIO_MIBS" "$FIO_WALL" $(($(nginx_bytes) - n0 + 0))
			raw "### cold-http daemon status:"; cat "$BC_STATUS" >>$RAW
		fi
	fi

	# 4. Eight concurrent cold readers of the model.
	if bc_fresh file && run_fio cold8-file seq-read-8.fio $MNT/model.safetensors; then
		record cold8-file "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		raw "### cold8-file daemon status:"; cat "$BC_STATUS" >>$RAW
	fi
	n0=$(nginx_bytes)
	if [ $HTTP = 1 ] && bc_fresh http; then
		if run_fio cold8-http seq-read-8.fio $MNT/model.safetensors; then
			record cold8-http "$FIO_MIBS" "$FIO_WALL" $(($(nginx_bytes) - n0 + 0))
			raw "### cold8-http daemon status:"; cat "$BC_STATUS" >>$RAW
		fi
	fi
	bc_umount
	bc_stop

	# 6. The ublk front end: the same model through /dev/ublkbN devices (blobcachectl mount), a
	# fresh cache directory for each cold read, as above.
	if [ $UBLK = 1 ]; then
		if bc_fresh file ublk && q0=$(daemon_requests) && snap=$(cpu_snap) &&
			run_fio ublk-cold-file seq-read.fio $MNT/model.safetensors; then
			cpu_since "$snap" ublk-cold-file
			record ublk-cold-file "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
			record_req ublk-cold-file "$q0"
			raw "### ublk-cold-file daemon status:"; cat "$BC_STATUS" >>$RAW
			# Warm: page cache dropped; every miss is a request the daemon serves from the
			# cache file.
			q0=$(daemon_requests)
			o0=$(bc_stat origin_bytes)
			if run_fio ublk-warm seq-read.fio $MNT/model.safetensors; then
				record ublk-warm "$FIO_MIBS" "$FIO_WALL" $(($(bc_stat origin_bytes) - o0))
				record_req ublk-warm "$q0"
				raw "### ublk-warm daemon status:"; cat "$BC_STATUS" >>$RAW
			fi
		fi
		n0=$(nginx_bytes)
		if [ $HTTP = 1 ] && bc_fresh http ublk && snap=$(cpu_snap) &&
			run_fio ublk-cold-http seq-read.fio $MNT/model.safetensors; then
			cpu_since "$snap" ublk-cold-http
			record ublk-cold-http "$FIO_MIBS" "$FIO_WALL" $(($(nginx_bytes) - n0 + 0))
			raw "### ublk-cold-http daemon status:"; cat "$BC_STATUS" >>$RAW
		fi
		if bc_fresh file ublk && run_fio ublk-cold8-file seq-read-8.fio $MNT/model.safetensors; then
			record ublk-cold8-file "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
			raw "### ublk-cold8-file daemon status:"; cat "$BC_STATUS" >>$RAW
		fi
		bc_umount
		bc_stop
	fi

	# 7. Read amplification, file origin, a fresh cache for each read, both front ends: one
	# small file (config.json), then 64 scattered 4 KiB reads of the model file; origin bytes
	# counted from after the mount (and, for the small file, from the daemon's start).
	for fe in ondemand ublk; do
		[ $fe = ondemand ] || [ $UBLK = 1 ] || continue
		if bc_fresh file $fe; then
			o0=$(bc_stat origin_bytes)
			if cat $MNT/config.json >/dev/null; then
				o1=$(bc_stat origin_bytes)
				echo "$SMALL_SIZE $((o1 - o0)) $o1 $rep" >>"$RES/amp-small-$fe"
				raw "### amp-small-$fe: config.json ($SMALL_SIZE B): origin bytes $((o1 - o0)) for the read, $o1 since the daemon started"
				note "amp-small-$fe: $SMALL_SIZE B asked, $((o1 - o0)) B from the origin ($o1 with the mount)"
			fi
		fi
		if bc_fresh file $fe; then
			o0=$(bc_stat origin_bytes)
			if run_fio amp-rand-$fe rand-read-64.fio $MNT/model.safetensors; then
				o1=$(bc_stat origin_bytes)
				echo "$FIO_BYTES $((o1 - o0)) $o1 $rep" >>"$RES/amp-rand-$fe"
				note "amp-rand-$fe: $FIO_BYTES B asked, $((o1 - o0)) B from the origin"
			fi
		fi
	done
	bc_umount
	bc_stop

	# 8. Scale (--scale): the 4x model read directly and by 1, 8 and 32 cold readers, and 32
	# cold readers of the first model; on-demand, file origin.
	if [ $SCALE = 1 ]; then
		run_fio direct-big seq-read.fio "$BIG_DATA_BLOB" && record direct-big "$FIO_MIBS" "$FIO_WALL"
		BM=big MNT=$BIG_MNT
		if bc_fresh file && snap=$(cpu_snap) &&
			run_fio cold-big seq-read.fio $MNT/model.safetensors; then
			cpu_since "$snap" cold-big
			record cold-big "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		fi
		bc_fresh file && run_fio cold8-big seq-read-8.fio $MNT/model.safetensors &&
			record cold8-big "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		bc_fresh file && run_fio cold32-big seq-read-32.fio $MNT/model.safetensors &&
			record cold32-big "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		raw "### cold32-big daemon status:"; cat "$BC_STATUS" >>$RAW
		bc_umount
		BM=m MNT=/models/m
		bc_fresh file && run_fio cold32-file seq-read-32.fio $MNT/model.safetensors &&
			record cold32-file "$FIO_MIBS" "$FIO_WALL" "$(bc_stat origin_bytes)"
		bc_umount
		bc_stop
	fi

	# 5. Baseline: rclone mount :http: --vfs-cache-mode full over the same nginx.
	if [ $RCLONE = 1 ]; then
		f=$RC_MNT/blobs/sha256/$DATA
		if rc_fresh; then
			n0=$(nginx_bytes)
			run_fio rclone-cold seq-read.fio "$f" &&
				record rclone-cold "$FIO_MIBS" "$FIO_WALL" $(($(nginx_bytes) - n0 + 0))
			run_fio rclone-warm seq-read.fio "$f" && record rclone-warm "$FIO_MIBS" "$FIO_WALL"
		fi
		if rc_fresh; then
			n0=$(nginx_bytes)
			run_fio rclone-cold8 seq-read-8.fio "$f" &&
				record rclone-cold8 "$FIO_MIBS" "$FIO_WALL" $(($(nginx_bytes) - n0 + 0))
		fi
		rc_stop
	fi
	report "$rep"
	rep=$((rep + 1))
done
echo "BENCH-RAW-BEGIN"
echo "### every repetition (MiB/s, wall s, origin bytes):"
for f in $RES/*; do echo "${f##*/}: $(tr '\n' ';' <"$f")"; done
cat $RAW
echo "--- blobcached log (tail) ---"
tail -n 30 "$BC_LOG"
[ $RCLONE = 0 ] || { echo "--- rclone log (tail) ---"; tail -n 30 /tmp/rclone.log; }
[ $HTTP = 0 ] || { echo "--- nginx error log ---"; cat $NGINX_DIR/error.log; }
echo "BENCH-RAW-END"
[ -s $RES/cold-file ] || fail "no cold read through blobcached was measured"
pass "bench"
