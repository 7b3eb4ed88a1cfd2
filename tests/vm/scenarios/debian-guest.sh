# The Debian guest (run-scenario --rootfs debian): systemd is PID 1 and the boot is clean, the
# cache volume is mounted by blobcached's own mount unit (by label), the guest kernel's modules
# load with modprobe, our on-demand modules are the ones loaded, and the guest's
# nfs-kernel-server exports /srv/nfs, mounted over loopback with NFSv4 and NFSv3 (soft) and read.
# lib.sh is sourced by dash (/bin/sh) here: this also proves the helpers work there.
# vm: --rootfs debian --timeout 600
. /usr/share/blobcache-tests/lib.sh

assert_eq systemd "$(cat /proc/1/comm)" "PID 1"
state=$(systemctl is-system-running 2>/dev/null)
failed=$(systemctl list-units --failed --plain --no-legend | awk '{ print $1 }' | tr '\n' ' ')
note "system state: $state; failed units: ${failed:-none}"
case $state in
running | degraded) ;;
*) fail "systemctl is-system-running: $state (expected running)" ;;
esac
[ -z "$failed" ] || { systemctl status --no-pager $failed; fail "failed units: $failed"; }
pass "systemd is PID 1, system $state, no failed unit"

# The cache volume: ext4 labelled blobcache, mounted by var-cache-blobcached.mount.
assert_eq active "$(systemctl is-active var-cache-blobcached.mount)" "var-cache-blobcached.mount"
assert_eq ext4 "$(fs_type /var/cache/blobcached)" "cache volume type"
assert_eq blobcache "$(findmnt -n -o LABEL /var/cache/blobcached)" "cache volume label"
assert_eq ext4 "$(fs_type /srv)" "work disk type"
pass "cache volume (LABEL=blobcache) and work disk mounted"

# Modules: ours are loaded, the rest load with modprobe from /lib/modules.
for m in cachefiles erofs; do
	module_loaded $m || fail "$m not loaded"
	v=$(modinfo -F version $m)
	assert_contains blobcache-ondemand "$v" "$m version"
	assert_contains /updates/ "$(modinfo -n $m)" "$m path"
done
[ -e /dev/cachefiles ] || fail "no /dev/cachefiles"
for m in nfsd nfs dummy loop; do
	modprobe $m || fail "modprobe $m"
	module_loaded $m || [ -d /sys/module/$m ] || fail "$m not loaded after modprobe"
done
ip link add bc-dummy0 type dummy || fail "ip link add (dummy)"
ip link del bc-dummy0
pass "on-demand cachefiles/erofs loaded; modprobe nfsd, nfs, dummy, loop works"

# NFS over loopback, from the guest's own server.
mkdir -p /srv/nfs /mnt/v4 /mnt/v3
make_file /srv/nfs/data.bin 16 7
want=$(checksum /srv/nfs/data.bin)
echo "/srv/nfs 127.0.0.1(ro,no_subtree_check,fsid=1)" >/etc/exports
start=$(now)
systemctl start nfs-server || { systemctl status --no-pager nfs-server; fail "nfs-server start"; }
exportfs -v | grep -q /srv/nfs || fail "exportfs does not list /srv/nfs"
note "nfs-server up in $(elapsed_since "$start") s"
mount -t nfs4 -o soft,timeo=50,retrans=2 127.0.0.1:/srv/nfs /mnt/v4 || fail "NFSv4 mount"
assert_eq nfs4 "$(fs_type /mnt/v4)" "NFSv4 mount type"
assert_eq "$want" "$(checksum /mnt/v4/data.bin)" "sha256 over NFSv4"
mount -t nfs -o vers=3,soft,timeo=50,retrans=2 127.0.0.1:/srv/nfs /mnt/v3 || fail "NFSv3 mount"
assert_eq nfs "$(fs_type /mnt/v3)" "NFSv3 mount type"
grep " /mnt/v3 " /proc/mounts | grep -q "vers=3" || fail "/mnt/v3 is not NFSv3: $(grep ' /mnt/v3 ' /proc/mounts)"
assert_eq "$want" "$(checksum /mnt/v3/data.bin)" "sha256 over NFSv3"
umount /mnt/v4 /mnt/v3
pass "NFSv4 and NFSv3 soft mounts of 127.0.0.1:/srv/nfs read back the right bytes"

# Where the boot time goes (kept short under TCG: see tests/vm/README.md).
systemd-analyze time
systemd-analyze blame --no-pager | head -n 15
