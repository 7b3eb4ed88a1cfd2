# bench/soak-vm.sh: the guest side of bench/soak (Debian guest, dash). Not a CI scenario.
# Arguments: DURATION_S SEED INTERVAL_S. Mixed readers over six models for DURATION_S seconds
# while faults are injected on a seeded schedule: kill -9 of the daemon (holder alive), origin
# outages shorter and longer than the request deadline, a short partition (tc netem), unmount
# of a managed mount from outside, culling pressure. The first half reads through the managed
# NFS origin, the second through the HTTP origin (nginx over the same export): the daemon has
# one origin, so the switch is a kill -9 and a restart with the other configuration.
# Prints the per-fault table and the invariants between SOAK-RESULT-BEGIN/END and exits 1 if
# an invariant failed. See bench/README.md (Soak).
# vm: --rootfs debian --with-binary /usr/sbin/nginx
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh

DURATION=${1:-600}
SEED=${2:-1}
INTERVAL=${3:-60}
DEADLINE=10              # [daemon] request_timeout, seconds
# Every read(2) is at most 1 MiB, so it touches at most two 1 MiB chunks of a blob: the kernel
# sends their READs one after the other and, after a failed read-ahead, reads the page once more;
# each request is bounded by the deadline. A read longer than 3 deadlines (or still in flight
# then) is hung; reads longer than 2 deadlines are counted too.
HUNG_CS=$((3 * DEADLINE * 100))
SLOW_CS=$((2 * DEADLINE * 100))
MARGIN_CS=3000           # errors this long after a fault that allows them still belong to it
BLK=1048576              # blocks checked one by one (sha256 each), one read(2) each
S=/tmp/soak
P=http://127.0.0.1:9464
CTL="blobcachectl --run-dir /run/blobcached"
PHASE=nfs
mkdir -p $S /models/a /models/b /mnt/cs /mnt/cr
rm -f $S/*
echo 0 >$S/restart-gen

cleanup() {
	: >$S/stop
	[ -z "${PIDS:-}" ] || kill $PIDS 2>/dev/null
	tc qdisc del dev lo root 2>/dev/null
	echo "----- blobcached log ($(wc -l <$BC_LOG) lines) -----"
	cat $BC_LOG
	echo "----- end of blobcached log -----"
}
trap cleanup EXIT

# ---- time, in centiseconds of uptime, without forking ----
cs_of() {
	_i=${1%.*}
	_f=${1#*.}
	_f=${_f#0}
	CS=$((_i * 100 + _f))
}
now_cs() {
	read -r _u _x </proc/uptime
	cs_of "$_u"
}

# ---- reader bookkeeping: every read is an op, timed; errors and wrong bytes are logged ----
op_begin() { # READER WHAT
	now_cs
	OP0=$CS
	OPWHAT=$2
	echo "$CS $2" >$S/busy.$1
}
op_end() { # READER
	now_cs
	_el=$((CS - OP0))
	: >$S/busy.$1
	OPS=$((OPS + 1))
	if [ $_el -gt "$OPMAX" ]; then
		OPMAX=$_el
		echo "$OPMAX" >$S/opmax.$1
	fi
	if [ $_el -gt $SLOW_CS ]; then
		echo "$CS $1 $_el $OPWHAT" >>$S/slow
		# Seen in flight by the monitor, and finished after all: count it once.
		! grep -qx "$S/busy.$1 $OP0" $S/inflight-seen 2>/dev/null || echo "$1 $OP0" >>$S/inflight-finished
	fi
}
err() { # READER MSG
	now_cs
	echo "$CS $1 $2" >>$S/errors
}
wrong() { # READER MSG
	now_cs
	echo "$CS $1 $2" >>$S/wrong
}
count_save() { # READER
	echo "$PASSES $OPS $CHECKED $BYTES" >$S/count.$1
}

# want_model MODEL: the sha256 of every 1 MiB block of every file of the source (an empty file
# is one empty block), as "PATH BLOCK SHA256 LENGTH".
want_model() {
	(cd /srv/src/$1 && find . -type f | sort) | while read -r f; do
		sz=$(stat -c %s "/srv/src/$1/$f")
		n=$(((sz + BLK - 1) / BLK))
		[ $n -ge 1 ] || n=1
		i=0
		while [ $i -lt $n ]; do
			len=$((sz - i * BLK))
			[ $len -le $BLK ] || len=$BLK
			s=$(dd if="/srv/src/$1/$f" bs=$BLK skip=$i count=1 iflag=fullblock status=none | sha256sum)
			echo "$f $i ${s%% *} $len"
			i=$((i + 1))
		done
	done >$S/want.$1
}

# short_read READER WHAT SRC OFFSET GOT LEN: one read(2) returned GOT of LEN bytes without an
# error (POSIX allows it; the next read would report the error): an error if those bytes are the
# source's, wrong bytes otherwise (or if nothing came back: an end of file before the size).
short_read() {
	dd if="$3" of=$S/src.$1 bs=1M skip="$4" count="$5" iflag=skip_bytes,count_bytes status=none
	if [ "$5" -gt 0 ] && cmp -s -n "$5" $S/src.$1 $S/blk.$1; then
		err "$1" "$2: short read, $5 of $6 bytes (those correct)"
	else
		wrong "$1" "$2: $5 of $6 bytes, not the source's"
	fi
}

# check_tree READER MODEL DIR: read every block of every file of MODEL under DIR, one read(2)
# of 1 MiB each (dd count=1: each read timed on its own), and compare its sha256 with the
# source's. A failed read is an error; a read that succeeded with other bytes is wrong bytes.
check_tree() {
	while read -r f i s len; do
		[ ! -e $S/stop ] || return 0
		op_begin "$1" "$3/$f block $i"
		if dd if="$3/$f" of=$S/blk.$1 bs=$BLK skip="$i" count=1 status=none \
			2>$S/dderr.$1 </dev/null; then
			op_end "$1"
			got=$(stat -c %s $S/blk.$1)
			if [ "$got" != "$len" ]; then
				short_read "$1" "$2 $f block $i" "/srv/src/$2/$f" $((i * BLK)) "$got" "$len"
				continue
			fi
			got=$(sha256sum <$S/blk.$1)
			if [ "${got%% *}" = "$s" ]; then
				CHECKED=$((CHECKED + 1))
				BYTES=$((BYTES + len))
			else
				wrong "$1" "$2 $f block $i: sha256 ${got%% *}, source $s"
			fi
		else
			op_end "$1"
			err "$1" "$2 $f block $i: $(head -c 160 $S/dderr.$1 | tr '\n' ' ')"
		fi
	done <$S/want.$2
}

# check_ranges READER MODEL DIR N: N random ranges (offset, length from the reader's seeded list
# on fd 3) of model.safetensors, each one read(2), compared byte for byte (cmp) with the same
# range of the source.
check_ranges() {
	_n=0
	while [ $_n -lt "$4" ] && [ ! -e $S/stop ]; do
		read -r o l <&3 || return 0
		op_begin "$1" "$3 range $o+$l"
		if dd if="$3/model.safetensors" of=$S/blk.$1 bs="$l" skip="$o" count=1 \
			iflag=skip_bytes status=none 2>$S/dderr.$1 </dev/null; then
			op_end "$1"
			got=$(stat -c %s $S/blk.$1)
			if [ "$got" != "$l" ]; then
				short_read "$1" "$2 range $o+$l" "/srv/src/$2/model.safetensors" "$o" "$got" "$l"
			else
				dd if="/srv/src/$2/model.safetensors" of=$S/src.$1 bs=1M skip="$o" count="$l" \
					iflag=skip_bytes,count_bytes status=none
				if cmp -s $S/src.$1 $S/blk.$1; then
					CHECKED=$((CHECKED + 1))
					BYTES=$((BYTES + l))
				else
					wrong "$1" "$2 model.safetensors range $o+$l: $(cmp $S/src.$1 $S/blk.$1 2>&1 | head -c 160)"
				fi
			fi
		else
			op_end "$1"
			err "$1" "$2 range $o+$l: $(head -c 160 $S/dderr.$1 | tr '\n' ' ')"
		fi
		_n=$((_n + 1))
	done
}

reader_init() {
	PASSES=0 OPS=0 CHECKED=0 BYTES=0 OPMAX=0
	echo 0 >$S/opmax.$1
	: >$S/busy.$1
}

# seq-a: whole model a (managed mount), sequentially, page cache dropped before every pass.
reader_seq() {
	reader_init seq-a
	while [ ! -e $S/stop ]; do
		echo 1 >/proc/sys/vm/drop_caches
		check_tree seq-a a /models/a
		PASSES=$((PASSES + 1))
		count_save seq-a
	done
}

# rnd-b: random ranges of model b (managed mount), 20 per pass.
reader_rnd() {
	reader_init rnd-b
	exec 3<$S/ranges.b
	while [ ! -e $S/stop ]; do
		echo 1 >/proc/sys/vm/drop_caches
		check_ranges rnd-b b /models/b 20
		PASSES=$((PASSES + 1))
		count_save rnd-b
	done
}

# cold readers: mount one model of a pair, read it (whole, or 20 random ranges), unmount, evict
# the other one: every pass reads from the origin.
cold_mount() { # READER MODEL DIR
	while [ ! -e $S/stop ]; do
		op_begin "$1" "mount $2"
		if mount -t erofs -o "fsid=$2" none "$3" 2>$S/merr.$1 </dev/null; then
			op_end "$1"
			return 0
		fi
		op_end "$1"
		err "$1" "mount $2: $(head -c 160 $S/merr.$1 | tr '\n' ' ')"
		sleep 1
	done
	return 1
}
cold_evict() { # MODEL: the kernel keeps a model's objects ~10 s after its unmount
	_t=0
	while [ $_t -lt 40 ] && [ ! -e $S/stop ]; do
		if $CTL evict "$1" >/dev/null 2>&1 </dev/null; then
			echo "$1" >>$S/evicted
			return 0
		fi
		sleep 1
		_t=$((_t + 1))
	done
	echo "$1" >>$S/evict-refused
}
reader_cold() { # READER KIND DIR MODEL1 MODEL2
	reader_init "$1"
	[ "$2" = seq ] || exec 3<$S/ranges.$4
	cur=$4 other=$5
	while [ ! -e $S/stop ]; do
		cold_mount "$1" $cur "$3" || break
		if [ "$2" = seq ]; then
			check_tree "$1" $cur "$3"
		else
			check_ranges "$1" $cur "$3" 20
		fi
		umount "$3" || err "$1" "umount $3 failed"
		PASSES=$((PASSES + 1))
		count_save "$1"
		cold_evict $other
		_x=$cur cur=$other other=$_x
	done
}

# ---- the daemon ----
write_conf() { # PHASE [cull]
	{
		echo "[cache]"
		echo "dir = /var/cache/blobcached/blobcached"
		if [ "${2:-}" = cull ]; then
			printf 'high_watermark = 1%%\nlow_watermark = 0%%\ncull_interval = 200ms\n'
		fi
		echo "[origin]"
		if [ "$1" = nfs ]; then
			echo "path = /srv/origin"
			echo "nfs = 127.0.0.1:/srv/export"
			echo "nfs_options = soft,timeo=10,retrans=2,retry=0"
		else
			echo "url = http://127.0.0.1:8080"
		fi
		echo "[daemon]"
		echo "catalogue = /srv/catalogue"
		echo "run_dir = /run/blobcached"
		echo "request_timeout = ${DEADLINE}s"
		printf '[model a]\nmount = /models/a\n[model b]\nmount = /models/b\n'
	} >"$BC_CONF"
}
erofs_at() { awk -v p="$1" '$2 == p && $3 == "erofs" { f = 1 } END { exit !f }' /proc/mounts; }
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$P$1"; }
start_daemon() {
	bc_start || return 1
	echo "$BC_PID" >$S/daemon.pid
}
# A restart is marked by $S/restarting while it lasts and counted in $S/restart-gen, so that
# the monitor also knows a /livez check during which a whole (short) restart began and ended.
RESTART_GEN=0
restarting_on() {
	RESTART_GEN=$((RESTART_GEN + 1))
	echo $RESTART_GEN >$S/restart-gen
	: >$S/restarting
}
restarting_off() { rm -f $S/restarting; }

# ---- origin control ----
NGX_PID=
nginx_up() { # the HTTP origin: nginx over the NFS export, on 8080
	bc_nginx_conf /tmp/nginx.conf /tmp/nginx /srv/export 8080
	nginx -c /tmp/nginx.conf -p /tmp/nginx -e /tmp/nginx/error.log </dev/null &
	NGX_PID=$!
	wait_until "curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/models/a.model" 20
}
# control_up: the control web server for the /livez checks, on 8081 (same nginx, own instance).
control_up() {
	mkdir -p /tmp/ctl
	echo ok >/tmp/ctl/ctl
	bc_nginx_conf /tmp/nginx-ctl.conf /tmp/nginx-ctl /tmp/ctl 8081
	nginx -c /tmp/nginx-ctl.conf -p /tmp/nginx-ctl -e /tmp/nginx-ctl/error.log </dev/null &
	wait_until "curl -s -o /dev/null --max-time 1 http://127.0.0.1:8081/ctl" 20
}
nginx_down() {
	kill "$NGX_PID"
	wait "$NGX_PID" 2>/dev/null
}
origin_down() {
	if [ $PHASE = nfs ]; then systemctl stop nfs-server; else nginx_down; fi
}
origin_up() {
	if [ $PHASE = nfs ]; then systemctl start nfs-server; else nginx_up; fi
}
partition_on() { # PORT: every packet to or from it on lo dropped
	tc qdisc add dev lo root handle 1: prio bands 3 priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 &&
		tc qdisc add dev lo parent 1:3 handle 30: netem loss 100% &&
		tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dport "$1" 0xffff flowid 1:3 &&
		tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "$1" 0xffff flowid 1:3
}

# ---- faults: each one a window "KIND START END ALLOW_ERRORS RECOVERY_CS" ----
win_begin() {
	now_cs
	W0=$CS
}
win_end() { # KIND ALLOW RECOVERY_CS
	now_cs
	echo "$1 $W0 $CS $2 $3" >>$S/windows
}
invariant_fail() {
	now_cs
	echo "$CS $*" >>$S/invariant-failures
	note "INVARIANT: $*"
}
# wait_ready KIND: /readyz 200 within 120 s of the fault's end (sets READY_CS).
wait_ready() {
	now_cs
	_r0=$CS
	if wait_until '[ "$(http_status /readyz)" = 200 ]' 120 0.5; then
		now_cs
		READY_CS=$((CS - _r0))
	else
		READY_CS=-1
		invariant_fail "$1: /readyz not 200 within 120 s of the fault's end: $(curl -s --max-time 2 $P/readyz | tr '\n' ' ' | head -c 300)"
	fi
}

fault_kill9() { # KIND (kill9 or switch)
	win_begin
	restarting_on
	bc_kill9
	[ "$1" != switch ] || { PHASE=http; write_conf http; }
	start_daemon || invariant_fail "$1: the daemon did not start again"
	restarting_off
	now_cs
	_rec=$((CS - W0))
	win_end "$1" 0 $_rec
}
fault_outage() { # SECONDS
	_k=outage-short
	[ "$1" -le $DEADLINE ] || _k=outage-long
	win_begin
	origin_down
	sleep "$1"
	origin_up || invariant_fail "$_k: the origin did not start again"
	wait_ready $_k
	win_end $_k 1 $READY_CS
}
fault_partition() { # SECONDS
	_port=2049
	[ $PHASE = nfs ] || _port=8080
	win_begin
	partition_on $_port || invariant_fail "partition: tc failed"
	sleep "$1"
	tc qdisc del dev lo root || invariant_fail "partition: tc qdisc del failed"
	wait_ready partition
	win_end partition 1 $READY_CS
}
fault_umount() { # WHICH (0, 1, 2)
	case $(($1 % 3)) in
	0) _m=/models/a ;;
	1) _m=/models/b ;;
	*) _m=/srv/origin ;;
	esac
	[ $PHASE = nfs ] || [ $_m != /srv/origin ] || _m=/models/a
	win_begin
	umount -l $_m || invariant_fail "umount: umount -l $_m failed"
	if [ $_m = /srv/origin ]; then
		wait_until "awk '\$2 == \"/srv/origin\" && \$3 ~ /^nfs/ { f = 1 } END { exit !f }' /proc/mounts" 30 0.1 ||
			invariant_fail "umount: $_m not mounted again within 30 s"
	else
		wait_until "erofs_at $_m" 30 0.1 || invariant_fail "umount: $_m not mounted again within 30 s"
	fi
	now_cs
	_rec=$((CS - W0))
	echo "$_m" >>$S/umounted
	win_end umount 1 $_rec
}
fault_cull() { # SECONDS of pressure
	win_begin
	restarting_on
	write_conf $PHASE cull
	bc_term
	start_daemon || invariant_fail "cull: the daemon did not start with low watermarks"
	restarting_off
	now_cs
	_end=$((CS + $1 * 100))
	while now_cs && [ $CS -lt $_end ]; do
		if bc_warm w; then echo ok >>$S/warms; else echo failed >>$S/warms; fi
		$CTL evict w >/dev/null 2>&1 || echo refused >>$S/warms
	done
	_culled=$(bc_cache_field culled_files)
	echo "${_culled:-0}" >>$S/culled
	restarting_on
	write_conf $PHASE
	bc_term
	start_daemon || invariant_fail "cull: the daemon did not start again"
	restarting_off
	win_end cull 0 0
}

# ---- the monitor: /livez every second, daemon and holder figures every 5 s, ops in flight ----
sample_proc() { # LABEL PID
	[ -n "$2" ] && [ -d /proc/$2 ] || return 0
	_fds=$(ls /proc/$2/fd 2>/dev/null | wc -l)
	_rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$2/status 2>/dev/null)
	now_cs
	echo "$CS $1 $2 $_fds ${_rss:-0}" >>$S/samples
}
monitor() {
	_tick=0
	while [ ! -e $S/monitor-stop ]; do
		_pre=$([ -e $S/restarting ] && echo 1)
		read -r _gen0 <$S/restart-gen
		now_cs
		_t=$CS
		# The control: a second nginx, never stopped, asked at the same moment: when it is slow
		# too, the whole guest was (a TCG guest on a shared host stalls now and then).
		curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' http://127.0.0.1:8081/ctl >$S/ctl.out 2>/dev/null &
		_cp=$!
		curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' $P/livez >$S/lz.out 2>/dev/null &
		_lp=$!
		# Still waiting after 1 s: where is the daemon's loop (its main thread)? Kept for the
		# report (the kernel stack and the system call it is in).
		sleep 1
		if kill -0 $_lp 2>/dev/null && [ ! -e $S/restarting ]; then
			_pid=$(cat $S/daemon.pid 2>/dev/null)
			{
				echo "== $_t: /livez not answered after 1 s; daemon $_pid main thread:"
				echo "state: $(sed -n 's/^State:[[:space:]]*//p' /proc/$_pid/task/$_pid/status 2>/dev/null); wchan: $(cat /proc/$_pid/task/$_pid/wchan 2>/dev/null); syscall: $(cat /proc/$_pid/task/$_pid/syscall 2>/dev/null)"
				cat /proc/$_pid/task/$_pid/stack 2>/dev/null
			} >>$S/stalls
		fi
		wait $_lp
		wait $_cp
		_out=$(cat $S/lz.out)
		_out="$_out $(cat $S/ctl.out)"
		_post=$([ -e $S/restarting ] && echo 1)
		read -r _gen1 <$S/restart-gen
		[ "$_gen0" = "$_gen1" ] || _post=1
		if [ -n "$_pre$_post" ]; then
			echo "$_t restart $_out" >>$S/livez
		else
			echo "$_t check $_out" >>$S/livez
		fi
		if [ $((_tick % 5)) = 0 ]; then
			sample_proc daemon "$(cat $S/daemon.pid 2>/dev/null)"
			sample_proc holder "$(cat /run/blobcached/holder.pid 2>/dev/null)"
		fi
		for _b in $S/busy.*; do
			read -r _s _what <"$_b" 2>/dev/null || continue
			now_cs
			if [ $((CS - _s)) -gt $HUNG_CS ] && ! grep -qx "$_b $_s" $S/inflight-seen 2>/dev/null; then
				echo "$_b $_s" >>$S/inflight-seen
				echo "$CS ${_b#$S/busy.} in flight for $(((CS - _s) / 100)) s: $_what" >>$S/hung-inflight
			fi
		done
		_pid=$(cat $S/daemon.pid 2>/dev/null)
		if [ -z "$_pre" ] && [ ! -e $S/restarting ] && [ -n "$_pid" ] && ! kill -0 "$_pid" 2>/dev/null; then
			[ "$(cat $S/daemon.pid 2>/dev/null)" != "$_pid" ] || invariant_fail "the daemon (pid $_pid) died by itself"
		fi
		if [ $((_tick % 60)) = 0 ] && [ $_tick -gt 0 ]; then
			note "soak: $(cat $S/count.* 2>/dev/null | awk '{ p += $1; c += $3 } END { print p + 0 " passes, " c + 0 " checks" }'), $(wc -l <$S/windows 2>/dev/null || echo 0) faults, $(cat $S/errors 2>/dev/null | wc -l) read errors, $(cat $S/wrong 2>/dev/null | wc -l) wrong"
		fi
		_tick=$((_tick + 1))
	done
}

