# Shared files are cached once (issue 9, part 3), ublk front end on Debian's stock modules: the
# models of shared-files (a fine-tune holding its base's shards) mounted with blobcachectl
# mount, one /dev/ublkbN per blob and model, read at the same time: the origin gives the union
# of their blobs, the shared bytes once (a chunk both models' devices ask for is fetched once);
# each shared blob has one cache file (ublk/<digest>) serving the devices of both models.
# vm: --modules stock --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
UDIR=/var/cache/blobcached/blobcached/ublk
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }

modprobe ublk_drv || fail "modprobe ublk_drv"
bc_make_shared
bc_shared_figures

bc_config workers=4 frontend=ublk
bc_start || fail "daemon start (frontend = ublk)"
mkdir -p /models/base /models/tune
ctl mount base /models/base || fail "blobcachectl mount base"
ctl mount tune /models/tune || fail "blobcachectl mount tune"
assert_eq 10 "$(ls /dev/ublkb* | wc -l)" "block devices (base: meta + 3 data, tune: meta + 5 data)"
for d in $shared; do
	assert_eq 2 "$(grep -c " blob $d data" /run/blobcached/ublk-devices)" \
		"devices on shared blob ${d%${d#????????????}} (one per model)"
done

bc_read_both_and_compare /models/base /models/tune
assert_eq 0 "$(bc_stat ublk_reads_failed)" "failed ublk requests"
bc_check_union_fetched ublk

# One cache file (and chunk map) per blob, whichever model's device asked.
for d in $shared; do
	assert_eq 1 "$(ls $UDIR | grep -c "^$d\$")" "cache files of shared blob ${d%${d#????????????}}"
	[ -f "$UDIR/$d.map" ] || fail "no chunk map of the shared blob"
done
assert_eq "$(sort -u /tmp/base.blobs /tmp/tune.blobs | wc -l)" "$(ls $UDIR | grep -vc '\.map$')" \
	"cache files: one per distinct blob"
pass "one cache file per shared blob serves the devices of both models"

ctl umount tune || fail "umount tune"
ctl umount base || fail "umount base"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20 || fail "ublk devices left after umount"
bc_stop
