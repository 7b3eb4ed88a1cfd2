#!/bin/sh
# vm: --modules stock --timeout 300
# Debian's own modules (no on-demand support) load: the environment in which the daemon must refuse
# to start with a clear message.
# shellcheck source=tests/vm/lib.sh
. /usr/share/blobcache-tests/lib.sh

module_loaded cachefiles || fail "cachefiles is not in /proc/modules"
module_loaded erofs || fail "erofs is not in /proc/modules"
for m in cachefiles erofs; do
	path=$(modinfo -n "$m" 2>/dev/null || true)
	assert_contains "/kernel/fs/$m/$m.ko" "$path" "module file of $m"
done
pass "Debian's stock cachefiles and erofs are loaded"
[ -c /dev/cachefiles ] || fail "/dev/cachefiles is not a character device"
pass "/dev/cachefiles exists"

# What the daemon will meet on such a kernel: 'bind ondemand' is refused (EINVAL), while a plain
# 'bind' (cachefilesd's mode) is accepted.
mkdir -p /var/cache/blobcached/probe
exec 3<>/dev/cachefiles || fail "cannot open /dev/cachefiles"
echo "dir /var/cache/blobcached/probe" >&3 || fail "'dir' refused by /dev/cachefiles"
echo "tag vmprobe" >&3 || fail "'tag' refused by /dev/cachefiles"
if echo "bind ondemand" >&3; then
	fail "stock cachefiles accepted 'bind ondemand': is the stock set really stock?"
fi
pass "stock cachefiles refuses 'bind ondemand'"
exec 3>&-
