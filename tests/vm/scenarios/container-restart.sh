# The daemon in a mount namespace of its own, as in the Kubernetes example (conf/kubernetes):
# only /models is shared with the host (its copy in the daemon's namespace is a peer of the
# host's, as with mountPropagation: Bidirectional), and a consumer binds /models rslave
# (HostToContainer). In each front end (on-demand, then ublk):
# - the model mount the daemon makes in its namespace reaches the host and the consumer, whose
#   reads are right; a mount the host asks for outside /models (blobcachectl mount) is made,
#   but stays in the daemon's namespace;
# - a container restart: the daemon and its device holder killed together (a container runtime
#   ends every process of the container), their namespace gone. The model mount stays on the
#   host (tearing down a namespace does not propagate unmounts). A new daemon in a new
#   namespace: on-demand: binds the cache anew and replaces the mount (a new mount on the host,
#   which the consumer reads right without acting); ublk: serves the same devices again and
#   keeps the mount (the same mount on the host), and a reader that had the model's file open
#   across the restart reads it to the end with no error and the right sum.
# vm: --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap 'show_models; bc_show_log; cat /tmp/ctr.log 2>/dev/null' EXIT

# fstype_awk: sets t to the filesystem type of a mountinfo line (after the optional fields).
fstype_awk='{ t = ""; for (i = 7; i < NF; i++) if ($i == "-") { t = $(i + 1); break } }'
# erofs_in PID PATH: EROFS mounts at PATH in the mount namespace of PID.
erofs_in() {
	awk -v p="$2" "$fstype_awk"' $5 == p && t == "erofs" { n++ } END { print n + 0 }' "/proc/$1/mountinfo"
}
# erofs_id PATH: the mount id of the (top) EROFS mount at PATH in our (the host's) namespace.
erofs_id() {
	awk -v p="$1" "$fstype_awk"' $5 == p && t == "erofs" { id = $1 } END { print id }' /proc/self/mountinfo
}
# show_models: the mounts below /models in the host's and the daemon's namespaces.
show_models() {
	echo "--- host mountinfo (/models) ---"
	grep " /models" /proc/self/mountinfo
	[ -n "${CTR:-}" ] && [ -e "/proc/$CTR/mountinfo" ] &&
		{ echo "--- daemon's mountinfo (/models) ---"; grep " /models" "/proc/$CTR/mountinfo"; }
	return 0
}
# alive PID: the process exists and is not a zombie.
alive() {
	[ -e "/proc/$1/stat" ] && ! awk '{ exit $3 == "Z" ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null
}
# ns_alive NS: whether some process still has the mount namespace NS (mnt:[inode]).
ns_alive() {
	for f in /proc/[0-9]*/ns/mnt; do
		[ "$(readlink "$f" 2>/dev/null)" = "$1" ] && return 0
	done
	return 1
}

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m 24 20
make_model /srv/src/m2 2 3
bc_publish m /srv/src/m >/dev/null || fail "publish m"
bc_publish m2 /srv/src/m2 >/dev/null || fail "publish m2"
tree_sums /srv/src/m >/tmp/want
sha256sum </srv/src/m/model.safetensors | cut -d' ' -f1 >/tmp/want.big

# The host: every mount private, and /models a shared mount (systemd makes / shared; the
# kubelet's Bidirectional needs the host path on a shared mount).
mount --make-rprivate /
mkdir -p /models /srv/m2
mount --bind /models /models && mount --make-shared /models || fail "making /models shared"
hostns=$(readlink /proc/self/ns/mnt)

# container_start: blobcached in a new mount namespace whose mounts are copies of the host's:
# /models a peer of the host's; the others, private on the host, become shared in peer groups
# of the namespace's own (busybox unshare has no working "unchanged"), which reach nothing
# outside it. Sets CTR (the daemon's pid).
container_start() {
	rm -f /tmp/ctr.pid "$BC_STATUS"
	unshare -m --propagation shared sh -c 'mount --make-rprivate /srv && echo $$ >/tmp/ctr.pid &&
		exec blobcached -c '"$BC_CONF" \
		>>/tmp/ctr.log 2>&1 &
	wait_for '[ -s /tmp/ctr.pid ]' 10
	CTR=$(cat /tmp/ctr.pid)
	wait_for "[ -f $BC_STATUS ] || ! alive $CTR" 30
	alive "$CTR" || fail "blobcached in its namespace exited during start-up"
	CTRNS=$(readlink "/proc/$CTR/ns/mnt")
	assert_ne "$hostns" "$CTRNS" "the daemon's mount namespace"
}
# container_kill: kill -9 of every process of the "container" (the daemon and its holder).
container_kill() {
	holder=$(cat /run/blobcached/holder.pid 2>/dev/null || true)
	[ -n "$holder" ] && [ "$(readlink "/proc/$holder/ns/mnt")" = "$CTRNS" ] ||
		fail "no device holder in the daemon's namespace"
	kill -9 "$CTR" "$holder"
	wait "$CTR" 2>/dev/null
	wait_for "! alive $CTR && ! alive $holder" 10
	wait_for "! ns_alive $CTRNS" 10
}
# consumer_start: a consumer in its own namespace with an rslave bind of /models at
# /ctr/models, writing the sums of the model's files to /tmp/cons.sums every 0.2 s.
consumer_start() {
	mkdir -p /ctr/models
	rm -f /tmp/cons.pid /tmp/cons.sums
	unshare -m --propagation slave sh -c '
		mount --rbind /models /ctr/models && mount --make-rslave /ctr/models || exit 1
		echo $$ >/tmp/cons.pid
		while :; do
			if (cd /ctr/models/m && find . -type f | sort | while read -r f; do sha256sum "$f"; done) >/tmp/cons.new 2>/dev/null; then
				mv /tmp/cons.new /tmp/cons.sums
			fi
			sleep 0.2
		done' &
	CONS_SH=$!
	wait_for '[ -s /tmp/cons.pid ]' 10
	CONS=$(cat /tmp/cons.pid)
}

