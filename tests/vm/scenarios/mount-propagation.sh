# Reliability E1: a consumer that binds the models directory with HostToContainer (rslave)
# propagation, as a container runtime does, sees the model the daemon mounts, sees it go when it
# is unmounted from outside, and sees the daemon's remount, without doing anything itself.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

# erofs_in PID PATH: EROFS mounts at PATH in the mount namespace of PID.
erofs_in() {
	awk -v p="$2" '$5 == p && $9 == "erofs" { n++ } END { print n + 0 }' "/proc/$1/mountinfo"
}

make_model /srv/src/m 4 3
bc_publish m /srv/src/m >/dev/null || fail "publish"
tree_sums /srv/src/m >/tmp/want
bc_config
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
bc_start || fail "daemon start"
wait_for '[ "$(erofs_in self /models/m)" = 1 ]' 20

# The "container": its own mount namespace, /models bound recursively at /ctr/models and made
# rslave (Kubernetes' mountPropagation: HostToContainer). It checks its view every 0.1 s.
mkdir -p /ctr/models
unshare -m --propagation slave sh -c '
	mount --rbind /models /ctr/models && mount --make-rslave /ctr/models || exit 1
	echo $$ >/tmp/ctr.pid
	while :; do
		if (cd /ctr/models/m && find . -type f | sort | while read -r f; do sha256sum "$f"; done) >/tmp/ctr.sums.new 2>/dev/null; then
			mv /tmp/ctr.sums.new /tmp/ctr.sums
		fi
		sleep 0.1
	done' &
ctr=$!
wait_for '[ -s /tmp/ctr.pid ]' 10
cpid=$(cat /tmp/ctr.pid)
[ "$(readlink /proc/$cpid/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || fail "the consumer shares our mount namespace"
assert_eq 1 "$(erofs_in "$cpid" /ctr/models/m)" "the model seen by the consumer at /ctr/models/m"
wait_for 'cmp -s /tmp/want /tmp/ctr.sums' 20
pass "the consumer reads the model through its rslave bind"

for how in "umount" "umount -l"; do
	# A plain umount fails with EBUSY while the consumer is inside its copy of the mount
	# (propagated umounts need every copy idle, as on a real node): retry until it lands.
	tries=0
	until $how /models/m 2>/dev/null; do
		tries=$((tries + 1))
		[ $tries -lt 100 ] || fail "$how /models/m: still busy after 100 tries"
		sleep 0.05
	done
	t0=$(ms)
	wait_for '[ "$(erofs_in "$cpid" /ctr/models/m)" = 1 ] && [ "$(erofs_in self /models/m)" = 1 ]' 10 0.05
	took=$(($(ms) - t0))
	echo "MEASURED: $how /models/m on the host: the consumer sees the remount after $took ms"
	[ "$took" -le 5000 ] || fail "the consumer saw the remount after $took ms (> 5000)"
	rm -f /tmp/ctr.sums
	wait_for 'cmp -s /tmp/want /tmp/ctr.sums' 20
	pass "$how on the host: remounted, and the consumer reads it again without acting"
done
kill "$ctr" "$cpid" 2>/dev/null
bc_stop
