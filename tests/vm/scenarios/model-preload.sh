# Model-level readiness and preload (issue 9, part 6): with [model NAME] preload = yes the
# daemon fills the model in the background as soon as it is in the catalogue (through its
# managed mount if it has one, else through a private mount that it removes afterwards);
# GET /models/NAME on the probe listener answers 503 with the cached fraction until the model is
# fully cached (and, if managed, mounted and answering), then 200; GET /models lists every model;
# an unknown name is 404. A re-published model is preloaded again. After the preload the model
# reads in full with no READ reaching the daemon and no byte from the origin.
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

# http PATH: the whole answer (status line, headers, body) of GET PATH; busybox wget drops the
# body of a 503.
http() { printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" | nc 127.0.0.1 9464 | tr -d '\r'; }
get() { http "$1" | sed '1,/^$/d'; }
status() { http "$1" | sed -n '1s/^HTTP\/1.[01] \([0-9]*\).*/\1/p'; }
# json_field PATH KEY: a value of the one-model object at PATH.
json_field() { get "$1" | sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" | tr -d '"'; }

make_model /srv/src/a 24 40
make_model /srv/src/b 16 20
make_model /srv/src/c 4 5
bc_publish a /srv/src/a || fail "publish a"
bc_publish b /srv/src/b || fail "publish b"
bc_publish c /srv/src/c || fail "publish c"
tree_sums /srv/src/a >/tmp/src-a
tree_sums /srv/src/b >/tmp/src-b

# A slow origin would make the 503 phase observable, but a preload of 40 MiB under TCG takes
# seconds already: the first answer is taken right after start.
bc_config request_timeout=20s
printf '[model a]\npreload = yes\n[model b]\nmount = /models/b\npreload = yes\n' >>"$BC_CONF"
bc_start || fail "daemon start"

first=$(status /models/a)
frac=$(json_field /models/a cached_fraction)
note "right after start: GET /models/a -> $first, cached_fraction $frac, preload $(json_field /models/a preload)"
assert_eq 404 "$(status /models/nope)" "GET /models/nope (unknown model)"
assert_eq 503 "$(status /models/c)" "GET /models/c (not preloaded, not cached)"
assert_eq "off" "$(json_field /models/c preload)" "preload state of c"
assert_eq "0.0000" "$(json_field /models/c cached_fraction)" "cached fraction of c"

t0=$(now)
wait_for '[ "$(status /models/a)" = 200 ]' 300 0.5 || fail "GET /models/a never turned 200: $(get /models/a)"
note "a preloaded and ready after $(elapsed_since "$t0") s (from the first probe)"
wait_for '[ "$(status /models/b)" = 200 ]' 300 0.5 || fail "GET /models/b never turned 200: $(get /models/b)"
assert_eq "1.0000" "$(json_field /models/a cached_fraction)" "cached fraction of a once ready"
assert_eq "done" "$(json_field /models/a preload)" "preload state of a"
assert_eq "null" "$(json_field /models/a mount)" "a has no managed mount"
assert_eq "/models/b" "$(json_field /models/b mount)" "b's managed mount"
assert_eq "true" "$(json_field /models/b mounted)" "b mounted"
grep -q "preloading model a " $BC_LOG || fail "no preload of a in the log"
grep -q "preloading model b " $BC_LOG || fail "no preload of b in the log"
get /models >/tmp/models.json
for m in a b c; do
	grep -q "{\"name\": \"$m\"" /tmp/models.json || fail "GET /models lacks $m: $(cat /tmp/models.json)"
done

# The private mount of a is gone: a can be mounted, and reads without the daemon.
wait_for '! grep -q " /run/blobcached/warm/a " /proc/self/mountinfo' 30 0.5 ||
	fail "the private preload mount of a is still there"
# b stays mounted (2 objects); a's objects close once the kernel lets go of the private mount.
objects() { sed -n "s/^objects=//p" "$BC_STATUS"; }
wait_for '[ "$(objects)" = 2 ]' 60 0.5
reads0=$(bc_stat reads)
origin0=$(bc_stat origin_bytes)
mkdir -p /mnt/a
# In the daemon's domain ([cache] domain), where the preload filled the files.
mount -t erofs -o fsid=a,domain_id=blobcache none /mnt/a || fail "mount a after its preload"
tree_sums /mnt/a >/tmp/got-a
cmp /tmp/src-a /tmp/got-a || fail "a differs from its source"
tree_sums /models/b >/tmp/got-b
cmp /tmp/src-b /tmp/got-b || fail "b differs from its source"
assert_eq "$origin0" "$(bc_stat origin_bytes)" "origin bytes while reading the preloaded models"
assert_eq "$reads0" "$(bc_stat reads)" "READs reaching the daemon while reading the preloaded models"
note "both preloaded models read in full: 0 READs reached the daemon, 0 bytes from the origin"
umount /mnt/a

# Evicted, a is no longer ready (the endpoint follows the cache, not the preload's memory).
wait_for '[ "$(objects)" = 2 ]' 60 0.5
blobcachectl --run-dir /run/blobcached evict a >/dev/null || fail "evict a"
assert_eq 503 "$(status /models/a)" "GET /models/a after evict"

# Re-published with other content, a is preloaded again and turns ready again.
make_model /srv/src/a2 12 10
bc_publish a /srv/src/a2 --force || fail "re-publish a"
wait_for '[ "$(grep -c "preloading model a " $BC_LOG)" -ge 2 ]' 60 0.5 ||
	fail "a re-published was not preloaded again"
wait_for '[ "$(status /models/a)" = 200 ]' 300 0.5 || fail "re-published a never ready: $(get /models/a)"
bc_stop
pass "preload fills models in the background; GET /models/NAME turns 200 when they are fully cached"
