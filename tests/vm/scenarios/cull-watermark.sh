# Filling the cache volume past high_watermark makes the daemon cull the least recently used
# cache files down to low_watermark: a pinned model and a mounted model (the oldest of all) are
# kept, the mounted one keeps reading correctly, and the most recent models stay.
# vm: --cache-size 256M
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CTL="blobcachectl --run-dir /run/blobcached"

for m in live p m1 m2 m3 m4; do
	make_model /srv/src/$m 16 10
	bc_publish $m /srv/src/$m >/dev/null || fail "publish $m"
done
# ~230 MiB of ext4: high 40% ~ 92 MiB, low 30% ~ 69 MiB; six models of 16 MiB.
bc_config
sed -i 's/^\[cache\]$/[cache]\nhigh_watermark = 40%\nlow_watermark = 30%\ncull_interval = 500ms/' "$BC_CONF"
printf '[model p]\npin = yes\n' >>"$BC_CONF"
bc_start || fail "daemon start"

# The mounted model is used first: the least recently used of all, but in use.
mkdir -p /mnt/live
mount -t erofs -o fsid=live none /mnt/live || fail "mount live"
tree_sums /srv/src/live >/tmp/src.live
tree_sums /mnt/live >/tmp/got.live
cmp /tmp/src.live /tmp/got.live || fail "live differs"
sleep 1.1
bc_warm p || fail "warm p"
for m in m1 m2 m3; do
	sleep 1.1
	bc_warm $m || fail "warm $m"
done
before=$(bc_volume_pct)
note "volume ${before}% used before the last model (high 40%, low 30%)"
sleep 1.1
bc_warm m4 || fail "warm m4"
wait_for '[ "$(bc_cache_field culled_files)" -gt 0 ]' 20 0.5
sleep 2 # let the cull finish its pass
after=$(bc_volume_pct)
culled=$(bc_cache_field culled_files)
$CTL status
# The daemon's own figure right after its pass (the warm of m4 goes on filling afterwards).
at_cull=$(sed -n 's/.*culled .* now \([0-9]*\)% used$/\1/p' "$BC_LOG" | head -n 1)
echo "figures: volume ${before}% used before, ${at_cull}% right after the cull, ${after}% at the end; $culled cache file(s) culled"
[ -n "$at_cull" ] && [ "$at_cull" -le 30 ] || fail "the cull stopped at ${at_cull}%, above the low watermark"
[ "$after" -le 40 ] || fail "volume ${after}% used, above the high watermark"

assert_eq 0 "$(bc_model_field m1 cached_bytes)" "cached bytes of m1 (least recently used)"
# m2 is next: its data blob goes (its metadata file, small files inline, may stay if enough was
# freed): what is left of m2 is at most its metadata blob, page-aligned.
m2_meta=$(bc_blob_sizes /srv/catalogue/m2.model | awk -v d="$(bc_model_blob m2 meta)" '$1 == d { print $2 }')
[ -n "$m2_meta" ] || fail "no metadata blob size in m2's entry"
[ "$(bc_model_field m2 cached_bytes)" -le $(((m2_meta + 4095) / 4096 * 4096)) ] ||
	fail "m2's data blob (next least recently used) not culled (metadata blob $m2_meta bytes)"
for m in live p m3 m4; do
	assert_eq "$(bc_model_field $m size_bytes)" "$(bc_model_field $m cached_bytes)" \
		"cached bytes of $m (mounted, pinned or recent)"
done
[ "$culled" -ge 3 ] || fail "$culled files culled, expected m1's two and m2's data"
pass "least recently used unpinned models culled down to the low watermark"

# The mounted model reads correctly from the cache (page cache dropped), with no origin fetch.
origin=$(bc_stat origin_bytes)
drop_caches
tree_sums /mnt/live >/tmp/got2.live
cmp /tmp/src.live /tmp/got2.live || fail "live differs after the cull"
assert_eq "$origin" "$(bc_stat origin_bytes)" "origin bytes re-reading the mounted model"
assert_eq 0 "$(bc_stat reads_failed)" "failed READs"
wget -q -O - http://127.0.0.1:9464/metrics | grep -E 'cache_removed_files_total|model_cached_bytes' ||
	fail "metrics"
umount /mnt/live
bc_stop
pass "a mounted model keeps reading correctly while the cache is culled"
