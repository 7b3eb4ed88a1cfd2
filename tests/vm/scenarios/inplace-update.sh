# A model published in place (blobcachectl publish --in-place --force) three times under its
# name, each version a directory of its own beneath the origin as operators keep them (large
# files shared between versions as hard links or identical copies, one through a Hugging Face
# snapshot symlink; tests/vm/blobcache.sh ipu_make_versions). Each mount made after an update
# reads exactly its version (sha256 of every file). A mount of v1 kept across the update keeps
# reading v1; when one of v1's files is then overwritten in place on the origin, its chunks not
# cached before fail with EIO (never the new bytes, never a mix), logged once with the path and
# "re-publish". A mount of v2 kept across the v3 update and a kill -9 + restart (restore) reads
# v2. With the old version directories removed and a restart, the newest version mounts.
# Plain `mount -t erofs -o fsid=` and `blobcachectl mount`. (Issue 9, parts 1 and 2.)
# vm: --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
meta_size() { sed -n "/^\[blob $(sed -n 's/^meta *= *//p' "$1")\]/,/^\[/s/^size *= *//p" "$1"; }
F=model-00002.safetensors

bc_update_setup in-place
mkdir -p /mnt/m /models
mount -t erofs -o fsid=m none /mnt/m || fail "mount v1"
bc_check_part_sums ipu_part_sums $IPU/v1 /mnt/m "v1 mount"
pass "v1 published in place and mounted with mount -t erofs -o fsid=m reads v1 (small files, first chunks)"

ipu_publish v2
assert_eq "$(meta_size /tmp/v1.model)" "$(meta_size /tmp/v2.model)" "v2's metadata blob size (v1's)"
assert_ne "$(bc_model_blob m meta)" "$(sed -n 's/^meta *= *//p' /tmp/v1.model)" "v2's metadata digest"
ipu_check_but /mnt/m /tmp/want-v1 $F "the v1 mount after v2 was published"
pass "the v1 mount keeps reading v1 after v2 is published in place (every file but $F read whole)"

# The operator reuses v1's directory: $F is overwritten in place with v2's bytes.
ipu_overwrite_v1 /mnt/m
pass "v1's $F overwritten on the origin under the v1 mount: $IPU_EIO uncached chunk(s) EIO, those cached before read v1's bytes, never the new ones; logged once"
umount /mnt/m || fail "umount v1"
bc_wait_closed 30

mount -t erofs -o fsid=m none /mnt/m || fail "mount v2"
grep -q "model m was re-published" $BC_LOG || fail "the discarded metadata was not logged"
bc_check_part_sums ipu_part_sums $IPU/v2 /mnt/m "v2 mount"
ipu_publish v3
bc_kill9
bc_start || fail "daemon restart with v2 mounted"
grep -q "resumed the cache from the device holder" $BC_LOG || fail "the restart did not resume"
drop_caches
bc_check_tree /mnt/m /tmp/want-v2 "the v2 mount after v3 was published and a kill -9 + restart"
umount /mnt/m || fail "umount v2"
bc_wait_closed 30
pass "v2 mounted after the update reads v2, kept across the v3 update and a kill -9 + restart"

ctl mount m /models/m || fail "blobcachectl mount v3"
bc_check_tree /models/m /tmp/want-v3 "v3 mount (blobcachectl mount)"
ctl umount m || fail "blobcachectl umount"
bc_wait_closed 30
pass "v3 published in place with the daemon running, mounted with blobcachectl mount, reads v3"

# Another model, tuned, shares v3's model-00003: an identical copy in a directory of its own,
# published in place. Both mounted in one EROFS domain: one cache object serves both, opened for
# m, from m's path (a digest resolves to the first entry by name: m before tuned). m is then
# updated in place: its model-00003 rewritten and re-published (v4). tuned's mount must read its
# intact copy (the daemon reads an in-place blob from where the catalogue lists it now), and so
# must the v3 mount: the bytes it was published with still exist.
S=model-00003.safetensors
mkdir -p /mnt/tuned
ipu_publish_tuned
mount -t erofs -o fsid=m,domain_id=shared none /mnt/m || fail "mount v3 in the domain"
opens=$(bc_stat opens)
mount -t erofs -o fsid=tuned,domain_id=shared none /mnt/tuned || fail "mount tuned in the domain"
# tuned's metadata only: its model-00003 is the object m's mount opened
assert_eq $((opens + 1)) "$(bc_stat opens)" "OPENs for the mount of tuned"
d3=$(awk '/^\[blob /{ d = $2 } /^path = share\/m\/v3\/model-00003.safetensors$/{ print d }' /tmp/v3.model | cut -c1-12)
grep "OPEN object .* blob $d3 " $BC_LOG | tail -n 1 | grep -q ": model m blob" ||
	fail "the shared object of $S ($d3) was not opened for m"
opens=$(bc_stat opens)
ipu_publish_v4
bc_check_tree /mnt/tuned /tmp/want-tuned "tuned, sharing m's object, after m's copy was rewritten"
assert_eq "$opens" "$(bc_stat opens)" "OPENs while tuned was read (the object is shared)"
bc_check_tree /mnt/m /tmp/want-v3 "the v3 mount after m's $S was rewritten (tuned's copy intact)"
umount /mnt/tuned || fail "umount tuned"
umount /mnt/m || fail "umount v3 (domain)"
bc_wait_closed 30
pass "a file shared in one domain with another model, rewritten in place under m: both mounts read their published bytes from tuned's intact copy"

# The operator retires tuned and removes the old version directories and the snapshot blob only
# they used.
ipu_retire_old
drop_caches
mount -t erofs -o fsid=m none /mnt/m || fail "mount v4 after the restart"
bc_check_tree /mnt/m /tmp/want-v4 "v4 mount after the old versions were removed and a restart"
umount /mnt/m
bc_stop
pass "with the old version directories removed and a restart, the next mount reads the newest version"
