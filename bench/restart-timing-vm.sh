# bench/restart-timing-vm.sh: the time from kill -9 of the daemon (device holder alive) to the new
# daemon's status file, /livez and /readyz, with 7 models cached (7 cache volumes: 1,800 fan-out
# directories) and two readers dropping the page cache, HTTP origin; every daemon log line is
# timestamped (uptime) so that the start-up steps can be timed. Not a CI scenario. Run:
#   tests/vm/run-scenario bench/restart-timing-vm.sh
#   tests/vm/run-scenario --with-binary /path/to/old/blobcached-old bench/restart-timing-vm.sh blobcached-old
# With a second binary (a build of another tree, renamed), its restarts alternate with the
# installed daemon's: a side-by-side comparison in one guest.
# vm: --rootfs debian --with-binary /usr/sbin/nginx --timeout 1200
. /usr/share/blobcache-tests/lib.sh
. /usr/share/blobcache-tests/blobcache.sh
trap bc_show_log EXIT
OTHER=${1:-blobcached}

# bc_nginx_start waits with wget, which the Debian guest has not.
wget() { curl -sf -o /dev/null --max-time 1 "$4"; }
bc_nginx_start || fail "nginx did not start"
for spec in a:24:20 b:24:3 c1:12:8 c2:12:8 d1:12:3 d2:12:3 w:12:3; do
	m=${spec%%:*}
	rest=${spec#*:}
	make_model /srv/src/$m "${rest%%:*}" "${rest#*:}"
	bc_publish $m /srv/src/$m >/dev/null || fail "publish $m"
done
mkdir -p /models/a /models/b
BC_ORIGIN_URL=http://127.0.0.1:8080 bc_config request_timeout=10s
printf '[model a]\nmount = /models/a\n[model b]\nmount = /models/b\n' >>$BC_CONF
bc_start || fail "daemon start"
erofs_at() { awk -v p="$1" '$2 == p && $3 == "erofs" { f = 1 } END { exit !f }' /proc/mounts; }
wait_for 'erofs_at /models/a && erofs_at /models/b' 60
for m in a b c1 c2 d1 d2 w; do bc_warm $m || fail "warm $m"; done
echo "cache: $(find /var/cache/blobcached/blobcached/cache -type f | wc -l) files, $(find /var/cache/blobcached/blobcached/cache -type d | wc -l) directories"
tail -n0 -F $BC_LOG 2>/dev/null | while IFS= read -r l; do
	read -r u _ </proc/uptime
	echo "$u $l"
done >>/tmp/tslog & # appending: the markers below are appended to it too
(while [ ! -e /tmp/stop ]; do
	echo 1 >/proc/sys/vm/drop_caches
	tree_sums /models/a >/dev/null 2>&1
done) &
(while [ ! -e /tmp/stop ]; do
	echo 1 >/proc/sys/vm/drop_caches
	tree_sums /models/b >/dev/null 2>&1
	sleep 0.5
done) &

start_with() { # BINARY: as bc_start
	rm -f "$BC_STATUS"
	$1 -c "$BC_CONF" >>"$BC_LOG" 2>&1 &
	BC_PID=$!
	j=0
	while [ ! -f "$BC_STATUS" ]; do
		kill -0 "$BC_PID" 2>/dev/null || return 1
		j=$((j + 1))
		[ $j -lt 1200 ] || return 1
		sleep 0.1
	done
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
i=0
for bin in $OTHER blobcached $OTHER blobcached $OTHER blobcached $OTHER blobcached; do
	i=$((i + 1))
	sleep 8
	read -r u0 _ </proc/uptime
	echo "$u0 ===== kill -9 $i, then $bin" >>/tmp/tslog
	bc_kill9
	start_with $bin || fail "restart $i"
	read -r u1 _ </proc/uptime
	wait_until '[ "$(curl -s -o /dev/null -w %{http_code} --max-time 2 http://127.0.0.1:9464/livez)" = 200 ]' 60 0.1
	read -r u2 _ </proc/uptime
	wait_until '[ "$(curl -s -o /dev/null -w %{http_code} --max-time 2 http://127.0.0.1:9464/readyz)" = 200 ]' 60 0.2
	read -r u3 _ </proc/uptime
	echo "RESTART $i $bin: status file after $(secs $u0 $u1) s, /livez after $(secs $u0 $u2) s, /readyz after $(secs $u0 $u3) s"
done
: >/tmp/stop
sleep 2
# The start-up's cache walk, if any, lies between space_new's line and the probe's.
echo "----- from 'cache space' to 'probe endpoint' (s), per restart -----"
awk '/===== kill -9/ { k = $5 " " $7 } / cache space: / { t = $1 } / probe endpoint on / && t { printf "%s: %.2f\n", k, $1 - t; t = 0 }' /tmp/tslog
echo "----- timestamped log of the restarts -----"
grep -v "OPEN object\|READ " /tmp/tslog
pass "restart timing"
