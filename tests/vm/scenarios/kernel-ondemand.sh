#!/bin/sh
# vm: --timeout 300
# The kernel side alone, no daemon of ours: the rebuilt cachefiles.ko and erofs.ko (with on-demand
# support) are loaded, /dev/cachefiles exists, and the cache volume is ext4 as cachefiles needs.
# shellcheck source=tests/vm/lib.sh
. /usr/share/blobcache-tests/lib.sh

module_loaded cachefiles || fail "cachefiles is not in /proc/modules"
module_loaded erofs || fail "erofs is not in /proc/modules"
module_loaded netfs || fail "netfs is not in /proc/modules"
pass "cachefiles, erofs and netfs are loaded"

# The boot loaded the rebuilt modules from updates/, not Debian's from kernel/fs/.
for m in cachefiles erofs; do
	path=$(modinfo -n "$m" 2>/dev/null || true)
	assert_contains "/updates/$m.ko" "$path" "module file of $m"
done
for m in cachefiles erofs; do
	assert_contains blobcache-ondemand "$(modinfo -F version "$m" 2>/dev/null)" "version of $m"
done
grep -qw erofs /proc/filesystems || fail "erofs is not in /proc/filesystems"
pass "the on-demand modules came from updates/"

[ -c /dev/cachefiles ] || fail "/dev/cachefiles is not a character device"
pass "/dev/cachefiles exists"

# The proof that on-demand mode is compiled in: the kernel accepts 'bind ondemand' (one command
# per write; busybox echo writes a line at once). Closing the device unbinds the cache again.
mkdir -p /var/cache/blobcached/probe
exec 3<>/dev/cachefiles || fail "cannot open /dev/cachefiles"
echo "dir /var/cache/blobcached/probe" >&3 || fail "'dir' refused by /dev/cachefiles"
echo "tag vmprobe" >&3 || fail "'tag' refused by /dev/cachefiles"
echo "bind ondemand" >&3 || fail "'bind ondemand' refused: cachefiles lacks on-demand support"
exec 3>&-
pass "cachefiles accepts 'bind ondemand'"
[ -d /var/cache/blobcached/probe/cache ] || fail "bind created no cache/ directory"

assert_eq ext4 "$(fs_type /var/cache/blobcached)" "filesystem of the cache volume"
assert_eq ext4 "$(fs_type /srv)" "filesystem of the work disk"
[ -d /srv/origin ] || fail "/srv/origin is missing"
pass "cache volume and work disk are ext4"

# The guest tools scenarios rely on.
command -v mkfs.erofs >/dev/null || fail "mkfs.erofs is not in the guest"
make_file /srv/origin/data 4 1
assert_eq 4194304 "$(file_size /srv/origin/data)" "size of a 4 MiB make_file"
pass "mkfs.erofs present, make_file works"
