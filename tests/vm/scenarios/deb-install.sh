# The blobcached Debian package in the Debian guest, as an operator uses it (no `make install`:
# run-scenario --with-deb puts the .debs, and those of the dependencies the rootfs lacks, in
# /root/debs):
# - dpkg -i with the configuration pre-seeded (as configuration management does, kept with
#   --force-confold) and the cache volume (LABEL=blobcache) present: the service is enabled and
#   running, the volume mounted by the packaged mount unit, the configuration a conffile;
# - a model published with the packaged blobcachectl, mounted with `mount -t blobcache`
#   (the packaged mount.blobcache), sha256 of every file equal to the source;
# - dpkg -r: the service stops cleanly (no daemon process left), the model mount is detached
#   (its mount point stays, empty), the configuration and state stay;
# - dpkg -P: /etc/blobcached and /var/lib/blobcached are gone, except a bind mount placed below
#   /var/lib/blobcached (same filesystem: rm --one-file-system would not see it) whose files
#   survive; the mounted cache volume's contents are untouched.
# blobcached-dkms is not installed here (the guest has no compiler or headers): the dkms-modules
# scenario builds its modules with dkms.
# vm: --rootfs debian --with-deb packages/blobcached_*_amd64.deb --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
journal() { journalctl -q -b -u blobcached.service --no-pager -o cat; }
show_journal() {
	echo "----- journal of blobcached.service (last 40 lines) -----"
	journal | tail -n 40
	echo "----- end -----"
}
trap show_journal EXIT
status_of() { dpkg-query -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' '; }

command -v blobcached >/dev/null && fail "blobcached is there before the package is installed"
ls /root/debs /root/debs/deps
# Nothing at boot waited for the cache volume's udev processing (no unit wants it yet).
udevadm settle -t 30 || true
wait_for '[ -e /dev/disk/by-label/blobcache ]' 30

