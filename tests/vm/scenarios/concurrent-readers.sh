# Many readers at once cost the origin one copy of the model:
#  - 8 concurrent readers of one mounted model: origin bytes <= 1.02 x the data blob;
#  - two models sharing a data blob (same content published under two names), mounted in one
#    EROFS domain (domain_id=) and read at the same time: the kernel opens the shared blob once,
#    so it is fetched once and cached once; both read correctly.
# File origin here (counted by the daemon); tests/vm/scenarios/http-origin-dedupe.sh counts the
# same thing from the HTTP server's own access log.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

make_model /srv/src/a 40 20
bc_publish a /srv/src/a || fail "publish a"
bc_publish b /srv/src/a || fail "publish b (same content)"
data_a=$(bc_model_blob a data)
data_b=$(bc_model_blob b data)
assert_eq "$data_a" "$data_b" "data blob digest shared by a and b"
size=$(wc -c </srv/origin/blobs/sha256/$data_a)
want=$(sha256sum /srv/src/a/model.safetensors | cut -d' ' -f1)

bc_config workers=4
bc_start || fail "daemon start"
mkdir -p /mnt/a /mnt/b
mount -t erofs -o fsid=a none /mnt/a || fail "mount a"

i=0
pids=
while [ $i -lt 8 ]; do
	timeout 300 sha256sum /mnt/a/model.safetensors >/tmp/r$i 2>&1 &
	pids="$pids $!"
	i=$((i + 1))
done
# Wait for the readers only: a bare `wait` would wait for the daemon too.
for p in $pids; do wait $p; done
i=0
while [ $i -lt 8 ]; do
	assert_eq "$want" "$(cut -d' ' -f1 /tmp/r$i)" "reader $i checksum"
	i=$((i + 1))
done
origin=$(bc_stat origin_bytes)
echo "8 readers: origin bytes $origin for a data blob of $size bytes (deduped: $(bc_stat chunks_deduped), prefetched: $(bc_stat chunks_prefetched))"
[ $((origin * 100)) -le $((size * 102 + 100 * 65536)) ] || fail "origin bytes $origin > 1.02 x $size"

# Now models a and b (same data blob) mounted in one domain: blobs of the same name are shared
# by every image of the domain, so reading both at once fetches each shared chunk once.
umount /mnt/a
bc_stop
rm -rf /var/cache/blobcached/blobcached/*
bc_start || fail "daemon restart"
mount -t erofs -o fsid=a,domain_id=models none /mnt/a || fail "mount a in domain"
mount -t erofs -o fsid=b,domain_id=models none /mnt/b || fail "mount b in domain"
tree_sums /mnt/a >/tmp/a.sums &
pa=$!
tree_sums /mnt/b >/tmp/b.sums
wait $pa
tree_sums /srv/src/a >/tmp/src.sums
cmp /tmp/src.sums /tmp/a.sums || fail "a differs"
cmp /tmp/src.sums /tmp/b.sums || fail "b differs"
origin=$(bc_stat origin_bytes)
echo "two models sharing a blob: origin bytes $origin for a data blob of $size bytes"
# Two metadata blobs plus one copy of the data blob (chunks padded to whole pages).
[ $((origin * 100)) -le $((size * 102 + 100 * 65536)) ] || fail "shared blob fetched more than once ($origin bytes)"
umount /mnt/a
umount /mnt/b
bc_stop
pass "one origin fetch per chunk for concurrent readers and shared blobs"
