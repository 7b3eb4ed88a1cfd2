# blobcached.service as installed by `make install`, in a Debian guest with systemd as PID 1:
# - restarts (systemctl restart, RESTARTS times, 2 s apart) during a paced read of a mounted model:
#   the bound /dev/cachefiles comes back from systemd's fd store each time (`restore`), 0 read
#   errors, right bytes, a new main pid each time, /readyz 200 after each restart;
# - the hardening creates no mount namespace: the model the service mounts ([model m] mount =) is
#   in PID 1's mount namespace;
# - capabilities: CapEff/CapPrm/CapBnd are exactly SYS_ADMIN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER;
# - the watchdog: a SIGSTOPped daemon is killed and restarted by systemd (WatchdogSec=3s drop-in),
#   the model stays readable;
# - the udev rule: the cache volume's "add" event starts the service;
# - the service refuses a cache directory on the root filesystem unless allow_root_fs = yes, with
#   exit status 78 and no restart loop (RestartPreventExitStatus=78).
# vm: --rootfs debian --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
RESTARTS=${1:-10}
SIZE_MB=96
journal() { journalctl -q -b -u blobcached.service --no-pager -o cat; }
show_journal() {
	echo "----- journal of blobcached.service (last 60 lines) -----"
	journal | tail -n 60
	echo "----- end -----"
}
trap show_journal EXIT
mainpid() { systemctl show -p MainPID --value blobcached.service; }
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:9464/readyz; }

make_model /srv/src/m $SIZE_MB 3
bc_publish m /srv/src/m || fail "publish"
bc_config
# The service mounts the model itself: that mount must show in PID 1's namespace.
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
mkdir -p /etc/systemd/system/blobcached.service.d
systemctl enable --now blobcached.service || { systemctl status --no-pager blobcached; fail "systemctl enable --now blobcached"; }
assert_eq active "$(systemctl is-active blobcached.service)" "service state after start"
journal | grep -q "stored the bound cachefiles device in systemd's fd store" ||
	fail "the first start did not store the device in the fd store"
pass "blobcached.service started (Type=notify), device stored in the fd store"

# --- hardening without a mount namespace; capabilities -------------------------------------
pid=$(mainpid)
assert_eq "$(readlink /proc/1/ns/mnt)" "$(readlink /proc/$pid/ns/mnt)" "service mount namespace"
wait_for 'findmnt -n -N 1 -t erofs /models/m >/dev/null' 30
findmnt -N 1 -t erofs /models/m
cut -d' ' -f5 /proc/1/mountinfo | sort >/tmp/mnt.pid1
cut -d' ' -f5 "/proc/$pid/mountinfo" | sort >/tmp/mnt.svc
cmp /tmp/mnt.pid1 /tmp/mnt.svc || fail "the service sees other mounts than PID 1"
pass "no mount namespace: ns/mnt $(readlink /proc/$pid/ns/mnt) shared, the service's mount is visible in PID 1's mountinfo"
# bits 1 (DAC_OVERRIDE), 2 (DAC_READ_SEARCH), 3 (FOWNER), 21 (SYS_ADMIN)
want_caps=000000000020000e
for set in CapEff CapPrm CapBnd; do
	assert_eq $want_caps "$(sed -n "s/^$set:[[:space:]]*//p" /proc/$pid/status)" "$set of the daemon"
done
assert_eq 0000000000000000 "$(sed -n 's/^CapAmb:[[:space:]]*//p' /proc/$pid/status)" "CapAmb"
journal | grep "capabilities: kept" | tail -n1
pass "capabilities: CapEff = CapPrm = CapBnd = $want_caps"
systemd-analyze security blobcached.service >/tmp/security.txt 2>&1 || { cat /tmp/security.txt; fail "systemd-analyze security"; }
note "systemd-analyze security: $(grep -i 'overall exposure' /tmp/security.txt)"

# --- restarts during a paced read (of the service's mount) -----------------------------------
ln -s /models/m /mnt/m
(
	i=0
	while [ $i -lt $SIZE_MB ]; do
		dd if=/mnt/m/model.safetensors of=/tmp/copy bs=1048576 skip=$i seek=$i count=1 \
			conv=notrunc 2>>/tmp/reader.err || { echo "read error at MiB $i" >>/tmp/reader.err; exit 1; }
		sleep 0.3
		i=$((i + 1))
	done
) &
reader=$!
read_start=$(now)
restarts=0
max_ready_ms=0
while [ $restarts -lt "$RESTARTS" ]; do
	sleep 2
	kill -0 $reader 2>/dev/null || break
	old=$(mainpid)
	t0=$(date +%s%N)
	systemctl restart blobcached.service || { systemctl status --no-pager blobcached; fail "restart $((restarts + 1))"; }
	new=$(mainpid)
	assert_ne "$old" "$new" "main pid after restart $((restarts + 1))"
	assert_eq active "$(systemctl is-active blobcached.service)" "state after restart $((restarts + 1))"
	code=$(readyz)
	[ "$code" = 200 ] || { sleep 1; code=$(readyz); }
	assert_eq 200 "$code" "/readyz after restart $((restarts + 1))"
	ms=$((($(date +%s%N) - t0) / 1000000))
	[ $ms -le $max_ready_ms ] || max_ready_ms=$ms
	restarts=$((restarts + 1))
	note "restart $restarts: pid $old -> $new, ready (/readyz 200) in $ms ms"
