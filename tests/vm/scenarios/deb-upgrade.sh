# Upgrades and downgrades of the blobcached package under load (issue 11, part 2; reliability
# A3 for real): in the Debian guest, with a model mounted (mount -t blobcache) and read over and
# over, `dpkg -i` alternately of a higher version and of the built one (the built .deb
# repacked with dpkg-deb under version VERSION+upgrade1: the maintainer scripts run as for any
# newer build) UPGRADES times, in on-demand mode (the new daemon takes /dev/cachefiles back from
# systemd's fd store) and then twice in ublk mode (it serves the same ublk devices again). Each
# time: the service restarted with a new main pid, 0 read errors, every pass's sha256 right, its
# processes and the ublk devices the same as before; the daemon's fd count after the last step
# no more than 2 above the one after the first step (the first daemon bound the device itself,
# later ones took it from the store; object fds come and go with the reads).
# vm: --rootfs debian --with-deb packages/blobcached_*_amd64.deb --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
UPGRADES=${1:-6}
journal() { journalctl -q -b -u blobcached.service --no-pager -o cat; }
show_journal() {
	echo "----- journal of blobcached.service (last 60 lines) -----"
	journal | tail -n 60
	echo "----- end -----"
}
trap show_journal EXIT
mainpid() { systemctl show -p MainPID --value blobcached.service; }
version_of() { dpkg-query -W -f '${Version}' blobcached; }
fds() { ls /proc/"$(mainpid)"/fd | wc -l; }
procs() { pgrep -c -f '^/usr/sbin/blobcached' || true; }

udevadm settle -t 30 || true
wait_for '[ -e /dev/disk/by-label/blobcache ]' 30
mkdir -p /etc/blobcached /srv/origin
cat >/etc/blobcached/blobcached.conf <<'CONF'
[cache]
dir = /var/cache/blobcached
[origin]
path = /srv/origin
CONF
dpkg -i --force-confold /root/debs/deps/*.deb /root/debs/blobcached_*.deb >/tmp/dpkg-i.log 2>&1 ||
	{ cat /tmp/dpkg-i.log; fail "dpkg -i"; }
wait_for 'systemctl is-active --quiet blobcached.service' 30 || fail "the service did not start"
built=$(version_of)
higher="$built+upgrade1"
# The higher version: the same files, the control file's version changed.
dpkg-deb -R /root/debs/blobcached_*.deb /tmp/pkg
sed -i "s/^Version: .*/Version: $higher/" /tmp/pkg/DEBIAN/control
dpkg-deb -b /tmp/pkg /tmp/blobcached_higher.deb >/dev/null || fail "dpkg-deb -b"
cp /root/debs/blobcached_*.deb /tmp/blobcached_built.deb
note "versions: built $built, higher $higher"

make_model /srv/src/m 48 20
blobcachectl publish --catalogue /var/lib/blobcached/catalogue m /srv/src/m /srv/origin >/dev/null || fail "publish"
want=$(checksum /srv/src/m/model.safetensors)

# reader: passes over the model's large file, 1 MiB per dd (each status kept), the page cache
# dropped before each pass so that every pass needs the daemon (ublk: for every read).
start_reader() {
	rm -f /tmp/reader.err /tmp/reader.stop /tmp/reader.passes
	(
		while [ ! -f /tmp/reader.stop ]; do
			sync
			echo 3 >/proc/sys/vm/drop_caches
			i=0
			while [ $i -lt 48 ]; do
				dd if=/models/m/model.safetensors bs=1048576 skip=$i count=1 2>/dev/null ||
					echo "read error at MiB $i" >>/tmp/reader.err
				i=$((i + 1))
				sleep 0.05
			done | sha256sum | cut -d' ' -f1 >>/tmp/reader.passes
		done
	) &
	reader=$!
}
stop_reader() {
	: >/tmp/reader.stop
	wait $reader
	errors=$([ -f /tmp/reader.err ] && wc -l </tmp/reader.err || echo 0)
	[ "$errors" = 0 ] || head /tmp/reader.err
	assert_eq 0 "$errors" "$1: read errors"
	passes=$(wc -l </tmp/reader.passes)
	bad=$(grep -vc "^$want\$" /tmp/reader.passes || true)
	assert_eq 0 "$bad" "$1: passes with a wrong sha256 (of $passes)"
}

# cycle MODE N: N alternating dpkg -i (higher, built, ...) under the reader.
cycle() {
	mode=$1
	n=$2
	mkdir -p /models/m
	mount -t blobcache -o timeout=30 m /models/m || fail "$mode: mount -t blobcache"
	start_reader
	sleep 3
	base_fds=
	base_procs=$(procs)
	base_devs=$(ls /dev/ublkb* 2>/dev/null | tr '\n' ' ')
	k=0
	while [ $k -lt "$n" ]; do
		k=$((k + 1))
		if [ $((k % 2)) = 1 ]; then deb=/tmp/blobcached_higher.deb v=$higher; else deb=/tmp/blobcached_built.deb v=$built; fi
		old=$(mainpid)
		t0=$(now)
		dpkg -i --force-confold "$deb" >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log; fail "$mode: dpkg -i $v"; }
		wait_for 'systemctl is-active --quiet blobcached.service && [ "$(mainpid)" != 0 ]' 30 ||
			fail "$mode: the service is not active after dpkg -i $v"
		assert_eq "$v" "$(version_of)" "$mode: installed version after step $k"
		assert_ne "$old" "$(mainpid)" "$mode: main pid after dpkg -i $v (a restart)"
		sleep 3 # reads go on with the new daemon
		[ -n "$base_fds" ] || base_fds=$(fds)
		last_fds=$(fds)
		assert_eq "$base_procs" "$(procs)" "$mode: blobcached processes after step $k"
		assert_eq "$base_devs" "$(ls /dev/ublkb* 2>/dev/null | tr '\n' ' ')" "$mode: ublk devices after step $k"
		note "$mode: step $k: dpkg -i $v in $(elapsed_since "$t0") s, pid $old -> $(mainpid), $(fds) fds"
	done
	stop_reader "$mode"
	[ "$last_fds" -le $((base_fds + 2)) ] ||
		fail "$mode: the daemon's open fds grew from $base_fds (step 1) to $last_fds (step $n)"
	pass "$mode: $n upgrades and downgrades under a reader ($passes passes of 48 MiB): 0 read errors, sums right, no fd, process or device leak"
	umount /models/m || fail "$mode: umount"
}

cycle ondemand "$UPGRADES"
journal | grep -c "took the bound cachefiles device back from systemd's fd store" >/tmp/took
assert_eq "$UPGRADES" "$(cat /tmp/took)" "on-demand restarts that took the device back from the fd store"

modprobe ublk_drv || fail "modprobe ublk_drv"
printf '[daemon]\nfrontend = ublk\n' >>/etc/blobcached/blobcached.conf
systemctl restart blobcached.service || fail "restart in ublk mode"
cycle ublk 2
served=$(journal | grep -c "block devices of the earlier daemon served again")
assert_eq 2 "$served" "ublk restarts that served the devices again"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 30 || fail "ublk devices left after umount"

dpkg -r blobcached >/tmp/dpkg-r.log 2>&1 || { cat /tmp/dpkg-r.log; fail "dpkg -r"; }
if pgrep -f '^/usr/sbin/blobcached' >/dev/null; then
	ps -ef | grep blobcache
	fail "a blobcached process (or its holder) is left after dpkg -r"
fi
pass "dpkg -r after the upgrades: no daemon or holder left"
