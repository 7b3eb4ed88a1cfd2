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
# bc_update_setup copy|in-place [KEY=VALUE...]: the versions of model m (copy: bc_make_versions;
# in-place: ipu_make_versions, beneath the origin), v1 published (bc_publish_version v1 or
# ipu_publish v1), and the daemon started with KEY=VALUE... in [daemon] and no read-ahead: what a
# mount has not read stays uncached and needs the daemon and the origin, after a restart too.
bc_update_setup() {
	case $1 in
	copy)
		bc_make_versions
		bc_publish_version v1
		;;
	in-place)
		ipu_make_versions
		ipu_publish v1
		;;
	*) fail "bc_update_setup: copy or in-place, not '$1'" ;;
	esac
	shift
	bc_config "$@" request_timeout=10s readahead=0
	bc_start || fail "daemon start"
}
# bc_check_part_sums SUMS SRC MNT WHAT: the part of a version that SUMS (bc_part_sums or
# ipu_part_sums: the small files and the first chunks) reads the same through the mount MNT as
# in its source SRC.
bc_check_part_sums() {
	"$1" "$2" >/tmp/want-part
	"$1" "$3" >/tmp/got-part
	cmp -s /tmp/want-part /tmp/got-part || fail "$4: the small files and first chunks differ"
}
# bc_remove_old_blobs: the blobs of v1 and v2 of model m (entries /tmp/V.model) that v3 does not
# list leave the origin.
bc_remove_old_blobs() {
	for d in $(bc_entry_blobs /tmp/v1.model) $(bc_entry_blobs /tmp/v2.model); do
		grep -q "^\[blob $d\]" /tmp/v3.model || rm -f "/srv/origin/blobs/sha256/$d"
	done
}

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
# Unless the options say --blob-min or --in-place, every file is packed into one data blob
# (--blob-min 16T): the scenarios written against one metadata + one data blob keep that
# layout; those about the per-file layout (shared-files, publish-mount-sha256,
# ublk-publish-mount, ...) pass --blob-min 1M, publish's default.
bc_publish() {
	name=$1
	src=$2
	shift 2
	mkdir -p /srv/catalogue /srv/origin
	case " $* " in
	*" --blob-min"* | *" --in-place"* | *" -i "*) ;;
	*) set -- --blob-min 16T "$@" ;;
	esac
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