# --- install -------------------------------------------------------------------------------
mkdir -p /etc/blobcached /srv/origin
cat >/etc/blobcached/blobcached.conf <<'CONF'
[cache]
dir = /var/cache/blobcached
[origin]
path = /srv/origin
CONF
t0=$(now)
dpkg -i --force-confold /root/debs/deps/*.deb /root/debs/blobcached_*.deb >/tmp/dpkg-i.log 2>&1 ||
	{ cat /tmp/dpkg-i.log; fail "dpkg -i"; }
cat /tmp/dpkg-i.log
note "dpkg -i took $(elapsed_since "$t0") s"
assert_eq ii "$(status_of blobcached)" "package state after dpkg -i"
assert_eq enabled "$(systemctl is-enabled blobcached.service)" "service enabled"
wait_for 'systemctl is-active --quiet blobcached.service' 30
assert_eq active "$(systemctl is-active var-cache-blobcached.mount)" "cache volume mount unit"
assert_eq blobcache "$(findmnt -n -o LABEL /var/cache/blobcached)" "cache volume label"
dpkg-query -W -f '${Conffiles}\n' blobcached | grep -q '/etc/blobcached/blobcached.conf' ||
	fail "/etc/blobcached/blobcached.conf is not a conffile"
grep -q '^path = /srv/origin' /etc/blobcached/blobcached.conf || fail "the pre-seeded configuration was replaced"
for f in /usr/sbin/blobcached /usr/bin/blobcachectl /usr/sbin/blobcache-kcheck /usr/sbin/blobcache-build-modules \
	/sbin/mount.blobcache /sbin/umount.blobcache /lib/udev/rules.d/61-blobcached.rules \
	/usr/share/man/man8/mount.blobcache.8.gz /usr/share/man/man5/blobcached.conf.5.gz; do
	[ -e "$f" ] || fail "$f is not installed"
done
pass "dpkg -i: installed, enabled, running on its cache volume, configuration kept as a conffile"

# --- serve a model through the installed service -------------------------------------------
make_model /srv/src/m 24 60
blobcachectl publish --catalogue /var/lib/blobcached/catalogue m /srv/src/m /srv/origin || fail "publish"
mkdir -p /models/m
mount -t blobcache -o timeout=10 m /models/m || fail "mount -t blobcache m /models/m"
tree_sums /models/m >/tmp/m.mnt || fail "reading the model"
tree_sums /srv/src/m >/tmp/m.src
cmp /tmp/m.src /tmp/m.mnt || { diff /tmp/m.src /tmp/m.mnt | head; fail "model content differs"; }
pass "a model served by the installed service: sha256 of $(wc -l </tmp/m.mnt) files equal to the source"

# Below the state directory, a bind mount of a directory on the same filesystem: purge must
# leave what it shows alone.
mkdir -p /opt/keep /var/lib/blobcached/keep
echo precious >/opt/keep/file
mount --bind /opt/keep /var/lib/blobcached/keep

# --- remove --------------------------------------------------------------------------------
t0=$(now)
dpkg -r blobcached >/tmp/dpkg-r.log 2>&1 || { cat /tmp/dpkg-r.log; fail "dpkg -r"; }
cat /tmp/dpkg-r.log
note "dpkg -r took $(elapsed_since "$t0") s"
assert_eq rc "$(status_of blobcached)" "package state after dpkg -r"
if pgrep -x blobcached >/dev/null; then
	ps -ef | grep blobcache
	fail "a blobcached process is left after dpkg -r"
fi
journal | grep -q "Deactivated successfully" || fail "the service did not stop cleanly (no 'Deactivated successfully')"
if journal | grep -q "Failed with result"; then fail "the service failed while stopping"; fi
findmnt -n -t erofs /models/m >/dev/null && fail "the model is still mounted after dpkg -r"
if findmnt /models/m >/dev/null; then
	findmnt /models/m
	fail "something is still mounted at /models/m"
fi
[ -d /models/m ] && [ -z "$(ls -A /models/m)" ] || fail "the mount point /models/m is gone or not empty"
[ -e /etc/blobcached/blobcached.conf ] || fail "dpkg -r removed the configuration"
[ -e /var/lib/blobcached/catalogue/m.model ] || fail "dpkg -r removed the state"
[ -e /usr/sbin/blobcached ] && fail "dpkg -r left /usr/sbin/blobcached"
grep -q "detached the model mounted at /models/m" /tmp/dpkg-r.log || fail "dpkg -r did not say it detached /models/m"
# The cache files are linked into the cache when the kernel lets go of them (withdrawal).
cache_files=$(find /var/cache/blobcached -type f | wc -l)
[ "$cache_files" -gt 0 ] || fail "no cache file on the volume after dpkg -r"
pass "dpkg -r: service stopped cleanly, no daemon left, the model mount detached, configuration and state kept"

# --- purge ---------------------------------------------------------------------------------
dpkg -P blobcached >/tmp/dpkg-p.log 2>&1 || { cat /tmp/dpkg-p.log; fail "dpkg -P"; }
cat /tmp/dpkg-p.log
case $(status_of blobcached) in
"" | pn | un) ;;
*) fail "package state after dpkg -P: $(status_of blobcached) (expected purged)" ;;
esac
if [ -e /etc/blobcached ]; then
	ls -la /etc/blobcached
	fail "/etc/blobcached is left after purge"
fi
[ -e /var/lib/blobcached/catalogue ] && fail "/var/lib/blobcached/catalogue is left after purge"
assert_eq precious "$(cat /opt/keep/file)" "the bind-mounted directory's file after purge"
assert_eq precious "$(cat /var/lib/blobcached/keep/file)" "the file through the bind mount after purge"
grep -q "kept what is mounted below /var/lib/blobcached" /tmp/dpkg-p.log || fail "purge did not name what it kept"
mountpoint -q /var/cache/blobcached || fail "the cache volume is no longer mounted"
assert_eq "$cache_files" "$(find /var/cache/blobcached -type f | wc -l)" "cache files on the mounted volume after purge"
umount /var/lib/blobcached/keep
pass "dpkg -P: configuration and state gone; a mount below the state directory and the mounted cache volume untouched"
