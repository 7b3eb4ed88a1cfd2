# A model re-published under its name (blobcachectl publish --force) three times: every mount
# made after an update reads exactly the new version, although the name-keyed metadata cache
# file of the old one is still on the cache volume and v2's metadata blob has the same size as
# v1's (the kernel's only coherency check is the size). A mount of the old version kept mounted
# across an update and a daemon kill -9 + restart (restore) keeps reading the old bytes until it
# is unmounted; with the old versions' blobs gone from the origin and the daemon restarted, the
# next mount reads the newest version. Plain `mount -t erofs -o fsid=` and `blobcachectl mount`,
# whose mounts are in the default domain ([cache] domain): a name-keyed metadata cache file
# there holds the version last mounted in the domain, and is discarded just the same.
# (Issue 9, part 1.)
# vm: --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
STATE=/var/lib/blobcached
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

# meta_size ENTRY: size of the metadata blob of a model entry file.
meta_size() {
	awk '/^meta *=/ { m = $3 }
		/^\[blob / { d = $2; sub(/\]$/, "", d) }
		/^size *=/ && d == m && m != "" { print $3; exit }' "$1"
}
check_tree() { bc_check_tree "$@"; }
publish() { bc_publish_version "$@"; }

bc_update_setup copy
mkdir -p /mnt/m /models
mount -t erofs -o fsid=m none /mnt/m || fail "mount v1"
# Only part of v1 is read before the restart below, so that its data object still needs the
# daemon afterwards (the kernel re-opens an object at its first READ after a restore).
bc_check_part_sums bc_part_sums /srv/src/v1 /mnt/m "v1 mount"
pass "v1 mounted with mount -t erofs -o fsid=m reads v1 (small files, first 4 MiB)"

publish v2
v1size=$(meta_size /tmp/v1.model)
v2size=$(meta_size /tmp/v2.model)
echo "metadata blob: v1 $v1size bytes, v2 $v2size bytes"
assert_eq "$v1size" "$v2size" "v2's metadata blob size (same as v1's: the kernel cannot tell them apart)"
assert_ne "$(bc_model_blob m meta)" "$(sed -n 's/^meta *= *//p' /tmp/v1.model)" "v2's metadata digest"
bc_check_part_sums bc_part_sums /srv/src/v1 /mnt/m "the v1 mount after v2 was published"
pass "the v1 mount keeps reading v1 after v2 is published"

bc_kill9
bc_start || fail "daemon restart with v1 mounted"
grep -q "resumed the cache from the device holder" $BC_LOG || fail "the restart did not resume"
drop_caches
check_tree /mnt/m /tmp/want-v1 "the v1 mount after a kill -9 and restart"
pass "the v1 mount reads v1 across a kill -9 + restart (restore) with v2 in the catalogue"
umount /mnt/m || fail "umount v1"
bc_wait_closed 30

mount -t erofs -o fsid=m none /mnt/m || fail "mount v2"
check_tree /mnt/m /tmp/want-v2 "v2 mount"
grep -q "model m was re-published" $BC_LOG || fail "the discarded metadata was not logged"
umount /mnt/m
bc_wait_closed 30
pass "after the unmount, the next mount reads v2 (metadata of the same size as v1's)"

# v2 through the daemon: in the default domain, a metadata cache file of m of its own.
ctl mount m /models/m || fail "blobcachectl mount v2"
grep " /models/m erofs " /proc/mounts | grep -q "fsid=m,domain_id=blobcache" ||
	fail "blobcachectl mount not in the default domain: $(grep " /models/m " /proc/mounts)"
check_tree /models/m /tmp/want-v2 "v2 mount (blobcachectl mount, default domain)"
ctl umount m || fail "blobcachectl umount v2"
bc_wait_closed 30

# v3, mounted through the daemon, without a restart: the catalogue change is noticed.
publish v3
ctl mount m /models/m || fail "blobcachectl mount v3"
check_tree /models/m /tmp/want-v3 "v3 mount (blobcachectl mount)"
assert_eq "meta $(bc_model_blob m meta)" "$(head -n 1 "$STATE/served/erofs,blobcache/m")" \
	"the record of what the domain's metadata cache file holds"
[ "$(grep -c "model m was re-published" $BC_LOG)" -ge 2 ] ||
	fail "the domain's metadata cache file (v2) was not discarded for v3"
ctl umount m || fail "blobcachectl umount"
bc_wait_closed 30
pass "v3 published with the daemon running and mounted with blobcachectl mount (over v2's metadata cache file in the domain) reads v3"

# The old versions' blobs leave the origin; a full stop and start: the newest version mounts.
bc_remove_old_blobs
bc_stop
bc_start || fail "daemon start without the old blobs"
ls $STATE/versions
[ "$(ls $STATE/versions | wc -l)" = 1 ] || fail "retained versions not dropped: $(ls $STATE/versions)"
drop_caches
mount -t erofs -o fsid=m none /mnt/m || fail "mount v3 after the restart"
check_tree /mnt/m /tmp/want-v3 "v3 mount after the old blobs were removed and a restart"
umount /mnt/m
bc_stop
pass "with the old versions' blobs removed and a restart, the next mount reads v3"