run_frontend() {
	fe=$1
	note "--- frontend = $fe ---"
	bc_config frontend=$fe restart_grace=30s request_timeout=10s
	printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
	container_start
	# With /models shared, the anchor (the mount point bound onto itself) joins the models
	# root's peer group and the EROFS mount propagates to the root too: it shows twice.
	wait_for '[ "$(erofs_in self /models/m)" -ge 1 ]' 30
	[ "$(erofs_in "$CTR" /models/m)" -ge 1 ] || fail "$fe: no model mount in the daemon's namespace"
	note "$fe: EROFS mounts at /models/m: $(erofs_in self /models/m) on the host, $(erofs_in "$CTR" /models/m) in the daemon's namespace"
	consumer_start
	wait_for 'cmp -s /tmp/want /tmp/cons.sums' 60
	pass "$fe: the mount the daemon made in its own namespace reached the host and the consumer (sha256 of $(wc -l </tmp/want) files right)"

	# Outside /models: made in the daemon's namespace only.
	blobcachectl --run-dir /run/blobcached mount m2 /srv/m2 || fail "$fe: blobcachectl mount m2 /srv/m2"
	wait_for '[ "$(erofs_in "$CTR" /srv/m2)" = 1 ]' 30
	assert_eq 0 "$(erofs_in self /srv/m2)" "$fe: EROFS mounts at /srv/m2 on the host"
	blobcachectl --run-dir /run/blobcached umount m2 || fail "$fe: blobcachectl umount m2"
	wait_for '[ "$(erofs_in "$CTR" /srv/m2)" = 0 ]' 30
	pass "$fe: a mount outside /models (blobcachectl mount from the host) stays in the daemon's namespace"

	# A reader on the host with the big file open across the restart, paced (1 MiB / 0.2 s).
	drop_caches
	rm -f /tmp/rd.err /tmp/rd.sum
	(
		exec 3</models/m/model.safetensors
		i=0
		while [ $i -lt 24 ]; do
			dd bs=1048576 count=1 <&3 2>/dev/null || echo "read error at MiB $i" >>/tmp/rd.err
			sleep 0.2
			i=$((i + 1))
		done
	) | sha256sum | cut -d' ' -f1 >/tmp/rd.sum &
	reader=$!
	sleep 1
	old_id=$(erofs_id /models/m)
	t0=$(now)
	container_kill
	[ "$(erofs_in self /models/m)" -ge 1 ] || fail "$fe: the model mount left the host with the daemon's namespace"
	assert_eq "$old_id" "$(erofs_id /models/m)" "$fe: the host's model mount after the namespace died"
	container_start
	wait "$reader" 2>/dev/null
	errors=$([ -f /tmp/rd.err ] && wc -l </tmp/rd.err || echo 0)
	if [ "$fe" = ondemand ]; then
		# The cache was withdrawn with the holder: the new daemon bound it anew and replaces
		# the dead mount, on the host too.
		wait_for '[ "$(erofs_id /models/m)" != "$old_id" ] && [ -n "$(erofs_id /models/m)" ]' 30
		echo "MEASURED: on-demand container restart: the reader of the replaced mount got $errors read errors (files open on it fail: the holder died with the container)"
	else
		assert_eq 0 "$errors" "$fe: read errors of the reader across the restart"
		assert_eq "$(cat /tmp/want.big)" "$(cat /tmp/rd.sum)" "$fe: sha256 read across the restart"
		assert_eq "$old_id" "$(erofs_id /models/m)" "$fe: the host's model mount after the restart (the same devices served again)"
		grep -q "recovered" /tmp/ctr.log || fail "$fe: the new daemon did not serve the devices again"
	fi
	rm -f /tmp/cons.sums
	wait_for 'cmp -s /tmp/want /tmp/cons.sums' 60
	echo "MEASURED: $fe: the consumer read the model right again $(elapsed_since "$t0") s after the kill"
	if [ "$fe" = ondemand ]; then
		pass "$fe: container restart: the mount stayed on the host, the new daemon (new namespace) replaced it, the consumer reads it right without acting"
	else
		pass "$fe: container restart: the mount stayed, the new daemon (new namespace) served the same devices again, 0 read errors across it, the consumer reads it right"
	fi

	kill "$CONS" "$CONS_SH" 2>/dev/null
	wait "$CONS_SH" 2>/dev/null
	blobcachectl --run-dir /run/blobcached umount m >/dev/null 2>&1 || true
	kill "$CTR"
	wait "$CTR" 2>/dev/null
	bc_stop_holder
	while [ "$(erofs_in self /models/m)" != 0 ]; do umount -l /models/m || break; done
	umount -l /models/m 2>/dev/null || true
	rm -rf /run/blobcached/*
}

run_frontend ondemand
run_frontend ublk
