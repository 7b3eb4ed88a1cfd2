# The NFS origin mounted by the daemon: the guest's nfs-kernel-server exports /srv/export over
# 127.0.0.1, the daemon mounts it at /srv/origin itself ([origin] nfs) and a model at /models/m.
# A reader reads the model while (a) the NFS server restarts and (b) the origin mount is lazily
# unmounted from outside: the reads resume by themselves (no error, right bytes), the mount is
# back within 5 s; (b2) the same with the NFS server down: /readyz goes 503 naming the origin,
# then 200 once it is back; then (c) the export changes under the mount (stale
# file handles): the daemon reopens and remounts, the reader sees no error. Times are printed.
# Needs the Debian guest (systemd, nfs-kernel-server): run-scenario --rootfs debian.
# vm: --rootfs debian --timeout 600
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464

http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$P$1"; }
origin_mounted() { awk '$2 == "/srv/origin" && $3 ~ /^nfs/ { f = 1 } END { exit !f }' /proc/mounts; }

bc_nfs_export m 24
want=$(sha256sum </srv/src/m/model.safetensors | cut -d' ' -f1)

mkdir -p /etc/blobcached /var/cache/blobcached/blobcached
cat >"$BC_CONF" <<EOF
[cache]
dir = /var/cache/blobcached/blobcached
[origin]
path = /srv/origin
nfs = 127.0.0.1:/srv/export
nfs_options = soft,timeo=10,retrans=2,retry=0
[daemon]
catalogue = /srv/catalogue
run_dir = /run/blobcached
request_timeout = 60s
readahead = 0
[model m]
mount = /models/m
EOF
bc_start || fail "daemon start"
wait_for origin_mounted 30
wait_for 'grep -q " /models/m erofs " /proc/mounts' 30
wait_for '[ "$(http_status /readyz)" = 200 ]' 10
pass "the daemon mounted the NFS origin and the model; ready"

# The reader: 1 MiB at a time, slowly, each range fetched from the origin (no read-ahead).
reader() {
	errors=0
	i=0
	while [ $i -lt 24 ]; do
		dd if=/models/m/model.safetensors of=/tmp/part.$i bs=1M skip=$i count=1 2>/dev/null ||
			errors=$((errors + 1))
		i=$((i + 1))
		sleep 0.4
	done
	cat $(i=0; while [ $i -lt 24 ]; do echo /tmp/part.$i; i=$((i + 1)); done) |
		sha256sum | cut -d' ' -f1 >/tmp/reader.sum
	echo $errors >/tmp/reader.errors
}

