# ublk mode under blobcached.service (issue 8, part 4), in a Debian guest with systemd as PID 1
# ([daemon] frontend = ublk; Debian's own ublk_drv; the guest's cachefiles is not used):
# - restarts (systemctl restart, RESTARTS times, 2 s apart) and a crash (SIGKILL of the main
#   process: Restart=on-failure) during a paced read of the model the service mounts: each new
#   daemon serves the same ublk devices again (user recovery), the mount stays, 0 read errors,
#   right bytes, /readyz 200 after each restart;
# - systemctl stop during a read: the device holder (KillMode=process keeps it) stops the
#   devices after restart_grace: the reader gets EIO, never hangs; systemctl start mounts the
#   model again over new devices.
# vm: --rootfs debian --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
RESTARTS=${1:-5}
SIZE_MB=64
GRACE=5
journal() { journalctl -q -b -u blobcached.service --no-pager -o cat; }
show_journal() {
	echo "----- journal of blobcached.service (last 60 lines) -----"
	journal | tail -n 60
	echo "----- end -----"
}
trap show_journal EXIT
mainpid() { systemctl show -p MainPID --value blobcached.service; }
readyz() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:9464/readyz; }
devs() { ls /dev/ublkb* 2>/dev/null | tr '\n' ' '; }

modprobe ublk_drv || fail "modprobe ublk_drv"
make_model /srv/src/m $SIZE_MB 3
bc_publish m /srv/src/m || fail "publish"
bc_config frontend=ublk restart_grace=${GRACE}s
printf '[model m]\nmount = /models/m\n' >>"$BC_CONF"
systemctl enable --now blobcached.service || { systemctl status --no-pager blobcached; fail "systemctl enable --now blobcached"; }
wait_for 'findmnt -n -N 1 -t erofs /models/m >/dev/null' 60 || fail "the service did not mount the model"
first_devs=$(devs)
journal | grep -q "device holder started" || fail "no device holder in ublk mode under systemd"
pass "blobcached.service in ublk mode: model mounted over $first_devs, device holder started"

# --- restarts and a crash during a paced read ------------------------------------------------
paced_read() {
	rm -f /tmp/copy /tmp/reader.err
	(
		i=0
		while [ $i -lt $SIZE_MB ]; do
			dd if=/models/m/model.safetensors of=/tmp/copy bs=1048576 skip=$i seek=$i count=1 \
				conv=notrunc 2>/dev/null || { echo "read error at MiB $i $(now)" >>/tmp/reader.err; exit 1; }
			sleep 0.25
			i=$((i + 1))
		done
	) &
	reader=$!
}
paced_read
restarts=0
while [ $restarts -lt "$RESTARTS" ]; do
	sleep 2
	kill -0 $reader 2>/dev/null || break
	old=$(mainpid)
	systemctl restart blobcached.service || { systemctl status --no-pager blobcached; fail "restart $((restarts + 1))"; }
	assert_ne "$old" "$(mainpid)" "main pid after restart $((restarts + 1))"
	code=$(readyz)
	[ "$code" = 200 ] || { sleep 1; code=$(readyz); }
	assert_eq 200 "$code" "/readyz after restart $((restarts + 1))"
	restarts=$((restarts + 1))
done
sleep 2
old=$(mainpid)
systemctl kill -s KILL --kill-whom=main blobcached.service
wait_for '[ "$(systemctl is-active blobcached.service)" = active ] && [ "$(mainpid)" != "$old" ] && [ "$(mainpid)" != 0 ]' 30 ||
	fail "systemd did not restart the killed daemon"
wait $reader
rc=$?
[ -s /tmp/reader.err ] && head /tmp/reader.err
assert_eq 0 "$rc" "reader exit status (0 read errors)"
assert_eq "$RESTARTS" "$restarts" "restarts that landed during the read"
assert_eq "$(checksum /srv/src/m/model.safetensors)" "$(checksum /tmp/copy)" "sha256 of what the reader read"
served=$(journal | grep -c "block devices of the earlier daemon served again")
assert_eq $((restarts + 1)) "$served" "starts that served the devices again"
assert_eq "$first_devs" "$(devs)" "the block devices after the restarts"
assert_eq 1 "$(systemctl show -p NRestarts --value blobcached.service)" "NRestarts (the crash)"
pass "$restarts systemctl restart and 1 crash during a read: 0 read errors, sum correct, same devices $first_devs"

# --- systemctl stop: EIO after restart_grace, never a hang --------------------------------------
drop_caches
paced_read
sleep 2
stopped=$(now)
systemctl stop blobcached.service
wait_for "! kill -0 $reader 2>/dev/null" $((GRACE + 60)) || fail "the reader hangs $((GRACE + 60)) s after systemctl stop"
[ -s /tmp/reader.err ] || fail "the reader finished without an error with the service stopped"
failed_at=$(awk '{ print $NF }' /tmp/reader.err)
pause=$(awk -v a="$stopped" -v b="$failed_at" 'BEGIN { printf "%.1f", b - a }')
journal | grep -q "stopped /dev/ublkb" || fail "the holder did not stop the devices"
note "systemctl stop: the reader's EIO came $pause s after the stop (restart_grace ${GRACE}s)"
systemctl start blobcached.service || fail "systemctl start"
wait_for 'findmnt -n -N 1 -t erofs /models/m >/dev/null && [ "$(readyz)" = 200 ]' 60 || fail "not mounted and ready again after start"
tree_sums /srv/src/m >/tmp/src
tree_sums /models/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after stop and start differs"
systemctl stop blobcached.service
pass "systemctl stop: EIO after $pause s (restart_grace ${GRACE}s), no hang; start serves the model again"