# ---- in-place model updates (inplace-update, ublk-inplace-update)
# ipu_make_versions: three versions of model m kept beneath the origin as operators keep them,
# each in a directory of its own (/srv/origin/share/m/vN), large files shared between versions
# as a hard link (rsync --link-dest) or an identical copy, one reached through a Hugging Face
# snapshot's symlink into hub/blobs/:
#   v1  model-00001 (A), model-00002 (B1, 16 MiB: a partial read leaves most of it uncached),
#       consolidated.bin -> hub/blobs/x1, 41 small files
#   v2  model-00001 a hard link to v1's, model-00002 other bytes of B1's size, the same symlink,
#       config.json other bytes of the same length: v2's metadata blob has v1's size
#   v3  model-00001 an identical copy of v1's, model-00002 a hard link to v2's,
#       consolidated.bin -> hub/blobs/x3, model-00003 added, one small file removed
# /tmp/want-vN: the sha256 of every file of vN (symlinks followed, as publish does).
IPU=/srv/origin/share/m
ipu_make_versions() {
	mkdir -p $IPU/v1/tokenizer $IPU/v2 $IPU/v3 /srv/origin/hub/blobs
	dd if=/dev/urandom of=$IPU/v1/model-00001.safetensors bs=1234 count=3000 2>/dev/null
	dd if=/dev/urandom of=$IPU/v1/model-00002.safetensors bs=4194433 count=4 2>/dev/null
	dd if=/dev/urandom of=/srv/origin/hub/blobs/x1 bs=2097157 count=1 2>/dev/null
	ln -s ../../../hub/blobs/x1 $IPU/v1/consolidated.bin
	i=0
	while [ $i -lt 40 ]; do
		dd if=/dev/urandom of=$IPU/v1/tokenizer/part-$i.json bs=1 count=$((i * 13 + 1)) 2>/dev/null
		i=$((i + 1))
	done
	echo '{"architectures": ["TestForCausalLM"], "revision": 1}' >$IPU/v1/config.json

	ln $IPU/v1/model-00001.safetensors $IPU/v2/
	dd if=/dev/urandom of=$IPU/v2/model-00002.safetensors bs=4194433 count=4 2>/dev/null
	ln -s ../../../hub/blobs/x1 $IPU/v2/consolidated.bin
	cp -a $IPU/v1/tokenizer $IPU/v2/
	echo '{"architectures": ["TestForCausalLM"], "revision": 2}' >$IPU/v2/config.json

	cp $IPU/v1/model-00001.safetensors $IPU/v3/
	ln $IPU/v2/model-00002.safetensors $IPU/v3/
	dd if=/dev/urandom of=/srv/origin/hub/blobs/x3 bs=2097157 count=1 2>/dev/null
	ln -s ../../../hub/blobs/x3 $IPU/v3/consolidated.bin
	dd if=/dev/urandom of=$IPU/v3/model-00003.safetensors bs=1048583 count=2 2>/dev/null
	cp -a $IPU/v2/tokenizer $IPU/v3/
	rm $IPU/v3/tokenizer/part-7.json
	echo '{"architectures": ["TestForCausalLM"], "revision": 3}' >$IPU/v3/config.json
	for v in v1 v2 v3; do
		ipu_sums $IPU/$v >/tmp/want-$v
	done
}
# ipu_sums DIR: tree_sums with symlinks followed, as publish does.
ipu_sums() { (cd "$1" && find . -type f -o -type l | sort | while read -r f; do sha256sum "$f"; done); }
# ipu_publish V: publish --in-place --force $IPU/V as model m; its entry in /tmp/V.model. Checks
# that the origin got no copy of a large file (one more blob: the metadata blob).
ipu_publish() {
	mkdir -p /srv/catalogue
	before=$(ls /srv/origin/blobs/sha256 2>/dev/null | wc -l)
	blobcachectl publish --in-place --force --catalogue /srv/catalogue m $IPU/$1 /srv/origin \
		>/tmp/publish.out || { cat /tmp/publish.out; fail "publish --in-place $1"; }
	sed -n 's/^  origin/publish '"$1"': origin/p' /tmp/publish.out
	cp /srv/catalogue/m.model "/tmp/$1.model"
	assert_eq $((before + 1)) "$(ls /srv/origin/blobs/sha256 | wc -l)" "blobs on the origin after publishing $1"
	grep -q "^path = share/m/$1/model-00002.safetensors$" /tmp/$1.model || fail "$1: model-00002 not in place"
}
# ipu_part_sums DIR: sums of the small files and of the first chunk (1 MiB) of each large file.
ipu_part_sums() {
	(cd "$1" && sha256sum config.json tokenizer/* &&
		for f in model-00001.safetensors model-00002.safetensors consolidated.bin; do
			head -c 1048576 $f | sha256sum
		done)
}
# ipu_check_but MNT WANT FILE WHAT: every file of MNT but FILE (not read) has its sha256 in WANT,
# and MNT has every file of WANT but FILE.
ipu_check_but() {
	(cd "$1" && find . -type f ! -path "./$3" | sort | while read -r f; do sha256sum "$f"; done) >/tmp/got-but
	grep -v " ./$3\$" "$2" >/tmp/want-but
	cmp -s /tmp/want-but /tmp/got-but || { diff /tmp/want-but /tmp/got-but | head; fail "$4: content differs"; }
}
# ipu_chunk_sums FILE: the sha256 of each 1 MiB chunk of FILE, one a line ("EIO" for a chunk
# that fails to read).
ipu_chunk_sums() {
	n=$((($(stat -c %s "$1") + 1048575) / 1048576))
	i=0
	while [ $i -lt $n ]; do
		if dd if="$1" bs=1048576 skip=$i count=1 2>/tmp/dd.err >/tmp/chunk; then
			sha256sum </tmp/chunk | cut -d' ' -f1
		elif grep -qE "Input/output error|I/O error" /tmp/dd.err; then
			echo EIO
		else
			fail "chunk $i of $1: $(cat /tmp/dd.err), not EIO"
		fi
		i=$((i + 1))
	done
}
# ipu_check_overwritten MNT FILE OLD NEW: FILE of the mount MNT was published with the chunks
# whose sums are in OLD and has been overwritten in place on the origin with those in NEW: each
# chunk reads its old bytes (cached before) or fails with EIO, never the new bytes nor others;
# the chunks not cached before fail; reading the whole file fails. Twice, the second time after
# dropping the page cache. Sets IPU_EIO (how many chunks failed).
ipu_check_overwritten() {
	for pass in 1 2; do
		ipu_chunk_sums "$1/$2" >/tmp/got-chunks
		assert_eq "$(wc -l <"$3")" "$(wc -l </tmp/got-chunks)" "pass $pass: chunks of $2"
		IPU_EIO=0
		i=1
		while read -r got; do
			old=$(sed -n "${i}p" "$3")
			new=$(sed -n "${i}p" "$4")
			if [ "$got" = EIO ]; then
				IPU_EIO=$((IPU_EIO + 1))
			else
				[ "$got" != "$new" ] || fail "pass $pass: chunk $i of $2 reads the overwritten bytes"
				assert_eq "$old" "$got" "pass $pass: chunk $i of $2"
			fi
			i=$((i + 1))
		done </tmp/got-chunks
		[ $IPU_EIO -ge 1 ] || fail "pass $pass: no chunk of the overwritten $2 failed"
		if cat "$1/$2" >/dev/null 2>&1; then fail "pass $pass: the whole of $2 read without an error"; fi
		drop_caches
	done
}
# ipu_overwrite_v1 MNT: the operator reuses v1's directory: v1's model-00002 is overwritten in
# place (the same inode) with v2's bytes under the v1 mount MNT: ipu_check_overwritten, logged
# once with the path and "re-publish", counted; every other file of MNT still reads v1.
ipu_overwrite_v1() {
	f=model-00002.safetensors
	ipu_chunk_sums $IPU/v1/$f >/tmp/old-chunks
	cp $IPU/v2/$f $IPU/v1/$f
	ipu_chunk_sums $IPU/v1/$f >/tmp/new-chunks
	ipu_check_overwritten "$1" $f /tmp/old-chunks /tmp/new-chunks
	assert_eq 1 "$(grep -c "in-place file share/m/v1/$f .*changed since it was published.*re-publish" $BC_LOG)" \
		"log lines naming the overwritten file"
	[ "$(bc_stat verify_failures)" -ge 1 ] || fail "no verify failure counted"
	ipu_check_but "$1" /tmp/want-v1 $f "the v1 mount after $f was overwritten"
}
# ipu_publish_tuned: model tuned, published in place, shares v3's model-00003 (an identical copy
# in a directory of its own) and has a small file; its sums in /tmp/want-tuned.
ipu_publish_tuned() {
	mkdir -p /srv/origin/share/tuned
	cp $IPU/v3/model-00003.safetensors /srv/origin/share/tuned/
	echo '{"base_model": "m"}' >/srv/origin/share/tuned/config.json
	tree_sums /srv/origin/share/tuned >/tmp/want-tuned
	blobcachectl publish --in-place --catalogue /srv/catalogue tuned /srv/origin/share/tuned /srv/origin \
		>/dev/null || fail "publish --in-place tuned"
}
# ipu_publish_v4: m updated in place: v3's model-00003 rewritten (the same inode, other bytes)
# and v3's directory re-published (v4, sums in /tmp/want-v4); the daemon re-reads the catalogue
# (blobcachectl status; a node notices by itself within cull_interval or at the next mount).
ipu_publish_v4() {
	dd if=/dev/urandom of=$IPU/v3/model-00003.safetensors bs=1048583 count=2 conv=notrunc 2>/dev/null
	blobcachectl publish --in-place --force --catalogue /srv/catalogue m $IPU/v3 /srv/origin \
		>/dev/null || fail "publish --in-place v4"
	ipu_sums $IPU/v3 >/tmp/want-v4
	blobcachectl --run-dir /run/blobcached status >/dev/null || fail "blobcachectl status"
}
# ipu_retire_old: the operator retires tuned and removes the old version directories, the
# snapshot blob only they used and the old metadata blobs; then a full stop and start of the
# daemon, after which no retained version but the current one of m is left.
ipu_retire_old() {
	blobcachectl unpublish --catalogue /srv/catalogue tuned /srv/origin >/dev/null || fail "unpublish tuned"
	rm -rf $IPU/v1 $IPU/v2 /srv/origin/hub/blobs/x1 /srv/origin/share/tuned
	bc_remove_old_blobs
	bc_stop
	bc_start || fail "daemon start without the old versions"
	for d in $(ls /var/lib/blobcached/versions); do
		[ "$d" = "$(bc_model_blob m meta)" ] || fail "retained versions not dropped: $(ls /var/lib/blobcached/versions)"
	done
}

# ---- two models sharing files (shared-files scenarios) ------------------------------------

# bc_make_shared: /srv/src/base (two weight shards, small files) and /srv/src/tune, a fine-tune
# holding base's first shard as it is and its second under another name, plus a shard and an
# adapter of its own and small files of its own. Publishes both with publish's default layout
# (a blob per file of 1 MiB or more).
bc_make_shared() {
	mkdir -p /srv/src/base/shards /srv/src/tune/shards /srv/src/tune/orig
	dd if=/dev/urandom of=/srv/src/base/shards/model-00001.safetensors bs=1048576 count=16 2>/dev/null
	dd if=/dev/urandom of=/srv/src/base/shards/model-00002.safetensors bs=65536 count=130 2>/dev/null
	dd if=/dev/urandom of=/srv/src/base/tokenizer.json bs=1000 count=300 2>/dev/null
	echo '{"architectures": ["BaseForCausalLM"]}' >/srv/src/base/config.json
	cp /srv/src/base/shards/model-00001.safetensors /srv/src/tune/shards/
	cp /srv/src/base/shards/model-00002.safetensors /srv/src/tune/orig/base-00002.safetensors
	cp /srv/src/base/tokenizer.json /srv/src/tune/
	dd if=/dev/urandom of=/srv/src/tune/shards/model-00002.safetensors bs=65536 count=130 2>/dev/null
	dd if=/dev/urandom of=/srv/src/tune/adapter.bin bs=1000 count=3000 2>/dev/null
	echo '{"architectures": ["TuneForCausalLM"]}' >/srv/src/tune/config.json
	bc_publish base /srv/src/base --blob-min 1M >/tmp/publish-base.out || fail "publish base"
	bc_publish tune /srv/src/tune --blob-min 1M >/tmp/publish-tune.out || fail "publish tune"
	cat /tmp/publish-tune.out
}

# bc_blob_sizes ENTRY: "digest size" of every blob of a model entry.
bc_blob_sizes() {
	awk '/^\[blob / { d = $2; sub(/\]$/, "", d) } /^size *=/ && d != "" { print d, $3; d = "" }' "$1"
}
# bc_shared_digests: the data blobs base and tune both list.
bc_shared_digests() {
	bc_blob_sizes /srv/catalogue/base.model | sort >/tmp/base.blobs
	bc_blob_sizes /srv/catalogue/tune.model | sort >/tmp/tune.blobs
	grep -Fxf /tmp/base.blobs /tmp/tune.blobs | cut -d' ' -f1
}
# bc_sum_sizes: the sum of the sizes on stdin ("digest size" lines).
bc_sum_sizes() { awk '{ s += $2 } END { print s + 0 }'; }
# bc_shared_figures: after bc_make_shared, the data blobs both models list (two) in $shared, and
# the bytes of base's blobs in $sum_base, of tune's in $sum_tune, of their union in $union, of
# the shared ones in $shared_bytes.
bc_shared_figures() {
	shared=$(bc_shared_digests)
	assert_eq 2 "$(echo "$shared" | wc -l)" "data blobs listed by both models"
	sum_base=$(bc_sum_sizes </tmp/base.blobs)
	sum_tune=$(bc_sum_sizes </tmp/tune.blobs)
	union=$(sort -u /tmp/base.blobs /tmp/tune.blobs | bc_sum_sizes)
	shared_bytes=$(grep -Fxf /tmp/base.blobs /tmp/tune.blobs | bc_sum_sizes)
}
# bc_read_both_and_compare BASE_MNT TUNE_MNT: base and tune read at the same time through their
# mounts (the shared blobs through both at once); the sha256 of every file equal to its
# source's (/tmp/base.src, /tmp/tune.src).
bc_read_both_and_compare() {
	tree_sums "$1" >/tmp/base.mnt &
	pb=$!
	tree_sums "$2" >/tmp/tune.mnt || fail "reading tune"
	wait $pb || fail "reading base"
	tree_sums /srv/src/base >/tmp/base.src
	tree_sums /srv/src/tune >/tmp/tune.src
	cmp /tmp/base.src /tmp/base.mnt || { diff /tmp/base.src /tmp/base.mnt; fail "base differs"; }
	cmp /tmp/tune.src /tmp/tune.mnt || { diff /tmp/tune.src /tmp/tune.mnt; fail "tune differs"; }
}
# bc_check_union_fetched FRONTEND: after bc_read_both_and_compare (figures: bc_shared_figures),
# the origin gave every byte of every blob at least once, and nothing twice but at most one chunk.
bc_check_union_fetched() {
	origin=$(bc_stat origin_bytes)
	note "FIGURE $1: origin bytes $origin for a union of $union ($((sum_base + sum_tune)) if nothing were shared; deduped chunks $(bc_stat chunks_deduped))"
	[ "$origin" -ge "$union" ] || fail "origin bytes $origin < the union of the blobs $union"
	[ "$origin" -le $((union + 1048576)) ] || fail "origin bytes $origin > union $union + 1 chunk: shared bytes fetched twice?"
	pass "two models sharing $shared_bytes bytes read at once: $origin origin bytes for a union of $union, every sha256 right"
}

# ---- a cache volume on ext4 over device-mapper over a loop file, whose table a scenario swaps
# at run time to make the volume fail or stall (cache-volume-fail, ublk-volume-stall). The
# scenario declares --with-binary /usr/sbin/dmsetup and --with-kernel-module dm-mod plus its
# targets' modules.
BC_DM_SECTORS= BC_DM_LINEAR=
# bc_dm_volume SIZE TARGET_MODULE...: insmod dm-mod and the target modules, a loop file of SIZE
# as /dev/loop0 and /dev/mapper/cachevol mapped linearly onto it (BC_DM_LINEAR; its size in
# 512-byte sectors: BC_DM_SECTORS).
bc_dm_volume() {
	_size=$1
	shift
	insmod /usr/share/blobcache-tests/modules/dm-mod.ko || fail "insmod dm-mod"
	for _m in "$@"; do
		insmod "/usr/share/blobcache-tests/modules/$_m.ko" || fail "insmod $_m"
	done
	modprobe loop 2>/dev/null
	truncate -s "$_size" /srv/cachevol.img
	losetup /dev/loop0 /srv/cachevol.img || fail "losetup"
	BC_DM_SECTORS=$(blockdev --getsz /dev/loop0)
	BC_DM_LINEAR="0 $BC_DM_SECTORS linear /dev/loop0 0"
	dmsetup create cachevol --table "$BC_DM_LINEAR" || fail "dmsetup create"
	dmsetup mknodes
}

# bc_dm_table TABLE: swap cachevol's table (I/O held, not the file system frozen, in between).
bc_dm_table() {
	dmsetup suspend --nolockfs cachevol && dmsetup load cachevol --table "$1" && dmsetup resume cachevol ||
		fail "dmsetup: $1"
}
