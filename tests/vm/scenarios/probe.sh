# The probe endpoint: /livez, /readyz and /metrics on loopback; GET only; readiness turns false
# while the origin fails and true again once it serves; metrics count what happened.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464

get() { wget -q -O - "$P$1" 2>/dev/null; }
status() { wget -S -O /dev/null "$P$1" 2>&1 | sed -n 's/^ *HTTP\/1.[01] \([0-9]*\).*/\1/p' | tail -n 1; }

make_model /srv/src/m 8 5
bc_publish m /srv/src/m || fail "publish"
# No read-ahead: the range read while the origin is away must still be uncached then.
bc_config request_timeout=3s readahead=0
bc_start || fail "daemon start"
grep -q "probe endpoint on http://127.0.0.1:9464" $BC_LOG || fail "probe endpoint not started"

assert_eq "ok" "$(get /livez)" "/livez"
assert_eq 200 "$(status /readyz)" "/readyz at start"
assert_eq 404 "$(status /nope)" "unknown path"
post=$(wget -S -O /dev/null --post-data=x "$P/livez" 2>&1 | sed -n 's/^ *HTTP\/1.[01] \([0-9]*\).*/\1/p' | tail -n 1)
assert_eq 405 "$post" "POST"

mkdir -p /mnt/m
mount -t erofs -o fsid=m none /mnt/m || fail "mount"
cat /mnt/m/config.json >/dev/null || fail "read"
get /metrics >/tmp/metrics
grep -q "^blobcached_reads_total [1-9]" /tmp/metrics || fail "reads not counted: $(grep reads_total /tmp/metrics)"
grep -q "^blobcached_fetch_seconds_count [1-9]" /tmp/metrics || fail "no fetch latency samples"
grep -q '^# TYPE blobcached_fetch_seconds histogram' /tmp/metrics || fail "no histogram type"
# Hashing a fetched chunk costs the pool thread CPU time: counted (in µs: a whole 1 MiB chunk
# takes hundreds of them even with SHA-NI), in /metrics and in the status file.
dd if=/mnt/m/model.safetensors of=/dev/null bs=1M count=1 2>/dev/null || fail "read chunk 0"
get /metrics >/tmp/metrics
awk '$1 == "blobcached_verify_cpu_seconds_total" { found = 1; ok = $2 > 0 } END { exit !(found && ok) }' \
	/tmp/metrics || fail "hashing CPU not counted: $(grep verify_cpu /tmp/metrics)"
[ "$(bc_stat verify_cpu_us)" -gt 0 ] || fail "verify_cpu_us not in the status: $(grep verify $BC_STATUS)"

# The origin loses its blobs: a read of an uncached range fails, and readiness says why.
mv /srv/origin/blobs /srv/origin/blobs.away
dd if=/mnt/m/model.safetensors of=/dev/null bs=1M skip=6 count=1 2>/dev/null &&
	fail "read with the origin gone succeeded"
assert_eq 503 "$(status /readyz)" "/readyz while the origin fails"
wget -q -O - "$P/readyz" 2>/dev/null
wget -O - "$P/readyz" 2>&1 | grep -q "origin failing" || true
assert_eq "ok" "$(get /livez)" "/livez while the origin fails (the loop turns)"
grep -q 'blobcached_errors_total{kind="origin"} [1-9]' <<EOM || fail "origin errors not counted"
$(get /metrics)
EOM

# The origin is back: the next good fetch makes the daemon ready again.
mv /srv/origin/blobs.away /srv/origin/blobs
dd if=/mnt/m/model.safetensors of=/dev/null bs=1M skip=6 count=1 2>/dev/null || fail "read after the origin came back"
assert_eq 200 "$(status /readyz)" "/readyz after the origin came back"
umount /mnt/m
bc_stop
pass "probe endpoint: livez, readyz following the origin, metrics, GET only"
