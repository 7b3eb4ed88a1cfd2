# Reliability B5: the cache volume fails, in both front ends (on-demand, then ublk). The cache directory is on ext4 over a device-mapper
# device (over a loop file on the work disk) whose table is swapped at run time: first
# dm-flakey with error_reads (every read of the volume fails, writes pass), then dm-error (all
# I/O fails). In each phase a model's cached and uncached ranges read right bytes or fail with
# EIO, never wrong bytes, never a hang; /readyz turns 503 naming the cache volume; after the
# table is linear again the daemon is ready again by itself (reads failing), or, when the
# filesystem stopped after the write errors (ext4 aborts its journal; cachefiles withdraws the
# cache), keeps saying so with the repair to do (fsck, mount, restart), and after that repair
# every file reads right.
# vm: --with-binary /usr/sbin/dmsetup --with-binary /usr/sbin/mkfs.ext4 --with-binary /usr/sbin/e2fsck --with-binary /usr/bin/curl
# vm: --with-kernel-module dm-mod --with-kernel-module dm-flakey --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464
VOL=/var/cache/bcvol
http_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$P$1"; }
readyz_text() { curl -s --max-time 2 "$P/readyz"; }
# check_reads WHAT: the model's large file, 1 MiB at a time: every MiB that reads is right,
# the others fail; no read hangs (60 s bound). Sets GOOD and BAD (MiB counts).
check_reads() {
	GOOD=0 BAD=0 i=0
	while [ $i -lt 32 ]; do
		if timeout 60 dd if=/mnt/m/model.safetensors of=/tmp/piece bs=1048576 skip=$i count=1 2>/tmp/dd.err; then
			dd if=/srv/src/m/model.safetensors of=/tmp/want bs=1048576 skip=$i count=1 2>/dev/null
			cmp -s /tmp/piece /tmp/want || fail "$1: MiB $i read WRONG BYTES"
			GOOD=$((GOOD + 1))
		else
			[ $? = 124 ] && fail "$1: the read of MiB $i hangs (60 s)"
			BAD=$((BAD + 1))
		fi
		i=$((i + 1))
	done
}