# ================================ set-up ================================
t0=$(now)
echo "SOAK-KERNEL: $(uname -r)"
modprobe nfsd && modprobe nfs || fail "modprobe nfsd nfs"
modprobe sch_netem && modprobe sch_prio && modprobe cls_u32 || fail "modprobe sch_netem sch_prio cls_u32"
if [ -w /proc/sys/kernel/hung_task_timeout_secs ]; then
	echo 30 >/proc/sys/kernel/hung_task_timeout_secs
	HUNG_DETECT="kernel hung-task detector at 30 s"
else
	HUNG_DETECT="no kernel hung-task detector in this kernel"
fi
mkdir -p /etc/nfs.conf.d /srv/export /srv/catalogue /srv/origin /etc/blobcached /var/cache/blobcached/blobcached
printf '[nfsd]\ngrace-time=10\nlease-time=10\n' >/etc/nfs.conf.d/blobcache-test.conf
echo "/srv/export 127.0.0.1(ro,no_subtree_check,fsid=1)" >/etc/exports
for spec in a:24:20 b:24:3 c1:12:8 c2:12:8 d1:12:3 d2:12:3 w:12:3; do
	m=${spec%%:*}
	rest=${spec#*:}
	make_model /srv/src/$m "${rest%%:*}" "${rest#*:}"
	blobcachectl publish --catalogue /srv/catalogue $m /srv/src/$m /srv/export >/dev/null || fail "publish $m"
	want_model $m
done
for m in b d1 d2; do
	sz=$(stat -c %s /srv/src/$m/model.safetensors)
	awk -v seed="$SEED$m" -v size="$sz" 'BEGIN {
		n = 0; for (i = 1; i <= length(seed); i++) n = n * 31 + index("0123456789abcdefghijklmnopqrstuvwxyz", substr(seed, i, 1))
		srand(n % 2147483647)
		for (i = 0; i < 100000; i++) {
			o = int(rand() * size); l = 1 + int(rand() * 1048576)
			if (o + l > size) l = size - o
			print o, l
		}
	}' >$S/ranges.$m
