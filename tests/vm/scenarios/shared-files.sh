# Shared files are cached once (issue 9, part 3), on-demand front end: two models with files in
# common (a fine-tune holding its base's shards, one under another name) published with the
# default layout name those files' blobs alike, and the origin stores them once; mounted by the
# daemon (blobcachectl mount: the default domain) and read at the same time, they cost the
# origin the union of their blobs, the shared bytes once; the cache holds one file per shared
# blob, in the domain's volume. A plain mount that adds domain_id=blobcache reads from those
# files; one without it has a volume of its own and fetches again.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CACHE=/var/cache/blobcached/blobcached/cache
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

bc_make_shared
grep -q "data blobs  3 written, 2 already present" /tmp/publish-tune.out ||
	fail "tune's publish did not find base's two shards in the store"
bc_shared_figures
assert_eq "$union" "$(cat /srv/origin/blobs/sha256/* | wc -c)" "bytes stored on the origin (each blob once)"
note "blobs: base $sum_base bytes, tune $sum_tune bytes, $shared_bytes of them shared; union $union"

bc_config workers=4
bc_start || fail "daemon start"
mkdir -p /models/base /models/tune
ctl mount base /models/base || fail "blobcachectl mount base"
ctl mount tune /models/tune || fail "blobcachectl mount tune"
for m in base tune; do
	grep " /models/$m erofs " /proc/mounts | grep -q "fsid=$m,domain_id=blobcache" ||
		fail "$m not mounted in the default domain: $(grep " /models/$m " /proc/mounts)"
done

# Both models read at the same time: the shared shards through both mounts at once.
bc_read_both_and_compare /models/base /models/tune
bc_check_union_fetched on-demand

# cachefiles links a new cache file into its volume's directory once the kernel lets go of the
# object: unmount both, wait for the CLOSEs.
ctl umount tune || fail "umount tune"
ctl umount base || fail "umount base"
bc_wait_closed 60 || fail "objects still open 60 s after both unmounts"
# One cache file per shared blob, in the domain's volume; a metadata file per model there.
for d in $shared; do
	assert_eq 1 "$(find $CACHE -name "D$d" | wc -l)" "cache files of shared blob ${d%${d#????????????}}"
	find "$CACHE/Ierofs,blobcache" -name "D$d" | grep -q . || fail "shared blob not in the domain's volume"
done
for m in base tune; do
	find "$CACHE/Ierofs,blobcache" -name "D$m" | grep -q . || fail "no metadata cache file of $m in the domain"
	[ -d "$CACHE/Ierofs,$m" ] && fail "a volume of $m's own was made"
done
assert_eq "$(sort -u /tmp/base.blobs /tmp/tune.blobs | wc -l)" "$(find $CACHE -type f -name 'D*' | wc -l)" \
	"cache files: one per distinct blob"
# status: tune's data blobs (read in full) count as cached, from the domain's files.
tune_meta=$(sed -n 's/^meta *= *//p' /srv/catalogue/tune.model)
tune_data=$(grep -v "^$tune_meta " /tmp/tune.blobs | bc_sum_sizes)
[ "$(bc_model_field tune cached_bytes)" -ge "$tune_data" ] ||
	fail "status: tune cached_bytes $(bc_model_field tune cached_bytes) < its data blobs $tune_data"
pass "one cache file per shared blob, in volume erofs,blobcache"

# A plain mount with domain_id= of the domain reads the same files: no origin byte.
mkdir -p /mnt/tune /mnt/base
before=$(bc_stat origin_bytes)
mount -t erofs -o fsid=tune,domain_id=blobcache none /mnt/tune || fail "plain mount of tune in the domain"
tree_sums /mnt/tune >/tmp/tune.mnt2
cmp /tmp/tune.src /tmp/tune.mnt2 || fail "tune (plain mount, domain) differs"
assert_eq "$before" "$(bc_stat origin_bytes)" "origin bytes of a plain mount with domain_id=blobcache"
umount /mnt/tune
# Without domain_id=, base is a volume of its own: its blobs are fetched again.
before=$(bc_stat origin_bytes)
mount -t erofs -o fsid=base none /mnt/base || fail "plain mount of base without a domain"
tree_sums /mnt/base >/tmp/base.mnt2
cmp /tmp/base.src /tmp/base.mnt2 || fail "base (plain mount, no domain) differs"
again=$(($(bc_stat origin_bytes) - before))
note "a plain mount of base without domain_id= fetched $again bytes again (base: $sum_base)"
[ "$again" -ge $((sum_base - 1048576)) ] || fail "a mount without the domain fetched only $again bytes"
[ -d "$CACHE/Ierofs,base" ] || fail "no volume of base's own for the plain mount"
umount /mnt/base
bc_stop
pass "a plain mount with domain_id=blobcache shares the cache; without it, it fetches again"
