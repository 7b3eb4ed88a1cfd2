# shellcheck shell=sh
# Helpers for scenarios that run blobcached in the test VM (sourced after lib.sh).
# Layout used by these helpers (the guest's disks are described in tests/vm/README.md):
#   /srv/origin              the origin: blobs/sha256/<digest>, models/<name>.model
#   /srv/catalogue           the daemon's catalogue directory
#   /var/cache/blobcached    the cache volume (ext4)
#   /run/blobcached/status   the daemon's counters
#   /tmp/blobcached.log      the daemon's log (printed at the end of the scenario)

BC_CONF=/etc/blobcached/blobcached.conf
BC_LOG=/tmp/blobcached.log
BC_STATUS=/run/blobcached/status
BC_PID=

# bc_config [KEY=VALUE in [daemon]...]: write the configuration used by bc_start.
# With BC_ORIGIN_URL set, the origin is that HTTP URL instead of /srv/origin, and
# BC_ORIGIN_KEYS ("KEY=VALUE ...") adds keys to [origin] (e.g. "retries=1").
bc_config() {
	mkdir -p /etc/blobcached /srv/origin /srv/catalogue /var/cache/blobcached/blobcached
	{
		echo "[cache]"
		echo "dir = /var/cache/blobcached/blobcached"
		echo "[origin]"
		if [ -n "${BC_ORIGIN_URL:-}" ]; then
			echo "url = $BC_ORIGIN_URL"
			for kv in ${BC_ORIGIN_KEYS:-}; do
				echo "${kv%%=*} = ${kv#*=}"
			done
		else
			echo "path = /srv/origin"
		fi
		echo "[daemon]"
		echo "catalogue = /srv/catalogue"
		echo "run_dir = /run/blobcached"
		for kv in "$@"; do
			echo "${kv%%=*} = ${kv#*=}"
		done
	} >"$BC_CONF"
}

# bc_start [blobcached args...]: start the daemon in the background and wait until it is bound.
bc_start() {
	[ -f "$BC_CONF" ] || bc_config
	rm -f "$BC_STATUS"
	blobcached -c "$BC_CONF" "$@" >>"$BC_LOG" 2>&1 &
	BC_PID=$!
	i=0
	while [ ! -f "$BC_STATUS" ]; do
		if ! kill -0 "$BC_PID" 2>/dev/null; then
			echo "blobcached exited during start-up:"
			cat "$BC_LOG"
			return 1
		fi
		i=$((i + 1))
		[ $i -lt 200 ] || { echo "blobcached did not become ready in 20 s"; return 1; }
		sleep 0.1
	done
}

# bc_stop: stop the daemon and its device holder (the cache is withdrawn: a full stop).
bc_stop() {
	if [ -n "$BC_PID" ]; then
		kill "$BC_PID" 2>/dev/null
		wait "$BC_PID" 2>/dev/null
		BC_PID=
	fi
	bc_stop_holder
}

bc_stop_holder() {
	[ -f /run/blobcached/holder.pid ] || return 0
	hp=$(cat /run/blobcached/holder.pid)
	kill "$hp" 2>/dev/null
	i=0
	while kill -0 "$hp" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	rm -f /run/blobcached/holder.pid
}

# bc_term: stop the serving process gracefully (SIGTERM) but leave the device holder: a restart.
bc_term() {
	kill "$BC_PID" 2>/dev/null
	wait "$BC_PID" 2>/dev/null
	BC_PID=
}

# bc_kill9: kill -9 the serving process only; its device holder keeps the cache bound.
bc_kill9() {
	kill -9 "$BC_PID" 2>/dev/null
	wait "$BC_PID" 2>/dev/null
	BC_PID=
}

