# Reliability B5 (a stalled volume), ublk front end: the cache volume's flushes hang (dm-delay
# holds every flush 20 s; reads and writes pass). In ublk mode the chunk maps' group commit waits
# for an fdatasync of the cache file, and a model's blobs are let go with chunks still waiting for
# theirs. That wait belongs to the writers pool, never to the daemon's loop thread: while the
# flushes hang, a model with a commit due is unmounted within seconds, /livez answers every time,
# blobcachectl status answers, and another mounted model reads right from its cache files. When
# the flushes pass again the commits land: the next daemon reads the unmounted model's chunks
# with 0 origin bytes, and every byte is right.
# vm: --modules stock --with-binary /usr/sbin/dmsetup --with-binary /usr/sbin/mkfs.ext4 --with-binary /usr/bin/curl
# vm: --with-kernel-module dm-mod --with-kernel-module dm-delay --timeout 900
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
P=http://127.0.0.1:9464
VOL=/var/cache/bcvol
FLUSH_MS=20000
ctl() { blobcachectl --run-dir /run/blobcached "$@"; }
# The page cache dropped without sync: a sync would wait for the held flushes.
drop_pages() { echo 3 >/proc/sys/vm/drop_caches; }
# mib FILE FROM COUNT: sha256 of COUNT MiB of FILE from MiB FROM (60 s bound: a hang fails).
mib() { timeout 60 dd if="$1" bs=1048576 skip="$2" count="$3" 2>/dev/null | sha256sum | cut -d' ' -f1; }

modprobe ublk_drv || fail "modprobe ublk_drv"
bc_dm_volume 512M dm-delay
# delay <dev> <off> <read ms> <write dev> <off> <write ms> <flush dev> <off> <flush ms>
STALL="0 $BC_DM_SECTORS delay /dev/loop0 0 0 /dev/loop0 0 0 /dev/loop0 0 $FLUSH_MS"
mkfs.ext4 -q -F /dev/mapper/cachevol || fail "mkfs.ext4"
mkdir -p $VOL
mount /dev/mapper/cachevol $VOL || fail "mount the cache volume"
mkdir -p $VOL/blobcached

make_model /srv/src/a 32 5
make_model /srv/src/b 16 5
bc_publish a /srv/src/a >/dev/null || fail "publish a"
bc_publish b /srv/src/b >/dev/null || fail "publish b"
bc_config frontend=ublk readahead=0 request_timeout=120s
sed -i "s|^dir = .*|dir = $VOL/blobcached|" "$BC_CONF"
bc_start || fail "daemon start"
mkdir -p /mnt/a /mnt/b
ctl mount a /mnt/a || fail "mount a"
ctl mount b /mnt/b || fail "mount b"
BIG_A=/mnt/a/model.safetensors BIG_B=/mnt/b/model.safetensors
# b whole and a's first 4 MiB cached, their commits done (the timer commits after 500 ms).
tree_sums /srv/src/b >/tmp/src_b
tree_sums /mnt/b >/tmp/mnt_b
cmp /tmp/src_b /tmp/mnt_b || fail "model b reads wrong before the stall"
assert_eq "$(head -c 4194304 /srv/src/a/model.safetensors | sha256sum | cut -d' ' -f1)" "$(mib $BIG_A 0 4)" "a's first 4 MiB"
sleep 2
pass "ublk cache on ext4 over dm-linear: b cached whole, a's first 4 MiB, commits done"

# --- the flushes stall ---------------------------------------------------------------------------
bc_dm_table "$STALL"
# a's MiB 4-11: written into the cache file (writes pass), their commit due in 500 ms; its
# fdatasync then waits for a held flush, in a writer thread.
want=$(dd if=/srv/src/a/model.safetensors bs=1048576 skip=4 count=8 2>/dev/null | sha256sum | cut -d' ' -f1)
assert_eq "$want" "$(mib $BIG_A 4 8)" "a's MiB 4-11 with the flushes held"
sleep 1
# a unmounted: its blobs are let go with the commit still waiting for the disk.
t0=$(ms)
timeout 15 blobcachectl --run-dir /run/blobcached umount a || fail "umount a did not finish in 15 s with the volume's flushes held"
echo "MEASURED: umount a with a commit waiting for a held flush: $(($(ms) - t0)) ms"
slow=0 worst=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	t=$(ms)
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$P/livez")
	d=$(($(ms) - t))
	[ $d -gt $worst ] && worst=$d
	[ "$code" = 200 ] || { slow=$((slow + 1)); echo "/livez answered '$code' after $d ms"; }
	sleep 0.5
done
echo "MEASURED: /livez with the flushes held: 10 probes, slowest $worst ms, $slow not answered 200 within 2 s"
assert_eq 0 "$slow" "/livez probes not answered 200 within 2 s with the flushes held"
timeout 10 blobcachectl --run-dir /run/blobcached status >/tmp/status.out 2>&1 || {
	cat /tmp/status.out
	fail "blobcachectl status did not answer in 10 s with the flushes held"
}
echo "/readyz with the flushes held: $(curl -s -w ' (%{http_code})' --max-time 2 "$P/readyz")"
drop_pages
t0=$(ms)
(tree_sums /mnt/b >/tmp/mnt_b2 && touch /tmp/b.done) &
wait_for '[ -f /tmp/b.done ]' 30 0.2 || fail "reading model b from its cache files did not finish in 30 s with the flushes held"
echo "MEASURED: model b read from its cache files with the flushes held: $(($(ms) - t0)) ms"
cmp /tmp/src_b /tmp/mnt_b2 || fail "model b reads wrong with the flushes held"
kill -0 "$BC_PID" || fail "the daemon died"
pass "flushes held $FLUSH_MS ms: a unmounted with a commit due, /livez and status answer, b reads right"

# --- the flushes pass again: the commits land ------------------------------------------------------
bc_dm_table "$BC_DM_LINEAR"
t0=$(ms)
timeout 60 sync || fail "sync did not finish 60 s after the flushes passed again"
echo "MEASURED: the volume synced $(($(ms) - t0)) ms after the flushes passed again"
ctl umount b || fail "umount b"
wait_for '[ -z "$(ls /dev/ublkb* 2>/dev/null)" ]' 30 || fail "ublk devices left after the umounts"
sleep 1
bc_stop
grep -q "committing the chunk map failed" $BC_LOG && fail "a chunk map commit failed"
: >$BC_LOG
bc_start || fail "daemon restart"
before=$(bc_stat origin_bytes)
ctl mount a /mnt/a || fail "mount a again"
drop_caches
assert_eq "$want" "$(mib $BIG_A 4 8)" "a's MiB 4-11 after the restart"
after=$(bc_stat origin_bytes)
echo "MEASURED: a's MiB 4-11 after the restart: $((after - before)) origin bytes"
assert_eq 0 "$((after - before))" "origin bytes for a's MiB 4-11, committed while the flushes were held"
tree_sums /srv/src/a >/tmp/src_a
tree_sums /mnt/a >/tmp/mnt_a
cmp /tmp/src_a /tmp/mnt_a || fail "model a reads wrong after the stall"
ctl umount a || fail "umount a at the end"
bc_stop
pass "the commit held by the stalled flush landed: a's chunks read with 0 origin bytes after a restart; every file right"
