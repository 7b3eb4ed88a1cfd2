# Publish in place (issue 9) with the ublk front end on Debian's stock modules: the model of
# publish-in-place (several large files, one through a symlink, 150 small ones) published
# without copying, mounted with blobcachectl mount over one /dev/ublkbN per blob (the metadata
# blob and each in-place file); every file reads the source's sha256; a large file changed on
# the origin after publish gives EIO for the changed chunk only, logged once with its path.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
ublk_devs() { ls /dev/ublkb* /dev/ublkc* 2>/dev/null | wc -l; }

modprobe ublk_drv || fail "modprobe ublk_drv"
M=/srv/origin/share/llama
ip_make_model "$M"
ip_publish llama "$M"
echo "FIGURE in-place publish: ${IP_SECONDS} s, $IP_WRITTEN bytes written to the origin for a model of $IP_MODEL_BYTES bytes"
F=model-00003-of-00003.safetensors
ip_change_chunk "$M" $F

bc_config workers=4 frontend=ublk
bc_start || fail "daemon start (frontend = ublk)"
mkdir -p /models/llama
ctl mount llama /models/llama || fail "blobcachectl mount llama"
assert_eq erofs "$(fs_type /models/llama)" "filesystem at /models/llama"
assert_eq 5 "$(ls /dev/ublkb* | wc -l)" "block devices (the metadata blob + 4 in-place blobs)"
ip_check_mount /models/llama $F
ctl umount llama || fail "blobcachectl umount llama"
wait_for '[ "$(ublk_devs)" = 0 ]' 20 || fail "ublk devices left after umount: $(ls /dev/ublk*)"
bc_stop
pass "publish --in-place, ublk: one device per in-place blob, every file byte-identical, changed chunk EIO"
