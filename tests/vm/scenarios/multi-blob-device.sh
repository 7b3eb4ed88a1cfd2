# A multi-blob image (metadata blob + data blob) mounted with device= naming the data blob, and
# the same image mounted with no device= (the data blob's digest is the device-table tag).
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m 12 30
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
[ ${#data} -eq 64 ] || fail "no data blob digest in the catalogue"
bc_start || fail "daemon start"
mkdir -p /mnt/m
tree_sums /srv/src/m >/tmp/src

mount -t erofs -o fsid=m,device=$data none /mnt/m || fail "mount with device="
tree_sums /mnt/m >/tmp/dev
cmp /tmp/src /tmp/dev || fail "content via device= differs"
grep -q "blob ${data%${data#????????????}} (data" $BC_LOG || fail "data blob not opened by its digest"
umount /mnt/m

# A device= name that is not in the catalogue is refused (copen -ENOENT) without touching the
# origin. The kernel opens extra devices lazily: the mount itself may succeed, but reading file
# data must then fail; never wrong bytes.
before=$(bc_stat origin_bytes)
bogus=0000000000000000000000000000000000000000000000000000000000000000
if mount -t erofs -o fsid=m,device=$bogus none /mnt/m 2>/dev/null; then
	if timeout 60 cat /mnt/m/model.safetensors >/dev/null 2>/tmp/err; then
		fail "data read through an unknown device= succeeded"
	fi
	echo "unknown device=: mount succeeded, data read failed: $(cat /tmp/err)"
	umount /mnt/m || fail "umount after unknown device="
else
	echo "unknown device=: mount refused"
fi
grep -q "no model or blob named '$bogus'" $BC_LOG || fail "unknown device= not refused by the daemon"
assert_eq "$before" "$(bc_stat origin_bytes)" "origin bytes after refused device"

mount -t erofs -o fsid=m none /mnt/m || fail "mount by device-table tag"
tree_sums /mnt/m >/tmp/tag
cmp /tmp/src /tmp/tag || fail "content via tag differs"
umount /mnt/m
bc_stop
pass "multi-blob image via device= and via the device table"
