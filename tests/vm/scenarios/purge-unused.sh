# purge_unused_after removes exactly the models unused for longer than that: their cache files
# and their verified metadata copy go; a recently used, a pinned and a mounted model stay; a
# model is purged once it too is past its age.
# vm: --cache-size 256M
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CTL="blobcachectl --run-dir /run/blobcached"

for m in old1 old2 fresh pinned mounted; do
	make_model /srv/src/$m 6 5
	bc_publish $m /srv/src/$m >/dev/null || fail "publish $m"
done
bc_config
sed -i 's/^\[cache\]$/[cache]\npurge_unused_after = 20s\npurge_check_every = 1s\ncull_interval = 500ms/' "$BC_CONF"
printf '[model pinned]\npin = yes\n' >>"$BC_CONF"
bc_start || fail "daemon start"

t0=$(now)
for m in old1 old2 pinned; do
	bc_warm $m || fail "warm $m"
done
mkdir -p /mnt/mounted
mount -t erofs -o fsid=mounted none /mnt/mounted || fail "mount"
tree_sums /srv/src/mounted >/tmp/src.mounted
tree_sums /mnt/mounted >/tmp/got.mounted
cmp /tmp/src.mounted /tmp/got.mounted || fail "mounted differs"
wait_for '[ $(elapsed_since "$t0") -ge 12 ]' 30 0.5
bc_warm fresh || fail "warm fresh"
tf=$(now)
note "old1, old2, pinned, mounted used; fresh used $(elapsed_since "$t0") s later"

wait_for '[ "$(bc_model_field old1 cached_bytes)" = 0 ] && [ "$(bc_model_field old2 cached_bytes)" = 0 ]' 30 0.5
age_fresh=$(elapsed_since "$tf")
$CTL status
[ "$age_fresh" -lt 15 ] || fail "too slow to check: fresh is already ${age_fresh}s old"
for m in fresh pinned mounted; do
	assert_eq "$(bc_model_field $m size_bytes)" "$(bc_model_field $m cached_bytes)" \
		"cached bytes of $m"
done
for m in old1 old2; do
	d=$(bc_model_blob $m meta)
	[ ! -e "/var/lib/blobcached/meta/$d" ] || fail "metadata copy of $m kept"
done
[ -e "/var/lib/blobcached/meta/$(bc_model_blob fresh meta)" ] || fail "metadata copy of fresh gone"
echo "figures: purged $(bc_cache_field purged_files) file(s) of old1 and old2; fresh ${age_fresh}s old kept"
assert_eq 4 "$(bc_cache_field purged_files)" "files purged"
pass "exactly the models past their age purged; recent, pinned and mounted kept"

# Past its age, fresh goes too; the pinned and the mounted model never.
wait_for '[ "$(bc_model_field fresh cached_bytes)" = 0 ]' 40 0.5
for m in pinned mounted; do
	assert_eq "$(bc_model_field $m size_bytes)" "$(bc_model_field $m cached_bytes)" \
		"cached bytes of $m"
done
drop_caches
tree_sums /mnt/mounted >/tmp/got2.mounted
cmp /tmp/src.mounted /tmp/got2.mounted || fail "mounted differs after the purges"
# A purged model mounts and reads again (from the origin).
mkdir -p /mnt/old1
mount -t erofs -o fsid=old1 none /mnt/old1 || fail "mount old1 after its purge"
tree_sums /srv/src/old1 >/tmp/src.old1
tree_sums /mnt/old1 >/tmp/got.old1
cmp /tmp/src.old1 /tmp/got.old1 || fail "old1 differs after its purge"
umount /mnt/old1 /mnt/mounted
bc_stop
pass "purge of unused models"
