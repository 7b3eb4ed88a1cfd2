# blobcachectl warm fills a whole model ahead of its use: afterwards a mount reads it in full
# with no READ reaching the daemon and nothing fetched from the origin. status reports sizes,
# cached bytes, pins and mounts that match; evict, pin and unpin behave; unknown models and
# evicting a mounted or pinned model are refused with the cause and the fix.
# vm: --cache-size 512M
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CTL="blobcachectl --run-dir /run/blobcached"

make_model /srv/src/a 24 30
make_model /srv/src/b 6 5
make_model /srv/src/big 192 5
bc_publish a /srv/src/a >/dev/null || fail "publish a"
bc_publish b /srv/src/b >/dev/null || fail "publish b"
bc_publish big /srv/src/big >/dev/null || fail "publish big"
bc_start || fail "daemon start"

# Unknown models: the error names the cause and how to see the catalogue.
for verb in warm evict pin unpin; do
	if out=$($CTL $verb nosuch 2>&1); then
		fail "$verb of an unknown model succeeded"
	fi
	assert_contains "no model 'nosuch'" "$out" "$verb nosuch"
	assert_contains "blobcachectl status" "$out" "$verb nosuch"
done
pass "unknown models refused with the fix"

$CTL status || fail "status"
size=$(bc_model_field a size_bytes)
assert_eq 0 "$(bc_model_field a cached_bytes)" "cached bytes of a before warm"
[ "$size" -gt $((24 << 20)) ] || fail "size of a: $size"

reads0=$(bc_stat reads)
origin0=$(bc_stat origin_bytes)
note "warm a ($size bytes)"
$CTL warm a >/tmp/warm.out 2>&1 || { cat /tmp/warm.out; fail "warm a"; }
cat /tmp/warm.out
grep -q '^progress ' /tmp/warm.out || fail "no progress lines when not on a terminal"
grep -q '^warmed a: ' /tmp/warm.out || fail "no summary line"
assert_eq "$size" "$(bc_model_field a cached_bytes)" "cached bytes of a after warm"
assert_eq "100.0" "$(bc_model_field a cached_percent)" "cached % of a after warm"
assert_eq 0 "$(bc_model_field b cached_bytes)" "cached bytes of b (not warmed)"
origin1=$(bc_stat origin_bytes)
reads1=$(bc_stat reads)
echo "warm: $((origin1 - origin0)) bytes from the origin, $((reads1 - reads0)) READs (mount)"
pass "warm filled 100% of a"

# Mount and read everything: the kernel finds every range cached.
mkdir -p /mnt/a /mnt/b
# In the daemon's domain ([cache] domain), where warm filled the files.
mount -t erofs -o fsid=a,domain_id=blobcache none /mnt/a || fail "mount a"
tree_sums /srv/src/a >/tmp/src.a
tree_sums /mnt/a >/tmp/got.a
cmp /tmp/src.a /tmp/got.a || fail "content of a differs"
assert_eq "$reads1" "$(bc_stat reads)" "READs while reading the warmed model"
assert_eq "$origin1" "$(bc_stat origin_bytes)" "origin bytes while reading the warmed model"
pass "warmed model read with 0 READs and 0 origin bytes"

assert_eq 1 "$(bc_model_field a mounts)" "mounts of a"
assert_eq 0 "$(bc_model_field b mounts)" "mounts of b"
out=$($CTL evict a 2>&1) && fail "evict of a mounted model succeeded"
assert_contains "mounted at /mnt/a" "$out" "evict a while mounted"
assert_contains "unmount it first" "$out" "evict a while mounted"
pass "evict refused while mounted"

# Warm through an existing mount: b is mounted, read partly, then warmed.
mount -t erofs -o fsid=b,domain_id=blobcache none /mnt/b || fail "mount b"
head -c 4096 /mnt/b/model.safetensors >/dev/null
$CTL warm b >/tmp/warmb.out 2>&1 || { cat /tmp/warmb.out; fail "warm b"; }
grep -q 'using its mount' /tmp/warmb.out || fail "warm b did not use the existing mount"
assert_eq "$(bc_model_field b size_bytes)" "$(bc_model_field b cached_bytes)" "b after warm"
umount /mnt/b

