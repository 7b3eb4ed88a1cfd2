# The catalogue from the origin (issue 9, part 5): models published on the origin only
# (blobcachectl publish writes models/NAME.model and models/index there; the node's catalogue
# directory starts empty) are mountable by name on a node with [origin] catalogue = yes,
# over the file origin and over the HTTP origin (nginx). A re-publish reaches the node within
# catalogue_refresh without a restart; an unpublish removes the entry; a corrupt entry on the
# origin is refused and the one in place stays; an entry placed by hand wins over the origin's
# and stays; an unknown name is still refused without touching blob data.
# vm: --with-binary /usr/sbin/nginx --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
CAT=/srv/catalogue
publish() { blobcachectl publish --catalogue /tmp/pubcat "$@" /srv/origin >/dev/null; }
sums_equal() { tree_sums "$1" >/tmp/a && tree_sums "$2" >/tmp/b && cmp -s /tmp/a /tmp/b; }

mkdir -p /tmp/pubcat $CAT /srv/origin /mnt/m
make_model /srv/src/a1 4 10
make_model /srv/src/a2 4 10
make_model /srv/src/b 4 10
make_model /srv/src/c 2 5
publish a /srv/src/a1 || fail "publish a"
publish b /srv/src/b || fail "publish b"
grep -qx a /srv/origin/models/index && grep -qx b /srv/origin/models/index || fail "models/index lacks a or b"
head -n 1 /srv/origin/models/index
# A hand-placed entry of the node: c, also published on the origin (with other content).
publish c /srv/src/c || fail "publish c"
cp /srv/origin/models/c.model $CAT/c.model
publish c /srv/src/a2 --force || fail "republish c"
[ -z "$(ls $CAT | grep -v '^c.model$')" ] || fail "the node's catalogue is not empty but for c"

bc_config
printf '[origin]\ncatalogue = yes\ncatalogue_refresh = 2s\n' >>"$BC_CONF"
bc_start || fail "daemon start"
wait_for "[ -f $CAT/a.model ] && [ -f $CAT/b.model ]" 20 || fail "a and b did not reach the node"
grep "catalogue from the origin" $BC_LOG
mount -t erofs -o fsid=a none /mnt/m || fail "mount a"
sums_equal /srv/src/a1 /mnt/m || fail "a reads other bytes"
umount /mnt/m
pass "file origin: models published on the origin only are mounted by name on the node"

# A local entry wins: c keeps the node's content.
cmp -s $CAT/c.model /srv/origin/models/c.model && fail "the origin's c replaced the node's own entry"
grep -q "c.model is a local entry" $BC_LOG || fail "the local entry was not named in the log"
pass "an entry placed by hand on the node wins over the origin's and stays"

# Unknown names: refused, no blob data read.
before=$(bc_stat origin_bytes)
mount -t erofs -o fsid=nope none /mnt/m 2>/dev/null && fail "an unknown model mounted"
assert_eq "$before" "$(bc_stat origin_bytes)" "origin bytes after an unknown name"
pass "an unknown name is refused without touching blob data"

# A re-publish reaches the node without a restart.
publish a /srv/src/a2 --force || fail "republish a"
wait_for "cmp -s $CAT/a.model /srv/origin/models/a.model" 20 || fail "the new a did not reach the node"
mount -t erofs -o fsid=a none /mnt/m || fail "mount a v2"
sums_equal /srv/src/a2 /mnt/m || fail "a after the re-publish reads other bytes"
umount /mnt/m
pass "a re-publish reached the node within catalogue_refresh; the next mount reads the new version"

# A corrupt entry on the origin: refused, the one in place stays.
cp $CAT/b.model /tmp/b.good
printf '[model b]\nmeta = nonsense\n' >/srv/origin/models/b.model
wait_for 'grep -q "models/b.model refused" $BC_LOG' 20 || fail "the corrupt entry was not refused"
cmp -s /tmp/b.good $CAT/b.model || fail "the entry in place changed after a corrupt one on the origin"
mount -t erofs -o fsid=b none /mnt/m || fail "mount b with a corrupt entry on the origin"
sums_equal /srv/src/b /mnt/m || fail "b reads other bytes"
umount /mnt/m
pass "a corrupt entry on the origin is refused; the node keeps the one in place"

# Unpublish: the node drops the entry.
blobcachectl unpublish a /srv/origin >/dev/null || fail "unpublish a"
wait_for "[ ! -f $CAT/a.model ]" 20 || fail "the unpublished a is still in the node's catalogue"
[ -f $CAT/c.model ] || fail "the hand-placed c went with the unpublish of a"
pass "unpublish removes the entry from the node's catalogue; hand-placed entries stay"
bc_stop

# The HTTP origin: the same, through nginx.
bc_nginx_start || fail "nginx"
cp /tmp/b.good /srv/origin/models/b.model
rm -f $CAT/*.model /var/lib/blobcached/origin-catalogue
sed -i "s|^path = .*|url = http://127.0.0.1:8080|" "$BC_CONF"
make_model /srv/src/d 4 10
publish d /srv/src/d || fail "publish d"
bc_start || fail "daemon start (HTTP origin)"
wait_for "[ -f $CAT/d.model ] && [ -f $CAT/b.model ] && [ -f $CAT/c.model ]" 20 || fail "the entries did not come over HTTP"
mount -t erofs -o fsid=d none /mnt/m || fail "mount d (HTTP origin)"
sums_equal /srv/src/d /mnt/m || fail "d reads other bytes over HTTP"
umount /mnt/m
grep -q "GET /models/index" /tmp/nginx/access.log || fail "nginx did not serve models/index"
bc_stop
bc_nginx_stop
pass "HTTP origin: models/index and the entries come through nginx; a model published on the origin only mounts by name"