done
systemctl restart nfs-server || fail "nfs-server start"
nginx_up || fail "nginx did not start"
control_up || fail "the control nginx did not start"
note "7 models made and published to /srv/export (NFS and nginx) in $(elapsed_since "$t0") s"

write_conf nfs
start_daemon || fail "daemon start"
wait_for 'erofs_at /models/a && erofs_at /models/b' 60
wait_for '[ "$(http_status /readyz)" = 200 ]' 60 0.5
note "daemon up: managed NFS origin at /srv/origin, models a and b mounted; /readyz 200"

# The schedule: per phase a seeded permutation of the fault kinds, again and again, with a
# gap of INTERVAL +-25% before each.
awk -v seed="$SEED" -v iv="$INTERVAL" 'BEGIN {
	srand(seed)
	split("kill9 outage-short outage-long partition umount cull", k, " ")
	for (c = 0; c < 200; c++) {
		for (i = 1; i <= 6; i++) p[i] = k[i]
		for (i = 6; i > 1; i--) { j = 1 + int(rand() * i); t = p[i]; p[i] = p[j]; p[j] = t }
		for (i = 1; i <= 6; i++) printf "%d %s %d\n", iv * (0.75 + 0.5 * rand()), p[i], int(rand() * 3)
	}
}' >$S/schedule

