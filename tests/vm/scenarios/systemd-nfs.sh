# The hardened service (blobcached.service as installed: capability bounding set, system call
# filter, NoNewPrivileges, address families) mounts an NFS origin with mount.nfs and a model on
# it, in PID 1's mount namespace; the origin is read-only; unmounted from outside, it is mounted
# again by the service.
# vm: --rootfs debian --timeout 600
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
bc_nfs_export m 8
mkdir -p /etc/blobcached
cat >"$BC_CONF" <<EOF
[cache]
dir = /var/cache/blobcached/blobcached
[origin]
path = /srv/origin
nfs = 127.0.0.1:/srv/export
[daemon]
catalogue = /srv/catalogue
[model m]
mount = /models/m
EOF
mkdir -p /var/cache/blobcached/blobcached
systemctl start blobcached || { journalctl -u blobcached --no-pager | tail -30; fail "start"; }
wait_for "findmnt -n -N 1 -t erofs /models/m >/dev/null" 30 0.2
journalctl -u blobcached --no-pager -o cat | tail -20
findmnt -N 1 /srv/origin || fail "no NFS origin mount in PID 1"
findmnt -N 1 -t erofs /models/m || fail "no model mount"
tree_sums /srv/src/m >/tmp/a; tree_sums /models/m >/tmp/b; cmp /tmp/a /tmp/b || fail "content"
findmnt -n -N 1 -o OPTIONS /srv/origin | tr , "\n" | grep -qx ro || fail "the NFS origin is not mounted read-only"
umount -l /srv/origin
wait_for "findmnt -n -N 1 /srv/origin >/dev/null" 10 0.2
findmnt -N 1 /srv/origin || fail "NFS origin not remounted under the unit"
journalctl -u blobcached --no-pager -o cat | tail -5
pass "NFS origin mounted and remounted by the hardened service"
systemctl stop blobcached
