/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The pure parts of mount management (mounts.c does the syscalls and threads): what the mount
 * options are, whether mountinfo shows a managed mount in place, what to do after a probe, how
 * long to wait before the next attempt, and the state file of runtime mounts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct libmnt_table;

/* Defaults of [origin] nfs_options: soft, so that a dead server gives errors instead of hung
 * threads; timeo=30 (3 s) and retrans=2 bound one RPC to about 3 + 6 + 9 = 18 s over TCP,
 * under the default request_timeout of 30 s; retry=0 makes mount.nfs try once (the daemon
 * retries with its own back-off instead of mount.nfs's 2 minutes in the foreground). */
#define MOUNT_NFS_DEFAULT_OPTIONS "soft,timeo=30,retrans=2,retry=0"

#define MOUNT_PROBE_INTERVAL_MS 1000 /* a probe of every mount this often */
#define MOUNT_PROBE_TIMEOUT_MS	2000 /* a probe not back by then counts as failed */
#define MOUNT_FAILURE_THRESHOLD 3    /* consecutive failed probes before a mount is dead */
#define MOUNT_BACKOFF_FIRST_MS	500
#define MOUNT_BACKOFF_MAX_MS	30000

/* "fsid=NAME" or "fsid=NAME,EXTRA" into out, and ",domain_id=DOMAIN" if domain is not NULL and
 * EXTRA names no domain_id (an explicit one wins). Returns 0, or -ENAMETOOLONG if it does not
 * fit. */
int mount_erofs_options(const char *name, const char *extra, const char *domain, char *out,
			size_t len);

/* Is the EROFS mount of model name (fsid=NAME in its super options) at path in tb? */
bool mount_table_has_erofs(struct libmnt_table *tb, const char *path, const char *name);
/* Is a mount of fstype (e.g. "nfs" also matches "nfs4") with source at path in tb? */
bool mount_table_has_fs(struct libmnt_table *tb, const char *path, const char *fstype,
			const char *source);
/* Is there a mount at path in tb that is not EROFS (the shared anchor of a model mount)?
 * *shared tells whether it is in a shared peer group. */
bool mount_table_has_anchor(struct libmnt_table *tb, const char *path, bool *shared);

/* The outcome of one probe (or of a look at mountinfo). */
enum mount_probe_result {
	MOUNT_PROBE_OK,
	MOUNT_PROBE_MISSING, /* not in mountinfo: unmounted from outside */
	MOUNT_PROBE_FAILED,  /* statfs/stat failed (EIO, ETIMEDOUT, ...) */
	MOUNT_PROBE_HUNG,    /* not back within MOUNT_PROBE_TIMEOUT_MS */
	MOUNT_PROBE_STALE,   /* ESTALE or ENOTCONN: the mount's root is gone for good */
};

enum mount_action {
	MOUNT_ACTION_NONE,
	MOUNT_ACTION_REMOUNT,	     /* mount again (nothing is there) */
	MOUNT_ACTION_DETACH_REMOUNT, /* umount2(MNT_DETACH), then mount again */
};

struct mount_health {
	unsigned consecutive_failures;
};

/* Record a probe result and say what to do. A missing mount is remounted at once; a stale root
 * is detached at once; failures and hangs only after `threshold` in a row (a single slow probe
 * never triggers anything). An OK resets the count. */
enum mount_action mount_health_update(struct mount_health *h, enum mount_probe_result r,
				      unsigned threshold);

/* The delay before mount attempt number `failures + 1` after `failures` failed attempts: 0
 * for the first, then 500 ms doubling up to 30 s. */
uint64_t mount_backoff_ms(unsigned failures);

/* A runtime mount (blobcachectl mount), as kept in state_dir/mounts. */
struct mount_spec {
	char *name;    /* model */
	char *path;    /* mount point */
	char *options; /* extra EROFS options, or NULL */
};

/* The state file: one "model NAME PATH [OPTIONS]" line per mount ('#' comments, blank lines
 * allowed). Returns a malloc'ed text, or NULL (ENOMEM). */
char *mount_state_format(const struct mount_spec *specs, size_t n);
/* Parse it. Returns 0 with *out (free with mount_specs_free) and *n, or -EINVAL with "line N:
 * message" in err, or -ENOMEM. Paths must be absolute, names valid model names. */
int mount_state_parse(const char *text, struct mount_spec **out, size_t *n, char *err,
		      size_t err_len);
void mount_specs_free(struct mount_spec *specs, size_t n);