# A first pass of everything (the origin must serve before faults mean anything).
sample_proc daemon "$BC_PID"
sample_proc holder "$(cat /run/blobcached/holder.pid)"
reader_seq &
PIDS="$!"
reader_rnd &
PIDS="$PIDS $!"
reader_cold cold-seq seq /mnt/cs c1 c2 &
PIDS="$PIDS $!"
reader_cold cold-rnd rnd /mnt/cr d1 d2 &
PIDS="$PIDS $!"
monitor &
MON=$!
start=$(now)
end=$((start + DURATION))
half=$((start + DURATION / 2))
note "soak: $DURATION s, seed $SEED, a fault every ${INTERVAL} s +-25%, request_timeout ${DEADLINE} s; 4 readers"

# ================================ the schedule ================================
while read -r gap kind arg <&4; do
	[ $(($(now) + gap)) -lt $end ] || break
	sleep "$gap"
	if [ $PHASE = nfs ] && [ "$(now)" -ge $half ]; then
		note "fault: origin switch to HTTP (kill -9, restart with url = http://127.0.0.1:8080)"
		fault_kill9 switch
		wait_ready switch
		sleep 10
	fi
	note "fault: $kind ($PHASE origin)"
	case $kind in
	kill9) fault_kill9 kill9 ;;
	outage-short) fault_outage 4 ;;
	outage-long) fault_outage 25 ;;
	partition) fault_partition 15 ;;
	umount) fault_umount "$arg" ;;
	cull) fault_cull 20 ;;
	esac
	# A fault that killed nothing must not have killed the daemon.
	kill -0 "$BC_PID" 2>/dev/null || invariant_fail "after $kind: the daemon is not running"
