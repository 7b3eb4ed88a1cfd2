# Retiring a model (issue 9, part 4): blobcachectl unpublish removes its entry; the node drops
# it from its catalogue, keeps serving a mount made before (its files are in use), and removes
# its cache files once it is unmounted, and only its files; blobcachectl gc then removes from
# the origin exactly the blobs no entry references, after a dry run that lists them.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CACHE=/var/cache/blobcached/blobcached/cache

make_model /srv/src/a 8 10
make_model /srv/src/b 8 10
bc_publish a /srv/src/a || fail "publish a"
bc_publish b /srv/src/b || fail "publish b"
a_meta=$(bc_model_blob a meta)
a_data=$(bc_model_blob a data)
b_data=$(bc_model_blob b data)
tree_sums /srv/src/a >/tmp/src-a
tree_sums /srv/src/b >/tmp/src-b
bc_config
sed -i 's/^\[cache\]$/[cache]\ncull_interval = 1s/' "$BC_CONF"
bc_start || fail "daemon start"

mkdir -p /mnt/a /mnt/b
mount -t erofs -o fsid=a none /mnt/a || fail "mount a"
mount -t erofs -o fsid=b none /mnt/b || fail "mount b"
tree_sums /mnt/a >/tmp/got-a
tree_sums /mnt/b >/tmp/got-b
cmp /tmp/src-a /tmp/got-a || fail "a differs"
cmp /tmp/src-b /tmp/got-b || fail "b differs"
umount /mnt/b

# cache_file VOLUME KEY: the cache file's path, if present.
cache_file() { find "$CACHE/Ierofs,$1" -name "D$2" 2>/dev/null | head -n 1; }
[ -n "$(cache_file b b)" ] || wait_for '[ -n "$(cache_file b b)" ]' 30 0.5

blobcachectl unpublish --catalogue /srv/catalogue a /srv/origin >/tmp/out || fail "unpublish: $(cat /tmp/out)"
[ ! -e /srv/origin/models/a.model ] || fail "the origin's entry of a is still there"
[ ! -e /srv/catalogue/a.model ] || fail "the catalogue entry of a is still there"
wait_for '! blobcachectl --run-dir /run/blobcached status | grep -q "name=a "' 10 0.5

# The mount made before keeps reading (its objects are open, its files in use), for 3 s of
# cull timers.
sleep 3
drop_caches
tree_sums /mnt/a >/tmp/got-a2
cmp /tmp/src-a /tmp/got-a2 || fail "the mount of a made before unpublish stopped reading right"
umount /mnt/a

# Once unmounted (the kernel lets go about 10 s later), a's files go; b's stay.
t0=$(now)
wait_for '[ -z "$(cache_file a "$a_data")" ] && [ -z "$(cache_file a a)" ]' 60 0.5
note "a's cache files removed $(elapsed_since "$t0") s after its unmount"
[ -n "$(cache_file b b)" ] || fail "b's metadata cache file was removed"
[ -n "$(cache_file b "$b_data")" ] || fail "b's data cache file was removed"
grep -q "removed cache file erofs,a/D$a_data: no model of the catalogue uses it" $BC_LOG ||
	fail "no log line for a's data file"
wget -q -O - http://127.0.0.1:9464/metrics | grep -q 'blobcached_cache_removed_files_total{reason="retired"} 2$' ||
	fail "retired removals not counted: $(wget -q -O - http://127.0.0.1:9464/metrics | grep removed_files)"

# gc on the origin: the dry run lists a's two blobs; gc removes exactly them.
blobcachectl gc --dry-run --grace 0 /srv/origin >/tmp/gc.out || fail "gc --dry-run: $(cat /tmp/gc.out)"
sed -n 's|^would remove .*/\([0-9a-f]*\) (.*|\1|p' /tmp/gc.out | sort >/tmp/would
printf '%s\n%s\n' "$a_meta" "$a_data" | sort >/tmp/expected
cmp /tmp/expected /tmp/would || fail "gc --dry-run would remove: $(cat /tmp/would)"
[ -e "/srv/origin/blobs/sha256/$a_data" ] || fail "the dry run removed a blob"
blobcachectl gc --grace 0 /srv/origin >/tmp/gc.out || fail "gc: $(cat /tmp/gc.out)"
cat /tmp/gc.out
[ ! -e "/srv/origin/blobs/sha256/$a_meta" ] && [ ! -e "/srv/origin/blobs/sha256/$a_data" ] ||
	fail "gc left a's blobs"
assert_eq 2 "$(ls /srv/origin/blobs/sha256 | wc -l)" "blobs left on the origin (b's two)"

# b is whole: mounted again, it reads right.
mount -t erofs -o fsid=b none /mnt/b || fail "mount b after gc"
tree_sums /mnt/b >/tmp/got-b2
cmp /tmp/src-b /tmp/got-b2 || fail "b differs after gc"
umount /mnt/b
bc_stop
pass "unpublish + gc: a's cache files went once it was unmounted, its blobs with gc; b untouched"
