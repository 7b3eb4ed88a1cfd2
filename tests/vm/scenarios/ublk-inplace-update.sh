# ublk: a model published in place three times under its name (inplace-update with the ublk
# front end on Debian's stock modules, blobcachectl mount only). Each mount made after an update
# reads exactly its version (sha256 of every file). A mount of v1 kept across the update keeps
# reading v1; when one of v1's files is then overwritten in place on the origin, its chunks not
# cached before fail with EIO (never the new bytes, never a mix), logged once with the path and
# "re-publish". A mount of v2 kept across the v3 update and a kill -9 + restart (its devices
# served again) reads v2. With the old version directories removed and a restart, v3 mounts.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
no_devices() { wait_for '[ -z "$(ls /dev/ublkb* /dev/ublkc* 2>/dev/null)" ]' 30 || fail "devices left after umount"; }
F=model-00002.safetensors

modprobe ublk_drv || fail "modprobe ublk_drv"
bc_update_setup in-place frontend=ublk
mkdir -p /models/m
ctl mount m /models/m || fail "mount v1"
# the metadata blob and one device per in-place file
assert_eq 4 "$(ls /dev/ublkb* | wc -l)" "block devices of v1"
bc_check_part_sums ipu_part_sums $IPU/v1 /models/m "v1 mount"
pass "v1 published in place and mounted through ublk reads v1 (small files, first chunks)"

ipu_publish v2
assert_ne "$(bc_model_blob m meta)" "$(sed -n 's/^meta *= *//p' /tmp/v1.model)" "v2's metadata digest"
drop_caches
ipu_check_but /models/m /tmp/want-v1 $F "the v1 mount after v2 was published"
pass "the v1 mount keeps reading v1 after v2 is published in place (every file but $F read whole)"

# The operator reuses v1's directory: $F is overwritten in place with v2's bytes.
ipu_overwrite_v1 /models/m
pass "v1's $F overwritten on the origin under the v1 mount: $IPU_EIO uncached chunk(s) EIO, those cached before read v1's bytes, never the new ones; logged once"
ctl umount m || fail "umount v1"
no_devices

ctl mount m /models/m || fail "mount v2"
bc_check_part_sums ipu_part_sums $IPU/v2 /models/m "v2 mount"
v2devs=$(ls /dev/ublkb* | tr '\n' ' ')
ipu_publish v3
bc_kill9
bc_start || fail "daemon restart with v2 mounted"
grep -q "block devices of the earlier daemon served again" $BC_LOG || fail "the restart did not serve v2's devices again"
assert_eq "$v2devs" "$(ls /dev/ublkb* | tr '\n' ' ')" "the devices after the restart"
drop_caches
bc_check_tree /models/m /tmp/want-v2 "the v2 mount after v3 was published and a kill -9 + restart"
ctl umount m || fail "umount v2"
no_devices
pass "v2 mounted after the update reads v2, kept across the v3 update and a kill -9 + restart"

ctl mount m /models/m || fail "mount v3"
assert_eq 5 "$(ls /dev/ublkb* | wc -l)" "block devices of v3"
bc_check_tree /models/m /tmp/want-v3 "v3 mount"
ctl umount m || fail "umount v3"
no_devices
pass "v3 published in place with the daemon running and mounted reads v3"

# Another model shares v3's model-00003: an identical copy in a directory of its own, published
# in place. Both mounted: one cache file and fill sink serve both (blobs are shared by digest),
# opened for m (from m's path). m is then updated in place: its model-00003 rewritten and
# re-published (v4). The other model's mount must read its intact copy (the daemon reads an
# in-place blob from where the catalogue has it now), and the v3 mount too.
S=model-00003.safetensors
mkdir -p /models/tuned
ipu_publish_tuned
ctl evict m >/dev/null || fail "evict m" # read in full above: its copy of $S must be fetched
ctl mount m /models/m || fail "mount v3 again"
ctl mount tuned /models/tuned || fail "mount tuned"
ipu_publish_v4
drop_caches
bc_check_tree /models/tuned /tmp/want-tuned "tuned, sharing m's cache file, after m's copy was rewritten"
bc_check_tree /models/m /tmp/want-v3 "the v3 mount after m's $S was rewritten (tuned's copy intact)"
ctl umount tuned || fail "umount tuned"
ctl umount m || fail "umount v3"
no_devices
pass "a file shared with another model, rewritten in place under m: both mounts read their published bytes from tuned's intact copy"

# The operator retires tuned and removes the old version directories and the snapshot blob only
# they used.
ipu_retire_old
ctl mount m /models/m || fail "mount v4 after the restart"
drop_caches
bc_check_tree /models/m /tmp/want-v4 "v4 mount after the old versions were removed and a restart"
ctl umount m
no_devices
bc_stop
pass "ublk: with the old version directories removed and a restart, the next mount reads the newest version"
