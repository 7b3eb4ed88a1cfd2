# Publish in place (issue 9): a model with several large files (one reached through a symlink,
# as in a Hugging Face snapshot) and many small ones, already beneath the origin root, is
# published without copying: the origin gets the metadata blob and the entry only, under 1% of
# the model's size. fsck.erofs finds the image clean and extracts every file byte-identical
# (given each in-place file padded to a block as its device); a real on-demand mount reads
# every file with the source's sha256. A large file changed on the origin after publish gives
# EIO for the changed chunk only, logged once with the file's path and "re-publish"; its other
# chunks and the other files read right. Then a second in-place model over the HTTP origin
# (nginx), a file name with a space in it: every file right, fetched by its URL.
# vm: --with-binary /usr/bin/fsck.erofs --with-binary /usr/sbin/nginx --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

M=/srv/origin/share/llama
ip_make_model "$M"
ip_publish llama "$M"
echo "FIGURE in-place publish: ${IP_SECONDS} s, $IP_WRITTEN bytes written to the origin for a model of $IP_MODEL_BYTES bytes"
assert_eq 1 "$(ls /srv/origin/blobs/sha256 | wc -l)" "blobs stored (the metadata blob only)"
grep -q "^path = share/llama/model-00001-of-00003.safetensors$" /srv/catalogue/llama.model ||
	fail "no in-place blob for model-00001"
grep -q "^path = hf/blobs/3f2a$" /srv/catalogue/llama.model || fail "the symlinked file is not in place"
meta=$(bc_model_blob llama meta)

# fsck.erofs: each device is an in-place file padded to a block, in the entry's blob order.
mkdir -p /tmp/pad
devs=""
n=0
for p in $(sed -n 's/^path = //p' /srv/catalogue/llama.model); do
	n=$((n + 1))
	cp "/srv/origin/$p" "/tmp/pad/$n"
	size=$(stat -c %s "/tmp/pad/$n")
	dd if=/dev/zero of="/tmp/pad/$n" bs=1 count=0 seek=$(((size + 4095) / 4096 * 4096)) 2>/dev/null
	devs="$devs --device=/tmp/pad/$n"
done
assert_eq 4 "$n" "in-place blobs"
# shellcheck disable=SC2086
fsck.erofs $devs --extract=/tmp/fsck-out --no-preserve "/srv/origin/blobs/sha256/$meta" ||
	fail "fsck.erofs on the metadata blob"
tree_sums /tmp/fsck-out >/tmp/fsck.sums
cmp /tmp/src.sums /tmp/fsck.sums || { diff /tmp/src.sums /tmp/fsck.sums | head; fail "fsck.erofs extracted other bytes"; }
echo "fsck.erofs: clean, $(wc -l </tmp/fsck.sums) files extracted byte-identical"
rm -rf /tmp/fsck-out /tmp/pad

F=model-00003-of-00003.safetensors
ip_change_chunk "$M" $F
bc_config workers=4
bc_start || fail "daemon start"
mkdir -p /mnt/llama
mount -t erofs -o fsid=llama none /mnt/llama || fail "mount llama by fsid"
ip_check_mount /mnt/llama $F
umount /mnt/llama || fail "umount"
bc_stop
pass "publish --in-place: $IP_WRITTEN origin bytes for $IP_MODEL_BYTES, fsck clean, mount byte-identical, changed chunk EIO"

# The HTTP origin: in-place blobs fetched by URL (percent-encoded), the Content-Range total
# checked against the file's size.
M2=/srv/origin/share/mistral
mkdir -p "$M2"
dd if=/dev/urandom of="$M2/a.safetensors" bs=3145745 count=1 2>/dev/null # 3 MiB + 17
dd if=/dev/urandom of="$M2/b c.safetensors" bs=1048576 count=2 2>/dev/null
echo '{"model_type": "mistral"}' >"$M2/config.json"
tree_sums "$M2" >/tmp/src2.sums
blobcachectl publish --in-place --catalogue /srv/catalogue mistral "$M2" /srv/origin >/dev/null ||
	fail "publish --in-place mistral"
bc_nginx_start || fail "nginx"
sed -i "s|^path = .*|url = http://127.0.0.1:8080|" "$BC_CONF"
bc_start || fail "daemon start (HTTP origin)"
mkdir -p /mnt/mistral
mount -t erofs -o fsid=mistral none /mnt/mistral || fail "mount mistral (HTTP origin)"
tree_sums /mnt/mistral >/tmp/mnt2.sums
cmp /tmp/src2.sums /tmp/mnt2.sums || { diff /tmp/src2.sums /tmp/mnt2.sums | head; fail "mistral reads other bytes over HTTP"; }
grep -q "GET /share/mistral/b%20c.safetensors HTTP/1.1 206" /tmp/nginx/access.log ||
	{ cat /tmp/nginx/access.log; fail "nginx did not serve the in-place file by its URL"; }
assert_eq 0 "$(bc_stat verify_failures)" "verify failures over HTTP"
umount /mnt/mistral
bc_stop
bc_nginx_stop
pass "publish --in-place over the HTTP origin: files fetched by URL, sha256 of every file right"