done 4<$S/schedule
left=$((end - $(now)))
[ $left -le 0 ] || sleep $left
note "soak: time is up; the readers finish their pass"
: >$S/stop
now_cs
stop_cs=$CS
for p in $PIDS; do
	wait_until "! kill -0 $p 2>/dev/null" 300 1 || invariant_fail "a reader (pid $p) did not stop within 300 s of the end"
done
PIDS=
now_cs
CS_STOPPED=$CS
sample_proc daemon "$BC_PID"
sample_proc holder "$(cat /run/blobcached/holder.pid)"
: >$S/monitor-stop
wait $MON

# The final check: every block of every model, once more, with the faults over.
rm -f $S/stop
reader_init final
for m in a b; do check_tree final $m /models/$m; done
for m in c1 c2 d1 d2 w; do
	mkdir -p /mnt/final
	mount -t erofs -o fsid=$m none /mnt/final || { err final "mount $m"; continue; }
	check_tree final $m /mnt/final
	umount /mnt/final
done
final_checked=$CHECKED
final_bytes=$BYTES

# ================================ the report ================================
resumed=$(grep -c "resumed the cache from the device holder" $BC_LOG)
restarts=$(awk '$1 == "kill9" || $1 == "switch" { n++ } $1 == "cull" { n += 2 } END { print n + 0 }' $S/windows 2>/dev/null)
hung_dmesg=$(dmesg | grep -c "blocked for more than")
touch $S/errors $S/wrong $S/windows $S/slow $S/hung-inflight $S/invariant-failures $S/warms $S/culled $S/evicted $S/evict-refused
{
	echo "SOAK-RESULT-BEGIN"
	echo "kernel $(uname -r); soak $DURATION s (faults and readers), readers stopped $(((CS_STOPPED - stop_cs) / 100)) s after the end; seed $SEED; a fault every $INTERVAL s +-25%; request_timeout $DEADLINE s; $HUNG_DETECT"
	echo
	echo "Readers (4, concurrently; every block of every file is sha256-checked against the source, every random range compared byte for byte with cmp):"
	echo
	echo "| reader | what | passes | checks | MiB checked | longest read (s) |"
	echo "|---|---|---|---|---|---|"
	for r in seq-a rnd-b cold-seq cold-rnd; do
		case $r in
		seq-a) what="model a (managed mount, 24 MiB + 20 files), every 1 MiB block of every file, page cache dropped each pass" ;;
		rnd-b) what="model b (managed mount), 20 random ranges of 1 B-1 MiB per pass" ;;
		cold-seq) what="models c1/c2 in turn: mount, every block, umount, evict the other (cold each pass)" ;;
		cold-rnd) what="models d1/d2 in turn: mount, 20 random ranges, umount, evict the other" ;;
		esac
		read -r p o c b <$S/count.$r 2>/dev/null || { p=0 o=0 c=0 b=0; }
		mx=$(cat $S/opmax.$r 2>/dev/null || echo 0)
		echo "| $r | $what | $p | $c | $((b / 1048576)) | $(awk -v c="$mx" 'BEGIN { printf "%.2f", c / 100 }') |"
	done
	echo "| final | every block of all 7 models after the faults | 1 | $final_checked | $((final_bytes / 1048576)) | - |"
	echo
	echo "Faults:"
	echo
	echo "| fault | injected | read errors in its windows | errors allowed | recovery (s): median / max | /livez misses in its windows (control fast) |"
	echo "|---|---|---|---|---|---|"
	awk '$2 == "check" && ($3 != 200 || $4 >= 1.0) && $5 == 200 && $6 < 1.0 { print $1, "livez" }' $S/livez >$S/livez-bad
	awk -v margin=$MARGIN_CS '
		FILENAME == ARGV[1] { n++; k[n] = $1; s[n] = $2; e[n] = $3; al[n] = $4; rc[n] = $5; cnt[$1]++; next }
		FILENAME == ARGV[2] {
			t = $1; hit = ""
			for (i = 1; i <= n; i++) if (al[i] == 1 && t >= s[i] && t <= e[i] + margin) hit = k[i]
			if (hit == "") for (i = 1; i <= n; i++) if (t >= s[i] && t <= e[i] + 500) hit = k[i]
			if (hit != "") errs[hit]++
			next
		}
		{
			t = $1; hit = ""
			for (i = 1; i <= n; i++) if (t >= s[i] && t <= e[i] + 500) hit = k[i]
			if (hit != "") lz[hit]++; else lz["none"]++
		}
		END {
			split("kill9 switch outage-short outage-long partition umount cull", order, " ")
			desc["kill9"] = "kill -9 of the daemon, holder alive, restarted at once"
			desc["switch"] = "origin switch NFS -> HTTP (kill -9, restart with url =)"
			desc["outage-short"] = "origin outage 4 s (< deadline): nfs-server / nginx stopped"
			desc["outage-long"] = "origin outage 25 s (> deadline): nfs-server / nginx stopped"
			desc["partition"] = "partition 15 s: tc netem drops port 2049 / 8080 both ways"
			desc["umount"] = "umount -l of a managed mount (model or NFS origin) from outside"
			desc["cull"] = "culling pressure 20 s: watermarks 1%/0% every 200 ms, warm + evict of w"
			for (j = 1; j <= 7; j++) {
				f = order[j]; m = 0; c = 0
				for (i = 1; i <= n; i++) if (k[i] == f) { c++; v[c] = rc[i] / 100; if (rc[i] / 100 > m) m = rc[i] / 100 }
				for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (v[b] < v[a]) { x = v[a]; v[a] = v[b]; v[b] = x }
				med = c ? v[int((c + 1) / 2)] : 0
				allowed = (f == "kill9" || f == "switch" || f == "cull") ? "no" : "yes"
				rec = c ? sprintf("%.2f / %.2f", med, m) : "-"
				if (f == "cull") rec = "-"
				printf "| %s: %s | %d | %d | %s | %s | %d |\n", f, desc[f], cnt[f] + 0, errs[f] + 0, allowed, rec, lz[f] + 0
			}
			printf "| (no fault: outside every window) | - | - | - | - | %d |\n", lz["none"] + 0
		}' $S/windows $S/errors $S/livez-bad
	echo
	echo "Recovery: kill -9 and switch: kill to the new daemon serving; outages and partition: origin back to /readyz 200; umount: umount to mounted again."
	echo "Errors \"in its windows\": from the fault's start to 30 s after its end for faults that allow errors (a read started before the end may fail up to three deadlines later), to 5 s after for the others."
	echo
	# Invariants.
	outside=$(awk -v margin=$MARGIN_CS '
		FILENAME == ARGV[1] { n++; s[n] = $2; e[n] = $3; al[n] = $4; next }
		{ ok = 0; for (i = 1; i <= n; i++) if (al[i] == 1 && $1 >= s[i] && $1 <= e[i] + margin) ok = 1; if (!ok) print }' $S/windows $S/errors)
	n_outside=$(printf '%s' "$outside" | grep -c .)
	n_wrong=$(wc -l <$S/wrong)
	n_slow=$(wc -l <$S/slow)
	n_hung=$(awk -v h=$HUNG_CS '$3 > h' $S/slow | wc -l)
	n_inflight=$(($(wc -l <$S/hung-inflight) - $(cat $S/inflight-finished 2>/dev/null | wc -l)))
	livez=$(awk '$2 == "check" { n++; if ($3 != 200 || $4 >= 1.0) { slow++; if ($5 == 200 && $6 < 1.0) bad++ }; if ($4 > mx) mx = $4 }
		END { printf "%d %d %d %.3f", n, slow, bad, mx }' $S/livez)
	livez_restart=$(awk '$2 == "restart" { n++; if ($3 == 200) ok++ } END { printf "%d %d", n, ok }' $S/livez)
	d_first=$(awk '$2 == "daemon" { print; exit }' $S/samples)
	d_last=$(awk '$2 == "daemon" { l = $0 } END { print l }' $S/samples)
	h_first=$(awk '$2 == "holder" { print; exit }' $S/samples)
	h_last=$(awk '$2 == "holder" { l = $0 } END { print l }' $S/samples)
	d_max=$(awk '$2 == "daemon" { if ($4 > f) f = $4; if ($5 > r) r = $5 } END { print f, r }' $S/samples)
	longest=$(awk '$2 == "daemon" { if (!($3 in a)) a[$3] = $1; z[$3] = $1; F[$3] = $4; R[$3] = $5; if (!($3 in f0)) { f0[$3] = $4; r0[$3] = $5 } }
		END { for (p in a) if (z[p] - a[p] >= best) { best = z[p] - a[p]; bp = p }
			printf "%d %d %d %d %d", best / 100, f0[bp], F[bp], r0[bp], R[bp] }' $S/samples)
	set -- $d_first; dfd0=$4 drss0=$5
	set -- $d_last; dfd1=$4 drss1=$5
	set -- $h_first; hfd0=$4 hrss0=$5
	set -- $h_last; hfd1=$4 hrss1=$5
	set -- $livez; lz_n=$1 lz_slow=$2 lz_bad=$3 lz_max=$4
	set -- $livez_restart; lzr_n=$1 lzr_ok=$2
	set -- $longest; lg_s=$1 lg_f0=$2 lg_f1=$3 lg_r0=$4 lg_r1=$5
	set -- $d_max; dfd_max=$1 drss_max=$2
	fds_ok=yes
	[ $((dfd1 - dfd0)) -le 32 ] && [ $((hfd1 - hfd0)) -le 2 ] && [ $((lg_f1 - lg_f0)) -le 32 ] || fds_ok=no
	rss_ok=yes
	[ $((drss1 - drss0)) -le 65536 ] && [ $((hrss1 - hrss0)) -le 4096 ] && [ $((lg_r1 - lg_r0)) -le 65536 ] || rss_ok=no
	verdict() { [ "$1" = 0 ] && echo held || echo "**FAILED**"; }
	echo "Invariants:"
	echo
	echo "| invariant | measured | bound | |"
	echo "|---|---|---|---|"
	echo "| wrong bytes (a block's sha256 or a range differing from the source) | $n_wrong | 0, ever | $(verdict "$n_wrong") |"
	echo "| read errors outside the windows of faults that allow them | $n_outside (of $(wc -l <$S/errors) errors in all) | 0 | $(verdict "$n_outside") |"
	echo "| hung reads: a read(2) (<= 1 MiB) or mount longer than 3 deadlines ($((HUNG_CS / 100)) s), finished / never finished | $n_hung / $n_inflight | 0 | $(verdict $((n_hung + n_inflight))) |"
	echo "| (information) reads longer than 2 deadlines ($((SLOW_CS / 100)) s), all in fault windows? | $n_slow, $(awk -v margin=$MARGIN_CS 'FILENAME == ARGV[1] { n++; s[n] = $2; e[n] = $3; next } { ok = 0; for (i = 1; i <= n; i++) if ($1 >= s[i] && $1 <= e[i] + margin) ok = 1; if (!ok) out++ } END { print (out ? out " outside" : "yes") }' $S/windows $S/slow) | - | |"
	echo "| hung tasks in dmesg (\"blocked for more than\") | $hung_dmesg | 0 | $(verdict "$hung_dmesg") |"
	echo "| /livez every second outside restarts: checks; not 200 within 1 s; of those, with the control server answering within 1 s at the same moment; slowest | $lz_n; $lz_slow; $lz_bad; $lz_max s | 0 with the control fast | $(verdict "$lz_bad") |"
	echo "| (information) /livez during restarts: checks, answered 200 | $lzr_n, $lzr_ok | - | |"
	echo "| daemon fds: first sample, last sample, max | $dfd0, $dfd1, $dfd_max | growth <= 32 | $([ $fds_ok = yes ] && echo held || echo "**FAILED**") |"
	echo "| daemon RSS KiB: first sample, last sample, max | $drss0, $drss1, $drss_max | growth <= 64 MiB | $([ $rss_ok = yes ] && echo held || echo "**FAILED**") |"
	echo "| the longest-lived daemon process ($lg_s s): fds, RSS KiB at its first and last sample | $lg_f0 -> $lg_f1, $lg_r0 -> $lg_r1 | growth <= 32 fds, 64 MiB | |"
	echo "| device holder (alive throughout): fds, RSS KiB at start and end | $hfd0 -> $hfd1, $hrss0 -> $hrss1 | growth <= 2 fds, 4 MiB | |"
	echo "| restarts that resumed the cache from the holder (restore) | $resumed of $restarts | all | $([ "$resumed" = "$restarts" ] && echo held || echo "**FAILED**") |"
	echo "| other invariant failures (daemon died, not ready 120 s after a fault, mount not back) | $(wc -l <$S/invariant-failures) | 0 | $(verdict "$(wc -l <$S/invariant-failures)") |"
	echo
	echo "Also: $(grep -c ok $S/warms) warms of w ok, $(grep -c failed $S/warms) failed, $(awk '{ s += $1 } END { print s + 0 }' $S/culled) files culled in the cull windows; $(wc -l <$S/evicted) evictions by the cold readers, $(wc -l <$S/evict-refused) given up after 40 s; daemon counters at the end: $(sed -n 's/^\(reads\|reads_failed\|verify_failures\|cache_write_errors\)=/\1=/p' $BC_STATUS | tr '\n' ' ')"
	echo "SOAK-RESULT-END"
} >$S/report
cat $S/report
echo "----- read errors (first 30 of $(wc -l <$S/errors)) -----"
head -n 30 $S/errors
echo "----- fault windows (kind start_cs end_cs allow recovery_cs) -----"
cat $S/windows
awk '$2 == "check" && ($3 != 200 || $4 >= 1.0)' $S/livez >$S/livez-slow
for f in wrong slow hung-inflight invariant-failures livez-slow stalls; do
	[ -s $S/$f ] || continue
	echo "----- $f -----"
	head -n 400 $S/$f
done
[ "$hung_dmesg" = 0 ] || dmesg | grep -A 12 "blocked for more than" | head -n 60
if grep -q '\*\*FAILED\*\*' $S/report; then
	echo "SOAK-VERDICT: FAIL"
	exit 1
fi
echo "SOAK-VERDICT: PASS"
