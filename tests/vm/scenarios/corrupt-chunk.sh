# Bit flips on the origin are caught by the per-chunk digests and never served or cached:
#  - a flipped byte in the data blob: reading the affected file gives EIO, every other file reads
#    correctly, the failure is counted and logged once, and a re-publish fixes it;
#  - a flipped byte in the metadata blob: the mount fails before the kernel parses it.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

mkdir -p /srv/src/m
dd if=/dev/urandom of=/srv/src/m/weights.bin bs=1048576 count=8 2>/dev/null
dd if=/dev/urandom of=/srv/src/m/other.bin bs=1048576 count=2 2>/dev/null
echo '{"ok": true}' >/srv/src/m/config.json
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
meta=$(bc_model_blob m meta)
blob=/srv/origin/blobs/sha256/$data
cp "$blob" /tmp/data.good

# Flip one byte 3 MiB + 12345 into the data blob (inside weights.bin's extent, which comes first
# or second in the blob; the test finds out which file is hit below).
flip() { # flip FILE OFFSET
	b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
flip "$blob" $((3 * 1048576 + 12345))
cmp -s "$blob" /tmp/data.good && fail "flip did not change the blob"

bc_start || fail "daemon start"
mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"
bad=0
for f in weights.bin other.bin config.json; do
	if sha256sum "/mnt/m/$f" >/tmp/sum 2>/tmp/err; then
		want=$(sha256sum "/srv/src/m/$f" | cut -d' ' -f1)
		got=$(cut -d' ' -f1 /tmp/sum)
		assert_eq "$want" "$got" "sha256 of $f (a wrong byte served?)"
	else
		grep -q "Input/output error" /tmp/err || fail "$f: expected EIO, got $(cat /tmp/err)"
		echo "$f: EIO (its chunk failed verification)"
		bad=$((bad + 1))
	fi
done
assert_eq 1 "$bad" "files failing with EIO"
# Read again: the bad chunk was not cached, so it fails again rather than returning garbage.
drop_caches
cat /mnt/m/weights.bin /mnt/m/other.bin >/dev/null 2>&1 && fail "second read of the corrupt chunk succeeded"
failures=$(bc_stat verify_failures)
[ "$failures" -ge 1 ] || fail "verify_failures=$failures"
assert_eq 1 "$(grep -c 'does not match its digest' $BC_LOG)" "log lines about the mismatch (once per blob)"
umount /mnt/m

# Re-publishing the model repairs the origin's copy; the same mount now reads correctly.
bc_publish m /srv/src/m || fail "re-publish"
cmp "$blob" /tmp/data.good || fail "re-publish did not repair the corrupt blob"
mount -t erofs -o fsid=m none /mnt/m || fail "mount after re-publish"
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after re-publish differs"
umount /mnt/m
bc_stop

# A damaged local copy of the metadata blob (state_dir/meta) is detected, dropped and fetched
# again from the origin: the mount works with the right bytes.
rm -rf /var/cache/blobcached/blobcached/*
local=/var/lib/blobcached/meta/$meta
[ -f "$local" ] || fail "no verified local copy of the metadata blob at $local"
flip "$local" 1100
bc_start || fail "daemon restart"
mount -t erofs -o fsid=m none /mnt/m || fail "mount with a damaged local metadata copy"
grep -q "local copy $local is damaged: removed" $BC_LOG || fail "damaged local copy not reported"
tree_sums /mnt/m >/tmp/mnt2
cmp /tmp/src /tmp/mnt2 || fail "content after refetching the metadata blob differs"
umount /mnt/m
bc_stop

# A corrupt metadata blob on the origin (and no local copy): the mount fails cleanly, the kernel
# never parses it.
rm -rf /var/cache/blobcached/blobcached/* /var/lib/blobcached/meta/*
flip /srv/origin/blobs/sha256/$meta 1100
bc_start || fail "daemon restart"
if mount -t erofs -o fsid=m none /mnt/m 2>/tmp/err; then
	umount /mnt/m
	fail "mount with a corrupt metadata blob succeeded"
fi
echo "corrupt metadata blob: mount refused: $(cat /tmp/err)"
grep -q "could not be fetched and verified" $BC_LOG || fail "no log line for the metadata blob"
dmesg | grep -qi "erofs.*\(corrupt\|invalid\|bad\)" && fail "the kernel parsed the corrupt metadata"
bc_stop
pass "corrupt chunks and metadata caught, never served"