# bc_kill9_reader FILE SIZE_MB KILLS [RESTART_CMD]: sha256sum of FILE, fed 4 MiB at a time by dd
# and paced while the kills go on so that all of them land mid-read, while the daemon is killed
# with SIGKILL every 2 s and restarted (bc_start, or RESTART_CMD). Each dd's status is kept, so
# a read error cannot hide. Sets KR_SUM, KR_ERRORS, KR_KILLS, KR_MID (the reader still running
# at the last kill: yes|no), KR_SECONDS.
bc_kill9_reader() {
	local file=$1 size=$2 want_kills=$3 restart=${4:-bc_start} blocks reader rstart
	blocks=$((size / 4))
	rm -f /tmp/reader.err /tmp/kills-done /tmp/reader.sum
	(
		i=0
		while [ $i -lt $blocks ]; do
			dd if="$file" bs=4194304 skip=$i count=1 2>/dev/null ||
				echo "read error at block $i" >>/tmp/reader.err
			[ -f /tmp/kills-done ] || sleep 0.35
			i=$((i + 1))
		done
	) | sha256sum | cut -d' ' -f1 >/tmp/reader.sum &
	reader=$!
	rstart=$(now)
	KR_KILLS=0
	while [ $KR_KILLS -lt "$want_kills" ] && kill -0 $reader 2>/dev/null; do
		sleep 2
		bc_kill9
		KR_KILLS=$((KR_KILLS + 1))
		$restart || fail "restart $KR_KILLS"
	done
	: >/tmp/kills-done
	KR_MID=$(kill -0 $reader 2>/dev/null && echo yes || echo no)
	wait_for "! kill -0 $reader 2>/dev/null" 900 || fail "the reader did not finish"
	KR_SECONDS=$(elapsed_since "$rstart")
	KR_ERRORS=$([ -f /tmp/reader.err ] && wc -l </tmp/reader.err || echo 0)
	[ "$KR_ERRORS" = 0 ] || head /tmp/reader.err
	KR_SUM=$(cat /tmp/reader.sum)
}

# ---- model versions (model-update scenarios) -------------------------------------------------

# bc_check_tree DIR WANT WHAT: sha256 of every file of DIR equal to the list WANT (tree_sums).
bc_check_tree() {
	tree_sums "$1" >/tmp/got
	cmp -s "$2" /tmp/got || {
		diff "$2" /tmp/got | head -n 20
		fail "$3: content differs from its source"
	}
}
# bc_make_versions: /srv/src/v1, v2 (the same files with the same sizes, other bytes: the same
# metadata size), v3 (one more file and one fewer).
bc_make_versions() {
	make_model /srv/src/v1 8 20
	cp -a /srv/src/v1 /srv/src/v2
	dd if=/dev/urandom of=/srv/src/v2/model.safetensors bs=1048576 count=8 2>/dev/null
	dd if=/dev/urandom of=/srv/src/v2/shards/part-3.bin bs=1 count=2992 2>/dev/null
	cp -a /srv/src/v2 /srv/src/v3
	dd if=/dev/urandom of=/srv/src/v3/extra.bin bs=65536 count=40 2>/dev/null
	rm /srv/src/v3/shards/part-5.bin
}
# bc_publish_version V: publish /srv/src/V as model m (--force); its entry in /tmp/V.model, the
# sums of its files in /tmp/want-V.
bc_publish_version() {
	bc_publish m "/srv/src/$1" --force >/dev/null || fail "publish $1"
	cp /srv/catalogue/m.model "/tmp/$1.model"
	tree_sums "/srv/src/$1" >"/tmp/want-$1"
}
# bc_entry_blobs ENTRY: every blob digest a model entry lists.
bc_entry_blobs() { sed -n 's/^\[blob \([0-9a-f]*\)\]$/\1/p' "$1"; }
# bc_part_sums DIR: sums of the small files and of the first 4 MiB of model.safetensors.
bc_part_sums() { (cd "$1" && sha256sum config.json shards/* && head -c 4194304 model.safetensors | sha256sum); }

# bc_stat KEY: a counter from the status file (written every second; wait for a fresh one).
bc_stat() {
	sleep 1.1
	sed -n "s/^$1=//p" "$BC_STATUS"
}

bc_show_log() {
	echo "----- blobcached log -----"
	cat "$BC_LOG" 2>/dev/null
	echo "----- end of blobcached log -----"
}

# bc_publish NAME SRC_DIR [publish options...]: publish into the origin and the catalogue.
bc_publish() {
	name=$1
	src=$2
	shift 2
	mkdir -p /srv/catalogue /srv/origin
	blobcachectl publish --catalogue /srv/catalogue "$@" "$name" "$src" /srv/origin
}

# bc_model_blob NAME ROLE: digest of the model's meta or data blob, from the catalogue.
bc_model_blob() {
	awk -v want="$2" '
		/^\[blob / { d = $2; sub(/\]$/, "", d) }
		/^role *=/ { r = $0; sub(/^role *= */, "", r); if (r == want) print d }
	' "/srv/catalogue/$1.model" | head -n 1
}