done
wait $reader
rc=$?
read_s=$(elapsed_since "$read_start")
[ -s /tmp/reader.err ] && grep -v "records\|bytes" /tmp/reader.err | head
assert_eq 0 "$rc" "reader exit status (0 read errors)"
assert_eq "$RESTARTS" "$restarts" "restarts that landed during the read"
assert_eq "$(checksum /srv/src/m/model.safetensors)" "$(checksum /tmp/copy)" "sha256 of what the reader read"
took=$(journal | grep -c "took the bound cachefiles device back from systemd's fd store")
resumed=$(journal | grep -c "resumed the cache from the device holder ('restore' written)")
assert_eq "$restarts" "$took" "starts that took the device back from the fd store"
assert_eq "$restarts" "$resumed" "starts that wrote restore"
nr=$(systemctl show -p NRestarts --value blobcached.service)
assert_eq 0 "$nr" "NRestarts (manual restarts are not counted)"
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after the restarts differs"
pass "$restarts restarts during a ${read_s} s read: 0 read errors, checksum correct, fd store each time, slowest restart to /readyz 200: $max_ready_ms ms"

# --- the watchdog --------------------------------------------------------------------------
cat >/etc/systemd/system/blobcached.service.d/watchdog.conf <<'EOF'
[Service]
WatchdogSec=3s
EOF
systemctl daemon-reload
systemctl restart blobcached.service || fail "restart with WatchdogSec=3s"
journal | grep "systemd watchdog:" | tail -n1
pid=$(mainpid)
kill -STOP "$pid"
t0=$(date +%s%N)
wait_for '[ "$(mainpid)" != "$pid" ] && [ "$(mainpid)" != 0 ] && [ "$(systemctl is-active blobcached.service)" = active ]' 60 0.2
wd_ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq 1 "$(systemctl show -p NRestarts --value blobcached.service)" "NRestarts after the watchdog kill"
journalctl -q -b -u blobcached.service --no-pager | grep -i "watchdog timeout" | tail -n1
journalctl -q -b -u blobcached.service --no-pager | grep -qi "watchdog timeout" || fail "no watchdog timeout in the journal"
wait_for '[ "$(readyz)" = 200 ]' 10
drop_caches
assert_eq "$(checksum /srv/src/m/model.safetensors)" "$(checksum /mnt/m/model.safetensors)" "model read after the watchdog restart"
pass "watchdog: SIGSTOPped daemon killed and restarted by systemd in $wd_ms ms (WatchdogSec=3s); the model still reads right"
rm /etc/systemd/system/blobcached.service.d/watchdog.conf
systemctl daemon-reload

# --- the cache directory on the root filesystem ----------------------------------------------
systemctl stop blobcached.service
umount /models/m
mkdir -p /var/lib/rootcache
sed -i 's|^dir = .*|dir = /var/lib/rootcache|' "$BC_CONF"
systemctl reset-failed blobcached.service
since=$(date '+%Y-%m-%d %H:%M:%S')
if systemctl start blobcached.service; then
	fail "blobcached started with its cache directory on the root filesystem"
fi
assert_eq 78 "$(systemctl show -p ExecMainStatus --value blobcached.service)" "exit status of the refusal"
sleep 3
assert_eq 0 "$(systemctl show -p NRestarts --value blobcached.service)" "restarts after the refusal (RestartPreventExitStatus=78)"
systemctl stop blobcached.service
msg=$(journalctl -q -b -u blobcached.service --since "$since" --no-pager -o cat | grep "root filesystem" | head -n1)
echo "refusal: $msg"
assert_contains "is on the root filesystem" "$msg" "refusal message"
assert_contains "allow_root_fs = yes" "$msg" "refusal message names the fix"
sed -i 's|^\[cache\]$|[cache]\nallow_root_fs = yes|' "$BC_CONF"
systemctl reset-failed blobcached.service
since=$(date '+%Y-%m-%d %H:%M:%S')
systemctl start blobcached.service || { show_journal; fail "start with allow_root_fs = yes"; }
journalctl -q -b -u blobcached.service --since "$since" --no-pager -o cat | grep -q "stored the bound cachefiles device" ||
	fail "after a full stop the device was not bound afresh (fd store not flushed?)"
systemctl stop blobcached.service
pass "refused a cache on the root filesystem (allow_root_fs unset); started with allow_root_fs = yes"
# --- the udev rule: the cache volume appearing starts the service --------------------------
# The harness masks the rule so that the service does not start at boot; unmask it and replay
# the volume's "add" event, as when the NVMe volume is plugged or found at boot.
bc_config
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
systemctl reset-failed blobcached.service
assert_eq inactive "$(systemctl is-active blobcached.service)" "service before the volume event"
rm /etc/udev/rules.d/61-blobcached.rules
udevadm control --reload
dev=$(findmnt -n -o SOURCE /var/cache/blobcached)
udevadm info --query=property "$dev" | grep -q '^ID_FS_LABEL=blobcache$' || fail "$dev has no label blobcache"
t0=$(date +%s%N)
udevadm trigger --action=add --settle "$dev"
wait_for '[ "$(systemctl is-active blobcached.service)" = active ]' 30 0.2
udev_ms=$((($(date +%s%N) - t0) / 1000000))
udevadm info --query=property "$dev" | grep '^SYSTEMD_WANTS='
wait_for 'findmnt -n -N 1 -t erofs /models/m >/dev/null' 30
pass "the cache volume's udev event started blobcached.service in $udev_ms ms (61-blobcached.rules), which mounted the model"
systemctl stop blobcached.service
echo "figures: udev_start_ms=$udev_ms restarts=$restarts read_errors=0 read_seconds=$read_s slowest_restart_ms=$max_ready_ms watchdog_restart_ms=$wd_ms"