mount_model() {
	if [ "$FE" = ublk ]; then
		blobcachectl --run-dir /run/blobcached mount m /mnt/m
	else
		mount -t erofs -o fsid=m none /mnt/m
	fi
}
umount_model() {
	if [ "$FE" = ublk ]; then
		blobcachectl --run-dir /run/blobcached umount m
		wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 30
	else
		umount /mnt/m
	fi
}
bc_dm_volume 512M dm-flakey
SECTORS=$BC_DM_SECTORS LINEAR=$BC_DM_LINEAR
run_frontend() {
	FE=$1
	mkfs.ext4 -q -F /dev/mapper/cachevol || fail "mkfs.ext4"
	mkdir -p $VOL
	mount -o errors=continue /dev/mapper/cachevol $VOL || fail "mount the cache volume"
	bc_config frontend=$FE readahead=0 request_timeout=10s
	sed -i "s|^dir = .*|dir = $VOL/blobcached|" "$BC_CONF"
	mkdir -p $VOL/blobcached
	: >$BC_LOG
	bc_start || fail "daemon start"
	mkdir -p /mnt/m
	mount_model || fail "mount"
	# The first half cached before the faults.
	dd if=/mnt/m/model.safetensors of=/dev/null bs=1M count=16 2>/dev/null || fail "first read"
	wait_for '[ "$(http_status /readyz)" = 200 ]' 10 || fail "not ready before the faults"
	assert_eq 1 "$(bc_stat cache_volume_ok)" "cache_volume_ok before the faults"
	if [ "$FE" = ondemand ]; then
		# The daemon reads the cache's state here (E: stopped after I/O errors).
		cat /proc/fs/fscache/caches
		awk '$6 == "A" && $7 == "blobcached" { f = 1 } END { exit !f }' /proc/fs/fscache/caches ||
			fail "no active cache 'blobcached' in /proc/fs/fscache/caches"
	fi
	pass "$FE: cache on ext4 over dm-linear; model mounted, half of it cached, ready"

	# --- phase 1: every read of the volume fails -------------------------------------------------
	bc_dm_table "0 $SECTORS flakey /dev/loop0 0 0 86400 1 error_reads"
	t0=$(ms)
	wait_for '[ "$(http_status /readyz)" = 503 ]' 20 0.5 || fail "/readyz stayed 200 with the volume's reads failing"
	echo "MEASURED: $FE: reads failing: /readyz 503 after $(($(ms) - t0)) ms"
	readyz_text | grep -i "cache volume" || fail "/readyz does not name the cache volume"
	drop_caches
	check_reads "reads failing"
	echo "MEASURED: $FE: reads failing: $GOOD MiB read right, $BAD MiB EIO, 0 wrong"
	kill -0 "$BC_PID" || fail "the daemon died"
	bc_dm_table "$LINEAR"
	t1=$(ms)
	wait_until '! kill -0 $BC_PID 2>/dev/null || [ "$(http_status /readyz)" = 200 ]' 30 0.5 || {
		readyz_text
		fail "not ready 30 s after the volume's reads were healed"
	}
	if ! kill -0 "$BC_PID" 2>/dev/null; then
		# cachefiles stopped the cache on the read errors: the daemon exits by itself once
		# the volume answers, with the dead binding dropped; a supervisor (systemd's
		# Restart=on-failure; here the scenario) starts it, it binds anew.
		grep -q "the next start binds the cache anew" $BC_LOG || fail "the daemon exited without saying why"
		echo "MEASURED: $FE: the dead binding noticed: the daemon exited $(($(ms) - t1)) ms after the heal"
		wait "$BC_PID" 2>/dev/null
		BC_PID=
		wait_until '[ ! -f /run/blobcached/holder.pid ]' 10 || fail "the device holder did not go"
		bc_start || fail "daemon start after it exited for a new binding"
		umount -l /mnt/m
		mount_model || fail "mount after the new binding"
		wait_for '[ "$(http_status /readyz)" = 200 ]' 20 || fail "not ready after the new binding"
	fi
	echo "MEASURED: $FE: volume healthy again: /readyz 200 after $(($(ms) - t1)) ms"
	drop_caches
	sum=$(sha256sum </mnt/m/model.safetensors | cut -d' ' -f1)
	assert_eq "$(sha256sum </srv/src/m/model.safetensors | cut -d' ' -f1)" "$sum" "the whole file after the reads healed"
	pass "$FE: reads of the volume failing: right bytes or EIO, no hang, /readyz 503 naming the cache volume; ready and right again after the heal"

	# --- phase 2: all I/O fails -------------------------------------------------------------------
	bc_dm_table "0 $SECTORS error"
	t0=$(ms)
	wait_for '[ "$(http_status /readyz)" = 503 ]' 20 0.5 || fail "/readyz stayed 200 with all I/O failing"
	echo "MEASURED: $FE: all I/O failing: /readyz 503 after $(($(ms) - t0)) ms"
	readyz_text | grep -i "cache volume" || fail "/readyz does not name the cache volume"
	drop_caches
	check_reads "all I/O failing"
	echo "MEASURED: $FE: all I/O failing: $GOOD MiB read right, $BAD MiB EIO, 0 wrong"
	bc_dm_table "$LINEAR"
	t1=$(ms)
	if wait_until '[ "$(http_status /readyz)" = 200 ]' 20 0.5; then
		echo "MEASURED: $FE: volume healthy again: /readyz 200 after $(($(ms) - t1)) ms, no repair needed"
	else
		readyz_text | tee /tmp/why
		grep -q "cache volume" /tmp/why || fail "not ready after the heal, and the reason is not the cache volume"
		grep -q "fsck" /tmp/why || fail "the reason does not say how to repair"
		dmesg | grep -E "EXT4-fs.*(aborted journal|read-only)" | tail -n 2
		# ext4 stopped (aborted journal); cachefiles withdrew the cache on its I/O errors. The
		# repair the reason names: fsck, mount, and a daemon that binds the cache anew.
		echo "the filesystem stopped after the errors: the repair the reason names"
		umount_model
		bc_stop
		umount $VOL || umount -l $VOL
		e2fsck -fy /dev/mapper/cachevol >/tmp/fsck.log 2>&1
		rc=$?
		[ $rc -le 1 ] || { cat /tmp/fsck.log; fail "e2fsck exit $rc"; }
		mount -o errors=continue /dev/mapper/cachevol $VOL || fail "mount after e2fsck"
		bc_start || fail "daemon start after the repair"
		mount_model || fail "mount after the repair"
		wait_for '[ "$(http_status /readyz)" = 200 ]' 20 || fail "not ready after the repair"
	fi
	drop_caches
	sum=$(sha256sum </mnt/m/model.safetensors | cut -d' ' -f1)
	assert_eq "$(sha256sum </srv/src/m/model.safetensors | cut -d' ' -f1)" "$sum" "the whole file after the faults"
	tree_sums /srv/src/m >/tmp/src
	tree_sums /mnt/m >/tmp/mnt
	cmp /tmp/src /tmp/mnt || fail "the model after the faults differs"
	umount_model
	bc_stop
	umount $VOL || umount -l $VOL
	pass "$FE: all I/O of the volume failing: right bytes or EIO, no hang, /readyz 503; after the heal every file reads right"
}

make_model /srv/src/m 32 10
bc_publish m /srv/src/m || fail "publish"
modprobe ublk_drv || fail "modprobe ublk_drv"
run_frontend ondemand
run_frontend ublk