# make_model DIR BIG_MB N_SMALL: a model directory with one large file and many small ones of
# varied sizes (some not a multiple of 4096, one empty), pseudo-random content.
make_model() {
	dir=$1
	mkdir -p "$dir/shards" "$dir/tokenizer"
	dd if=/dev/urandom of="$dir/model.safetensors" bs=1048576 count="$2" 2>/dev/null
	i=0
	while [ $i -lt "$3" ]; do
		dd if=/dev/urandom of="$dir/shards/part-$i.bin" bs=1 count=$((i * 997 + 1)) 2>/dev/null
		i=$((i + 1))
	done
	echo '{"architectures": ["TestForCausalLM"]}' >"$dir/config.json"
	: >"$dir/tokenizer/empty"
}

# tree_sums DIR: sha256 of every regular file, by relative path.
tree_sums() {
	(cd "$1" && find . -type f | sort | while read -r f; do sha256sum "$f"; done)
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# ---- nginx serving /srv/origin on 127.0.0.1:8080 (scenarios declare --with-binary /usr/sbin/nginx)
# Access log lines: "<connection> <request> <status> <range header> <body bytes sent>".
BC_NGX=/tmp/nginx
BC_NGX_PID=
# bc_nginx_conf FILE PREFIX ROOT PORT: write an nginx configuration serving ROOT on
# 127.0.0.1:PORT, with its pid, logs and temporary files under PREFIX (also used by bench/soak).
bc_nginx_conf() {
	mkdir -p "$2/tmp"
	cat >"$1" <<NGINX
user root;
worker_processes 1;
daemon off;
pid $2/nginx.pid;
error_log $2/error.log info;
events { worker_connections 256; }
http {
	types { application/octet-stream bin; }
	default_type application/octet-stream;
	log_format blobs '\$connection \$request \$status \$http_range \$body_bytes_sent';
	access_log $2/access.log blobs;
	client_body_temp_path $2/tmp/body;
	proxy_temp_path $2/tmp/proxy;
	fastcgi_temp_path $2/tmp/fastcgi;
	uwsgi_temp_path $2/tmp/uwsgi;
	scgi_temp_path $2/tmp/scgi;
	sendfile on;
	keepalive_timeout 75s;
	server {
		listen 127.0.0.1:$4;
		root $3;
	}
}
NGINX
}
bc_nginx_start() {
	bc_nginx_conf /tmp/nginx.conf $BC_NGX /srv/origin 8080
	mkdir -p /srv/origin
	echo ok >/srv/origin/.alive
	nginx -c /tmp/nginx.conf -p $BC_NGX -e $BC_NGX/error.log &
	BC_NGX_PID=$!
	wait_for "wget -q -O /dev/null http://127.0.0.1:8080/.alive" 20
}

bc_nginx_stop() {
	[ -n "$BC_NGX_PID" ] || return 0
	kill "$BC_NGX_PID"
	wait "$BC_NGX_PID" 2>/dev/null
	BC_NGX_PID=
}

bc_nginx_logs() {
	echo "----- nginx error log -----"
	cat $BC_NGX/error.log 2>/dev/null
	echo "----- nginx access log (last 20) -----"
	tail -n 20 $BC_NGX/access.log 2>/dev/null
}

# ---- the bounded cache (blobcachectl status --json) ----

# bc_model_field MODEL KEY: a number (or true/false) of MODEL from `blobcachectl status --json`.
bc_model_field() {
	blobcachectl --run-dir /run/blobcached status --json |
		sed -n "s/.*{\"name\": \"$1\",.*\"$2\": \([^,}]*\).*/\1/p" | tr -d '"'
}

# bc_cache_field KEY: a number of the "cache" object of `blobcachectl status --json`.
bc_cache_field() {
	blobcachectl --run-dir /run/blobcached status --json |
		sed -n "s/.*\"cache\": {.*\"$1\": \([^,}]*\).*/\1/p" | tr -d '"'
}

# bc_volume_pct: percent of the cache volume used (statfs, as the daemon counts it).
bc_volume_pct() {
	df -P /var/cache/blobcached | awk 'NR == 2 { sub(/%/, "", $5); print $5 }'
}

# bc_wait_closed TIMEOUT: wait until no object is open (the kernel keeps a model's objects
# about 10 s after its last unmount).
bc_wait_closed() {
	wait_for '[ "$(sed -n "s/^objects=//p" "$BC_STATUS")" = 0 ]' "$1" 0.5
}

# bc_warm MODEL: blobcachectl warm, its output shown only if it fails.
bc_warm() {
	blobcachectl --run-dir /run/blobcached warm "$1" >/tmp/warm.out 2>&1 || {
		cat /tmp/warm.out
		return 1
	}
}

# ---- NFS (Debian guest: nfs-kernel-server) ----

# bc_nfs_export MODEL SIZE_MB: publish a model of SIZE_MB into /srv/export (entry in
# /srv/catalogue) and serve /srv/export to 127.0.0.1 with the guest's NFS server, with a short
# grace period. The daemon mounts it with [origin] nfs = 127.0.0.1:/srv/export.
bc_nfs_export() {
	modprobe nfsd && modprobe nfs || fail "modprobe nfsd nfs"
	mkdir -p /etc/nfs.conf.d /srv/export /srv/catalogue /srv/origin
	# Opens after a server restart wait for the NFSv4 grace period (90 s by default).
	printf '[nfsd]\ngrace-time=10\nlease-time=10\n' >/etc/nfs.conf.d/blobcache-test.conf
	make_model "/srv/src/$1" "$2" 3
	blobcachectl publish --catalogue /srv/catalogue "$1" "/srv/src/$1" /srv/export >/dev/null ||
		fail "publish $1"
	echo "/srv/export 127.0.0.1(ro,no_subtree_check,fsid=1)" >/etc/exports
	systemctl restart nfs-server || fail "nfs-server start"
}

# ---- publish --in-place (scenarios publish-in-place, ublk-publish-in-place)

# ip_make_model DIR: a model beneath /srv/origin with several large files (one a symlink to a
# file elsewhere beneath the origin, as in a Hugging Face snapshot) and 150 small ones. Writes
# /tmp/src.sums (sha256 by relative path, the symlink with its target's content) and sets
# IP_MODEL_BYTES.
ip_make_model() {
	M=$1
	mkdir -p "$M/tokenizer" /srv/origin/hf/blobs
	dd if=/dev/urandom of="$M/model-00001-of-00003.safetensors" bs=1234 count=8499 2>/dev/null
	dd if=/dev/urandom of="$M/model-00002-of-00003.safetensors" bs=1048576 count=8 2>/dev/null
	dd if=/dev/urandom of="$M/model-00003-of-00003.safetensors" bs=4099 count=1024 2>/dev/null
	dd if=/dev/urandom of=/srv/origin/hf/blobs/3f2a bs=2097157 count=1 2>/dev/null
	ln -s ../../hf/blobs/3f2a "$M/consolidated.bin"
	i=0
	while [ $i -lt 150 ]; do
		dd if=/dev/urandom of="$M/tokenizer/part-$i.json" bs=1 count=$((i * 7 + 1)) 2>/dev/null
		i=$((i + 1))
	done
	echo '{"architectures": ["TestForCausalLM"]}' >"$M/config.json"
	: >"$M/tokenizer/empty"
	(cd "$M" && find . -type f -o -type l | sort | while read -r f; do sha256sum "$f"; done) >/tmp/src.sums
	IP_MODEL_BYTES=$( (cd "$M" && find . -type f -o -type l | while read -r f; do cat "$f"; done) | wc -c)
	echo "model: $(wc -l </tmp/src.sums) files, $IP_MODEL_BYTES bytes"
}

# ip_publish NAME DIR: publish --in-place into /srv/origin and /srv/catalogue; checks that the
# origin got the metadata blob only, under 1% of the model's size. Sets IP_WRITTEN, IP_SECONDS.
ip_publish() {
	mkdir -p /srv/catalogue
	start=$(now)
	blobcachectl publish --in-place --catalogue /srv/catalogue "$1" "$2" /srv/origin >/tmp/publish.out ||
		{ cat /tmp/publish.out; fail "publish --in-place $1"; }
	IP_SECONDS=$(elapsed_since "$start")
	cat /tmp/publish.out
	IP_WRITTEN=$(sed -n 's/^  origin *\([0-9]*\) bytes written for a model of .*/\1/p' /tmp/publish.out)
	reported=$(sed -n 's/^  origin *[0-9]* bytes written for a model of \([0-9]*\) bytes.*/\1/p' /tmp/publish.out)
	assert_eq "$IP_MODEL_BYTES" "$reported" "model size reported by publish"
	[ $((IP_WRITTEN * 100)) -lt "$IP_MODEL_BYTES" ] ||
		fail "publish wrote $IP_WRITTEN bytes, not below 1% of $IP_MODEL_BYTES"
}

# ip_change_chunk DIR FILE: record the sha256 of chunks 0-4 of FILE (/tmp/chunk.N), then change
# one byte of chunk 2 on the origin.
ip_change_chunk() {
	i=0
	while [ $i -lt 5 ]; do
		dd if="$1/$2" bs=1048576 skip=$i count=1 2>/dev/null | sha256sum | cut -d' ' -f1 >"/tmp/chunk.$i"
		i=$((i + 1))
	done
	printf 'X' | dd of="$1/$2" bs=1 seek=$((2 * 1048576 + 4321)) conv=notrunc 2>/dev/null
}

# ip_check_mount MNT FILE: every file but FILE reads the source's sha256; FILE's chunk 2 fails
# with EIO (twice, the second time after dropping the page cache), its chunks 0 1 3 4 read the
# published bytes; the daemon logged the changed file once, with "re-publish".
ip_check_mount() {
	mnt=$1 f=$2
	tree_sums "$mnt" 2>/dev/null | grep -v " ./$f\$" >/tmp/mnt.sums
	grep -v " ./$f\$" /tmp/src.sums >/tmp/src-but-f.sums
	assert_eq "$(wc -l </tmp/src-but-f.sums)" "$(wc -l </tmp/mnt.sums)" "files read through the mount"
	cmp /tmp/src-but-f.sums /tmp/mnt.sums || { diff /tmp/src-but-f.sums /tmp/mnt.sums | head; fail "content differs"; }
	echo "mount: sha256 of $(wc -l </tmp/mnt.sums) files equal to the source"
	for pass in 1 2; do
		i=0
		while [ $i -lt 5 ]; do
			got=$(dd if="$mnt/$f" bs=1048576 skip=$i count=1 2>/tmp/dd.err | sha256sum | cut -d' ' -f1)
			if grep -qi "error" /tmp/dd.err; then
				[ $i -eq 2 ] || fail "pass $pass: chunk $i failed: $(cat /tmp/dd.err)"
				grep -qE "Input/output error|I/O error" /tmp/dd.err ||
					fail "pass $pass: chunk 2: $(cat /tmp/dd.err), not EIO"
			else
				[ $i -ne 2 ] || fail "pass $pass: the changed chunk 2 read without an error"
				assert_eq "$(cat /tmp/chunk.$i)" "$got" "pass $pass: chunk $i of the changed file"
			fi
			i=$((i + 1))
		done
		drop_caches
	done
	logged=$(grep -c "in-place file .*/$f .*changed since it was published.*re-publish" $BC_LOG)
	assert_eq 1 "$logged" "log lines naming the changed file"
	[ "$(bc_stat verify_failures)" -ge 1 ] || fail "no verify failure counted"
	echo "changed file: chunk 2 EIO (twice), chunks 0 1 3 4 the published bytes; logged once"
}
