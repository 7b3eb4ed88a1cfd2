# Origin faults give the reader EIO, never wrong bytes and never a hang:
#  - data blob missing on the origin;
#  - data blob unreadable (a directory where the file should be);
#  - data blob hung (a FIFO: open() blocks like a dead NFS server): EIO by the deadline.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/m 4 5
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
blob=/srv/origin/blobs/sha256/$data
bc_config request_timeout=3s workers=2
bc_start || fail "daemon start"
mkdir -p /mnt/m

expect_eio() {
	what=$1
	mount -t erofs -o fsid=m none /mnt/m || fail "$what: mount"
	start=$(date +%s)
	if timeout 60 cat /mnt/m/model.safetensors >/dev/null 2>/tmp/err; then
		fail "$what: read succeeded"
	fi
	took=$(($(date +%s) - start))
	grep -q "Input/output error" /tmp/err || fail "$what: expected EIO, got: $(cat /tmp/err)"
	echo "$what: EIO after $took s"
	umount /mnt/m || fail "$what: umount"
	LAST_TOOK=$took
}

mv "$blob" "$blob.away"
expect_eio "missing blob"
[ "$LAST_TOOK" -le 2 ] || fail "missing blob took $LAST_TOOK s"

mkdir "$blob"
expect_eio "unreadable blob"
rmdir "$blob"

mkfifo "$blob"
expect_eio "hung origin"
# Deadline 3 s. The kernel retries a failed READ; the retries of a chunk the origin still sits on
# fail at once, so the reader waits one deadline, not one per retry (bound: twice the deadline).
[ "$LAST_TOOK" -ge 2 ] && [ "$LAST_TOOK" -le 6 ] || fail "hung origin: EIO after $LAST_TOOK s, deadline 3 s"
timed_out=$(bc_stat fill_requests_timed_out)
[ "$timed_out" -ge 1 ] || fail "no timed-out request counted"
# Release the workers stuck in open() of the FIFO (and any that open it meanwhile) until the
# good blob replaces it.
(while [ -p "$blob" ]; do : >"$blob"; done) &
sleep 1

# Back to normal: the same model reads correctly (nothing wrong was cached).
mv "$blob.away" "$blob" # atomically replaces the FIFO
mount -t erofs -o fsid=m none /mnt/m || fail "mount after repair"
tree_sums /srv/src/m >/tmp/src
tree_sums /mnt/m >/tmp/mnt
cmp /tmp/src /tmp/mnt || fail "content after repair differs"
umount /mnt/m
grep -q "hung task\|blocked for more than" /tmp/dmesg.txt 2>/dev/null && fail "hung task in dmesg"
dmesg | grep -q "blocked for more than" && fail "hung task reported by the kernel"
bc_stop
pass "origin missing, unreadable and hung: EIO, then recovery"
