# DKMS for real: cachefiles.ko and erofs.ko built by dkms from the blobcached-dkms package (as it
# installs them in /usr/src/blobcache-ondemand-<version>) for the guest's kernel. dkms runs on
# the host against that kernel's headers (tests/vm/dkms-modules; under TCG a build in the guest
# would take many minutes and need the headers and linux-source in the guest); the guest boots
# with exactly those modules: /sys/module/*/srcversion and version are those of the files dkms
# built, the version says -dkms, `bind ondemand` is accepted, and a model is served through them
# (sha256 of every file equal to the source).
# vm: --modules dkms --timeout 600
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

versions=/usr/share/blobcache-tests/modules.versions
assert_eq 2 "$(wc -l <"$versions")" "modules put in place by --modules dkms"
while read -r name srcversion version; do
	module_loaded "$name" || fail "$name is not loaded"
	assert_eq "$srcversion" "$(cat /sys/module/$name/srcversion)" "$name: srcversion of the loaded module vs the one dkms built"
	assert_eq "$version" "$(cat /sys/module/$name/version)" "$name: version of the loaded module"
	assert_contains "blobcache-ondemand-" "$version" "$name version"
	assert_contains "-dkms" "$version" "$name version"
	note "$name: loaded srcversion $srcversion, version $version (built by dkms)"
done <"$versions"
pass "the loaded cachefiles and erofs are the ones dkms built"

make_model /srv/src/m 24 60
bc_publish m /srv/src/m || fail "publish"
bc_config
bc_start || fail "daemon start (bind ondemand on dkms's cachefiles)"
grep -q "bound" "$BC_LOG" || note "(daemon log has no 'bound' line)"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount through dkms's erofs"
tree_sums /mnt/m >/tmp/m.mnt || fail "reading the model"
tree_sums /srv/src/m >/tmp/m.src
assert_eq "$(wc -l </tmp/m.src)" "$(wc -l </tmp/m.mnt)" "file count"
cmp /tmp/m.src /tmp/m.mnt || { diff /tmp/m.src /tmp/m.mnt | head; fail "model content differs"; }
reads=$(bc_stat reads)
[ "$reads" -gt 0 ] || fail "no READ reached the daemon"
assert_eq 0 "$(bc_stat reads_failed)" "failed READs"
umount /mnt/m || fail "umount"
bc_stop
pass "a model served through dkms's modules: sha256 of $(wc -l </tmp/m.mnt) files equal to the source, $reads READs"
