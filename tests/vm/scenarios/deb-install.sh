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
# - blobcached-dkms with dpkg -i, its maintainer scripts for real: the guest has neither the
#   kernel's headers nor a compiler (dkms is installed with --force-depends, without the gcc,
#   make and build-essential that it needs only to build: under TCG they would cost minutes),
#   so for each installed kernel the package says that it cannot build there and why, in the
#   words of dkms-kernel-check, and the installation succeeds; the loaded modules are not
#   touched and the service keeps serving; dpkg -r and -P leave no trace in the dkms tree or
#   /usr/src. (The dkms-modules scenario builds the modules with dkms, on the host.)
# vm: --rootfs debian --with-deb packages/blobcached_*_amd64.deb
# vm: --with-deb packages/blobcached-dkms_*_all.deb --deb-alone dkms --timeout 900
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
dpkg -i --force-confold /root/debs/deps/*.deb /root/debs/blobcached_*_amd64.deb >/tmp/dpkg-i.log 2>&1 ||
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

# --- blobcached-dkms: no headers, no compiler -------------------------------------------------
dkms_name=blobcache-ondemand
srcversions() { cat /sys/module/cachefiles/srcversion /sys/module/erofs/srcversion; }
loaded_before=$(srcversions)
dpkg -i --force-depends /root/debs/alone/dkms_*.deb >/tmp/dpkg-dkms.log 2>&1 ||
	{ cat /tmp/dpkg-dkms.log; fail "dpkg -i --force-depends dkms"; }
command -v gcc >/dev/null && fail "the guest has a compiler: this part expects none"
t0=$(now)
dpkg -i /root/debs/blobcached-dkms_*_all.deb >/tmp/dpkg-i-dkms.log 2>&1 ||
	{ cat /tmp/dpkg-i-dkms.log; fail "dpkg -i blobcached-dkms (a kernel without headers must not fail it)"; }
cat /tmp/dpkg-i-dkms.log
note "dpkg -i blobcached-dkms took $(elapsed_since "$t0") s"
assert_eq ii "$(status_of blobcached-dkms)" "blobcached-dkms state after dpkg -i"
version=$(dpkg-query -W -f '${Version}' blobcached-dkms)
check=/usr/src/$dkms_name-$version/dkms-kernel-check
[ -x "$check" ] || fail "$check is not installed"
grep -qxF "blobcached-dkms: on-demand cachefiles.ko and erofs.ko for the installed kernels:" /tmp/dpkg-i-dkms.log ||
	fail "blobcached-dkms did not list the installed kernels"
kernels=0
for dir in /lib/modules/*; do
	kernel=${dir##*/}
	kernels=$((kernels + 1))
	rc=0
	verdict=$("$check" "$kernel") || rc=$?
	assert_eq 2 "$rc" "dkms-kernel-check $kernel exit status (2: cannot build)"
	assert_eq "$kernel: cannot build: no kernel headers (install linux-headers-$kernel)" "$verdict" "verdict for $kernel"
	grep -qxF "  $verdict" /tmp/dpkg-i-dkms.log || fail "the installation did not say: $verdict"
	if ls "$dir"/updates/dkms/cachefiles.ko* "$dir"/updates/dkms/erofs.ko* >/dev/null 2>&1; then
		fail "modules installed for $kernel without headers"
	fi
done
[ "$kernels" -ge 1 ] || fail "no kernel in /lib/modules"
dkms status -m "$dkms_name" >/tmp/dkms-status.txt 2>&1 || true
cat /tmp/dkms-status.txt
grep -q "^$dkms_name/$version: added" /tmp/dkms-status.txt ||
	fail "dkms status: $dkms_name/$version is not 'added' (a build was attempted, or the add failed)"
assert_eq "$loaded_before" "$(srcversions)" "the loaded cachefiles and erofs after dpkg -i blobcached-dkms"
systemctl is-active --quiet blobcached.service || fail "blobcached stopped while blobcached-dkms was installed"
pass "dpkg -i blobcached-dkms on a kernel without headers: succeeded, said '$verdict' for each of $kernels kernel(s), registered with dkms (added, not built), loaded modules untouched"

t0=$(now)
dpkg -r blobcached-dkms >/tmp/dpkg-r-dkms.log 2>&1 || { cat /tmp/dpkg-r-dkms.log; fail "dpkg -r blobcached-dkms"; }
cat /tmp/dpkg-r-dkms.log
grep -q "Deleting module $dkms_name-$version completely from the DKMS tree" /tmp/dpkg-r-dkms.log ||
	fail "dpkg -r blobcached-dkms did not remove $dkms_name from dkms"
# No conffile and no postrm: dpkg -r leaves nothing for a purge (dpkg -P says so, and succeeds).
case $(status_of blobcached-dkms) in
"" | pn | un) ;;
*) fail "blobcached-dkms state after dpkg -r: $(status_of blobcached-dkms) (expected not installed)" ;;
esac
dpkg -P blobcached-dkms >/tmp/dpkg-p-dkms.log 2>&1 || { cat /tmp/dpkg-p-dkms.log; fail "dpkg -P blobcached-dkms"; }
cat /tmp/dpkg-p-dkms.log
note "dpkg -r and -P of blobcached-dkms took $(elapsed_since "$t0") s"
if [ -e "/var/lib/dkms/$dkms_name" ]; then
	find "/var/lib/dkms/$dkms_name" | head
	fail "/var/lib/dkms/$dkms_name is left after purge"
fi
if ls -d /usr/src/$dkms_name-* >/dev/null 2>&1; then
	ls -la /usr/src
	fail "/usr/src/$dkms_name-* is left after purge"
fi
dkms status 2>&1 | grep "$dkms_name" && fail "dkms still lists $dkms_name after purge"
assert_eq "$loaded_before" "$(srcversions)" "the loaded cachefiles and erofs after dpkg -P blobcached-dkms"
pass "dpkg -r and -P blobcached-dkms: nothing left in /var/lib/dkms or /usr/src, loaded modules untouched"

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
