# shellcheck shell=sh
# tests/vm/lib.sh: generic helpers for VM scenarios (busybox sh). In the guest:
#   . /usr/share/blobcache-tests/lib.sh
# Daemon-specific helpers belong elsewhere; this file stays generic.

# fail MSG: the scenario fails with MSG.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# pass MSG: record a step that succeeded.
pass() {
	echo "PASS: $*"
}

# skip MSG: the scenario cannot run here (exit 77, reported as SKIP).
skip() {
	echo "SKIP: $*"
	exit 77
}

# note MSG: a timestamped progress line (seconds since the scenario started).
note() {
	echo "[$(($(date +%s) - _lib_start))s] $*"
}
_lib_start=$(date +%s)

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

# assert_ne UNEXPECTED ACTUAL WHAT
assert_ne() {
	[ "$1" != "$2" ] || fail "$3: expected anything but '$1'"
}

# assert_contains NEEDLE HAYSTACK WHAT
assert_contains() {
	case $2 in
	*"$1"*) ;;
	*) fail "$3: expected to contain '$1', got '$2'" ;;
	esac
}

# assert_file_exists PATH
assert_file_exists() {
	[ -e "$1" ] || fail "expected $1 to exist"
}

# assert_ok CMD...: run CMD; fail with its exit status if it fails.
assert_ok() {
	"$@" || fail "'$*' failed with exit status $?"
}

# assert_fails CMD...: run CMD; fail if it succeeds.
assert_fails() {
	if "$@"; then
		fail "'$*' succeeded; expected a failure"
	fi
}

# wait_for CMD TIMEOUT [INTERVAL]: run the shell command CMD (a string) until it succeeds; fail
# after TIMEOUT seconds. INTERVAL defaults to 0.1 s.
wait_for() {
	_wf_deadline=$(($(date +%s) + $2))
	while ! eval "$1"; do
		[ "$(date +%s)" -lt "$_wf_deadline" ] || fail "timed out after $2 s waiting for: $1"
		sleep "${3:-0.1}"
	done
}

# wait_until CMD TIMEOUT [INTERVAL]: as wait_for, but returns 1 after TIMEOUT seconds instead
# of failing the scenario.
wait_until() {
	_wu_deadline=$(($(date +%s) + $2))
	while ! eval "$1"; do
		[ "$(date +%s)" -lt "$_wu_deadline" ] || return 1
		sleep "${3:-0.1}"
	done
}

# now: seconds since the epoch.
now() {
	date +%s
}

# elapsed_since START: seconds since START (a value of now).
elapsed_since() {
	echo $(($(date +%s) - $1))
}

# ms: milliseconds since boot (for MEASURED lines: busybox date has no sub-second format).
ms() {
	awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# module_loaded NAME: whether module NAME is in /proc/modules.
module_loaded() {
	grep -q "^$1 " /proc/modules
}

# fs_type PATH: the filesystem type of the mount at PATH (empty if PATH is not a mount point).
fs_type() {
	awk -v m="$1" '$2 == m { t = $3 } END { print t }' /proc/mounts
}

# make_file PATH SIZE_MB SEED: write SIZE_MB MiB of deterministic pseudo-random data. Every 4 KiB
# page is unique (it starts with a 32-byte label naming the seed and page number), so no two
# chunks of an image deduplicate; the rest of each page comes from an 8 KiB pool drawn from
# awk's srand(SEED). The same busybox gives the same bytes on the host:
#   busybox sh -c '. tests/vm/lib.sh; make_file /tmp/f 4 1'
make_file() {
	awk -v seed="$3" -v pages="$(($2 * 256))" 'BEGIN {
		srand(seed)
		for (i = 0; i < 8192; i++)
			pool = pool sprintf("%c", 1 + int(rand() * 255))
		for (p = 0; p < pages; p++) {
			printf "%-31.31s\n%s", "blobcache s=" seed " p=" p,
				substr(pool, 1 + (p * 4099) % 4096, 4064)
		}
	}' >"$1" || fail "make_file $1 failed"
}

# file_size PATH: size in bytes.
file_size() {
	stat -c %s "$1"
}

# checksum PATH: sha256 of a file.
checksum() {
	sha256sum "$1" | cut -d' ' -f1
}
