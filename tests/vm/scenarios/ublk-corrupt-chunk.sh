# ublk: origin faults give the reader EIO, never wrong bytes, and are never cached.
#  - a flipped byte in the data blob: that chunk's reads fail EIO (every other file reads
#    correctly); it is not marked cached, so once the origin is repaired the same mount reads
#    it correctly;
#  - the data blob gone from the origin, then hung (a FIFO): EIO within the request deadline.
# vm: --modules stock --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT

ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
flip() { # flip FILE OFFSET
	b=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

modprobe ublk_drv || fail "modprobe ublk_drv"
mkdir -p /srv/src/m
dd if=/dev/urandom of=/srv/src/m/weights.bin bs=1048576 count=8 2>/dev/null
dd if=/dev/urandom of=/srv/src/m/other.bin bs=1048576 count=2 2>/dev/null
echo '{"ok": true}' >/srv/src/m/config.json
bc_publish m /srv/src/m || fail "publish"
data=$(bc_model_blob m data)
blob=/srv/origin/blobs/sha256/$data
cp "$blob" /tmp/data.good
flip "$blob" $((3 * 1048576 + 12345))
cmp -s "$blob" /tmp/data.good && fail "flip did not change the blob"

bc_config frontend=ublk request_timeout=3s workers=2 readahead=0
bc_start || fail "daemon start"
mkdir -p /models/m
ctl mount m /models/m || fail "mount"
bad=0
for f in weights.bin other.bin config.json; do
	if sha256sum "/models/m/$f" >/tmp/sum 2>/tmp/err; then
		assert_eq "$(sha256sum "/srv/src/m/$f" | cut -d' ' -f1)" "$(cut -d' ' -f1 /tmp/sum)" \
			"sha256 of $f (a wrong byte served?)"
	else
		grep -q "Input/output error" /tmp/err || fail "$f: expected EIO, got $(cat /tmp/err)"
		echo "$f: EIO (its chunk failed verification)"
		badfile=$f
		bad=$((bad + 1))
	fi
done
assert_eq 1 "$bad" "files failing with EIO"
drop_caches
cat "/models/m/$badfile" >/dev/null 2>&1 && fail "second read of the corrupt chunk succeeded"
[ "$(bc_stat verify_failures)" -ge 1 ] || fail "no verify failure counted"
[ "$(bc_stat ublk_reads_failed)" -ge 1 ] || fail "no failed ublk request counted"
grep -q "does not match its digest" $BC_LOG || fail "mismatch not logged"

# Repair the origin: the chunk was never marked cached, so the same mount now fetches it again.
cp /tmp/data.good "$blob"
drop_caches
sha256sum "/models/m/$badfile" >/tmp/sum 2>/tmp/err || fail "read after repair: $(cat /tmp/err)"
assert_eq "$(sha256sum "/srv/src/m/$badfile" | cut -d' ' -f1)" "$(cut -d' ' -f1 /tmp/sum)" \
	"sha256 of $badfile after repair"
echo "after repair: $badfile reads correctly through the same mount"
ctl umount m || fail "umount"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20 || fail "ublk devices left"
bc_stop

# Origin down: a cold cache, the mount made while the origin answers (the metadata), then the
# data blob goes away, then hangs.
rm -rf /var/cache/blobcached/blobcached/ublk
: >$BC_LOG
bc_start || fail "daemon restart"
expect_eio() {
	what=$1
	start=$(date +%s)
	if timeout 60 cat /models/m/weights.bin >/dev/null 2>/tmp/err; then
		fail "$what: read succeeded"
	fi
	took=$(($(date +%s) - start))
	grep -q "Input/output error" /tmp/err || fail "$what: expected EIO, got: $(cat /tmp/err)"
	echo "FIGURE ublk $what: EIO after $took s (deadline 3 s)"
	LAST_TOOK=$took
}
ctl mount m /models/m || fail "mount for the origin faults"
ls -l /models/m >/dev/null || fail "listing the model"
mv "$blob" "$blob.away"
drop_caches
expect_eio "missing blob"
[ "$LAST_TOOK" -le 3 ] || fail "missing blob: EIO after $LAST_TOOK s"
mkfifo "$blob"
drop_caches
expect_eio "hung origin"
[ "$LAST_TOOK" -le 8 ] || fail "hung origin: EIO after $LAST_TOOK s, deadline 3 s"
[ "$(bc_stat fill_requests_timed_out)" -ge 1 ] || fail "no timed-out request counted"
(while [ -p "$blob" ]; do : >"$blob"; done) &
sleep 1
mv "$blob.away" "$blob"
drop_caches
sha256sum /models/m/weights.bin | cut -d' ' -f1 >/tmp/got
sha256sum /srv/src/m/weights.bin | cut -d' ' -f1 >/tmp/want
cmp /tmp/want /tmp/got || fail "content after the origin came back differs"
dmesg | grep -q "blocked for more than" && fail "hung task reported by the kernel"
ctl umount m || fail "umount after faults"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 20 || fail "ublk devices left"
bc_stop
pass "ublk: corrupt chunk EIO and never cached; origin down EIO within the deadline"