umount /mnt/a
$CTL pin a || fail "pin a"
assert_eq true "$(bc_model_field a pinned)" "a pinned"
assert_eq runtime "$(bc_model_field a pinned_by)" "a pinned by"
out=$($CTL evict a 2>&1) && fail "evict of a pinned model succeeded"
assert_contains "pinned" "$out" "evict a pinned"
assert_contains "unpin" "$out" "evict a pinned"
$CTL unpin a || fail "unpin a"
assert_eq false "$(bc_model_field a pinned)" "a unpinned"
pass "pin/unpin"

# Once the kernel has let go of the objects, evict removes a's files.
bc_wait_closed 60
$CTL evict a || fail "evict a"
assert_eq 0 "$(bc_model_field a cached_bytes)" "cached bytes of a after evict"
assert_eq "$(bc_model_field b size_bytes)" "$(bc_model_field b cached_bytes)" "b untouched"
# And the model still works: it is fetched again.
mount -t erofs -o fsid=a,domain_id=blobcache none /mnt/a || fail "mount a after evict"
tree_sums /mnt/a >/tmp/got2.a
cmp /tmp/src.a /tmp/got2.a || fail "content of a after evict differs"
umount /mnt/a
pass "evict removed a's files; a reads again from the origin"

# Ctrl-C cancels a warm: the CLI exits 130, the daemon stops filling and unmounts its private
# mount; what was filled stays.
$CTL warm big >/tmp/warmbig.out 2>&1 &
wpid=$!
# Interrupted once its first chunk is in: a warm of 192 MiB takes seconds even on an idle host.
wait_for '[ "$(bc_model_field big cached_bytes)" -gt 0 ]' 30 0.05
kill -INT $wpid
wait $wpid
assert_eq 130 "$?" "exit status of a cancelled warm"
wait_for '[ "$(bc_model_field big warming)" = false ]' 30 0.2
grep -q 'warm of model big cancelled' "$BC_LOG" || fail "the daemon did not log the cancel"
grep -q ' /run/blobcached/warm/big ' /proc/mounts && fail "private mount of big left behind"
cached=$(bc_model_field big cached_bytes)
echo "cancelled warm of big: $cached of $(bc_model_field big size_bytes) bytes cached"
[ "$cached" -lt "$(bc_model_field big size_bytes)" ] || fail "the warm was not cancelled"
pass "Ctrl-C cancels a warm cleanly"

# A daemon killed during a warm leaves its private mount; the next daemon detaches it, so the
# model can be mounted elsewhere.
bc_wait_closed 60
$CTL evict big >/dev/null 2>&1
$CTL warm big >/dev/null 2>&1 &
wpid=$!
wait_for '[ "$(bc_model_field big warming)" = true ]' 30 0.2
bc_kill9
wait $wpid
grep -q ' /run/blobcached/warm/big ' /proc/mounts || fail "no private mount left by the killed daemon"
bc_start || fail "restart after the kill during a warm"
grep -q ' /run/blobcached/warm/big ' /proc/mounts && fail "the private warm mount was not detached"
grep -q "detached /run/blobcached/warm/big, a warm mount left by a previous daemon" "$BC_LOG" ||
	fail "the detach was not logged"
mkdir -p /mnt/big
mount -t erofs -o fsid=big,domain_id=blobcache none /mnt/big || fail "mount big after the interrupted warm"
umount /mnt/big
pass "a warm mount left by a killed daemon is detached by the next one"

# The pin survives a restart (state_dir/usage).
$CTL pin b || fail "pin b"
bc_stop
bc_start || fail "restart"
assert_eq true "$(bc_model_field b pinned)" "b still pinned after a restart"
bc_stop
pass "warm, status, evict, pin and unpin behave"