# A full restart with nothing cached (every range from NFS again), a reader started under it.
restart_cold_with_reader() {
	bc_term
	bc_stop_holder
	umount -l /models/m 2>/dev/null
	rm -rf /var/cache/blobcached/blobcached/*
	drop_caches
	bc_start || fail "daemon restart"
	wait_for 'grep -q " /models/m erofs " /proc/mounts' 30
	wait_for '[ "$(http_status /readyz)" = 200 ]' 10
	reader &
	rpid=$!
	sleep 2
}

# (a) The NFS server restarts under the reader.
reader &
rpid=$!
sleep 2
t0=$(ms)
systemctl restart nfs-server || fail "nfs-server restart"
echo "MEASURED: systemctl restart nfs-server took $(($(ms) - t0)) ms"
wait $rpid
assert_eq 0 "$(cat /tmp/reader.errors)" "read errors across the NFS server restart"
assert_eq "$want" "$(cat /tmp/reader.sum)" "bytes read across the NFS server restart"
echo "MEASURED: reader finished $(($(ms) - t0)) ms after the restart began"
pass "(a) NFS server restarted: reads resumed by themselves, bytes correct"

# (b) The origin mount is lazily unmounted from outside under the reader: back within 5 s.
# How long /readyz stays 503 depends on how fast the remount is, which may be shorter than one
# look with curl on a loaded host; (b2) checks the readiness where the window is held open.
restart_cold_with_reader
# A watcher that polls /proc/mounts with shell builtins only (no fork per look), so that the
# time measured is the mount's and not the machine's.
mount_watch() {
	t_start=$1
	while :; do
		read -r up _ </proc/uptime
		now_ms=$(( ${up%.*} * 1000 + 1${up#*.}0 - 1000 ))
		found=
		while read -r _ dst typ _; do
			case "$typ" in nfs*) [ "$dst" = /srv/origin ] && found=1 ;; esac
		done </proc/mounts
		if [ -z "$found" ]; then gone=1; fi
		if [ -n "$found" ] && [ -n "$gone" ]; then echo $((now_ms - t_start)) >/tmp/back.ms; return; fi
		[ $((now_ms - t_start)) -gt 20000 ] && return
		sleep 0.02
	done
}
rm -f /tmp/back.ms
t0=$(ms)
gone=
mount_watch "$t0" &
wpid=$!
umount -l /srv/origin || fail "umount -l /srv/origin"
wait $wpid
back=$(cat /tmp/back.ms 2>/dev/null)
echo "MEASURED: umount -l /srv/origin: mounted again after ${back:-never} ms"
grep "mounted again at /srv/origin" "$BC_LOG" | tail -1
[ -n "$back" ] && [ "$back" -le 5000 ] || fail "origin mount not back within 5 s"
wait_until '[ "$(http_status /readyz)" = 200 ]' 10 || fail "/readyz not 200 after the remount"
wait $rpid
assert_eq 0 "$(cat /tmp/reader.errors)" "read errors across the lazy unmount"
assert_eq "$want" "$(cat /tmp/reader.sum)" "bytes read across the lazy unmount"
pass "(b) origin unmounted from outside: back in $back ms, reads resumed"

# (b2) The same with the NFS server down, so that the remount fails until it is back: /readyz
# is 503 and names the origin mount for as long as it is missing, then 200 again; the reader
# waits (request_timeout 60 s) and sees no error.
restart_cold_with_reader
systemctl stop nfs-server || fail "nfs-server stop"
t0=$(ms)
umount -l /srv/origin || fail "umount -l /srv/origin (server down)"
wait_until '[ "$(http_status /readyz)" = 503 ]' 15 0.2 || fail "/readyz never went 503 with the origin gone"
saw503=$(($(ms) - t0))
body=$(curl -s --max-time 2 "$P/readyz")
echo "/readyz with the origin gone and the server down: $body"
assert_contains "origin mount" "$body" "/readyz body"
assert_contains "/srv/origin" "$body" "/readyz body"
sleep 1
assert_eq 503 "$(http_status /readyz)" "/readyz while the server is still down"
t1=$(ms)
systemctl start nfs-server || fail "nfs-server start"
wait_until origin_mounted 30 0.2 || fail "origin not mounted again after the server came back"
wait_until '[ "$(http_status /readyz)" = 200 ]' 15 0.2 || fail "/readyz not 200 after the server came back"
echo "MEASURED: server down: /readyz 503 at $saw503 ms after the unmount; 200 again $(($(ms) - t1)) ms after the server was started"
wait $rpid
assert_eq 0 "$(cat /tmp/reader.errors)" "read errors across the origin outage"
assert_eq "$want" "$(cat /tmp/reader.sum)" "bytes read across the origin outage"
pass "(b2) origin gone with the server down: /readyz 503 naming it, 200 once back; reads waited, bytes correct"

# (c) The export changes under the mount (a new fsid: every file handle the client holds, the
# mount's root included, turns stale): the daemon sees ESTALE, reopens, and its mount health
# replaces the stale mount; the reader sees no error. Fresh cache again, so every range is read.
restart_cold_with_reader
t0=$(ms)
echo "/srv/export 127.0.0.1(ro,no_subtree_check,fsid=2)" >/etc/exports
exportfs -ra || fail "exportfs -ra"
wait $rpid
echo "MEASURED: export changed (fsid 1 -> 2) under a reader: reader done $(($(ms) - t0)) ms later, $(cat /tmp/reader.errors) read errors"
grep -E "stale|ESTALE|not answering|detaching" "$BC_LOG" | tail -3
assert_eq 0 "$(cat /tmp/reader.errors)" "read errors across the export change (ESTALE)"
assert_eq "$want" "$(cat /tmp/reader.sum)" "bytes read across the export change"
pass "(c) export changed under the mount: ESTALE handled by reopening and remounting, reads correct"

bc_stop
umount /models/m 2>/dev/null
umount /srv/origin 2>/dev/null
pass "NFS origin managed by the daemon"
