// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/caps.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include "log.h"
#include "macros.h"

/* What the running daemon needs, once /dev/cachefiles is bound:
 * - CAP_SYS_ADMIN: mount and unmount models (erofs over fscache) and NFS origins; the
 *   cachefiles device refuses every command (`restore`, `copen`, culling) without it.
 * - CAP_DAC_OVERRIDE: write the cache, state and run directories and the catalogue whatever
 *   their modes (an operator's chmod must not break serving).
 * - CAP_DAC_READ_SEARCH: read origin files and directories whatever their modes (an NFS
 *   export or a shared directory owned by another user).
 * - CAP_FOWNER: cull, rename and set the times and xattrs of cache files that the daemon
 *   does not own (files cachefiles created, or left by an earlier version).
 * Everything else (CAP_SETUID, CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_SYS_PTRACE...) goes; the
 * probe listens on a port above 1024 and needs no CAP_NET_BIND_SERVICE. */
static const cap_value_t keep[] = {
	CAP_SYS_ADMIN,
	CAP_DAC_OVERRIDE,
	CAP_DAC_READ_SEARCH,
	CAP_FOWNER,
};

static bool kept(cap_value_t c)
{
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++)
		if (keep[i] == c)
			return true;
	return false;
}

int caps_drop_to_serving(void)
{
	cap_t cur = NULL, want = NULL;
	cap_value_t kept_now[ARRAY_SIZE(keep)];
	char names[256] = "";
	size_t n = 0, len = 0;
	int r = 0;

	cur = cap_get_proc();
	if (!cur)
		return log_error_errno(errno, "cannot read the process capabilities");
	/* The bounding set first: dropping from it needs CAP_SETPCAP, which goes next. A
	 * capability already out of the bounding set (systemd's CapabilityBoundingSet=) needs
	 * nothing. */
	for (cap_value_t c = 0; c < (cap_value_t)cap_max_bits(); c++) {
		if (kept(c) || cap_get_bound(c) != 1)
			continue;
		if (cap_drop_bound(c) < 0) {
			r = log_error_errno(errno,
					    "cannot drop %s from the bounding set (needs "
					    "CAP_SETPCAP; run blobcached as root)",
					    cap_to_name(c));
			goto out;
		}
	}
	/* Effective and permitted: the kept ones that we have; inheritable and ambient empty. */
	want = cap_init();
	if (!want) {
		r = -errno;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(keep); i++) {
		cap_flag_value_t v = CAP_CLEAR;

		if (cap_get_flag(cur, keep[i], CAP_PERMITTED, &v) == 0 && v == CAP_SET)
			kept_now[n++] = keep[i];
	}
	if (n && (cap_set_flag(want, CAP_PERMITTED, (int)n, kept_now, CAP_SET) < 0 ||
		  cap_set_flag(want, CAP_EFFECTIVE, (int)n, kept_now, CAP_SET) < 0)) {
		r = log_error_errno(errno, "cannot build the capability set");
		goto out;
	}
	if (cap_set_proc(want) < 0) {
		r = log_error_errno(errno, "cannot drop capabilities");
		goto out;
	}
	if (CAP_AMBIENT_SUPPORTED())
		cap_reset_ambient();
	for (size_t i = 0; i < n; i++) {
		char *name = cap_to_name(kept_now[i]);

		len += snprintf(names + len, sizeof(names) - MIN(len, sizeof(names)), "%s%s",
				i ? "," : "", name ? name : "?");
		cap_free(name);
		if (len >= sizeof(names))
			break;
	}
	log_info("capabilities: kept %s; every other one dropped (effective, permitted, "
		 "bounding)",
		 n ? names : "none");
out:
	cap_free(cur);
	cap_free(want);
	return r;
}
