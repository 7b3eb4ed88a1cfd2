/* SPDX-License-Identifier: GPL-2.0-or-later */
/* mount.blobcache / umount.blobcache: the command line that mount(8) and umount(8) give an
 * external helper, and the -o options. Pure functions (no I/O): tests/unit/test-mountopts. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* mount(8)'s exit codes (the ones a helper returns). */
#define MOUNT_EX_SUCCESS 0
#define MOUNT_EX_USAGE	 1  /* incorrect invocation or permissions */
#define MOUNT_EX_SYSERR	 2  /* out of memory, cannot fork... */
#define MOUNT_EX_FAIL	 32 /* mount failure */

#define MOUNT_HELPER_DEFAULT_TIMEOUT_MS 0 /* fail at once when the daemon is down */
#define MOUNT_HELPER_MAX_TIMEOUT_MS	(3600 * 1000ULL)

struct mount_opts {
	unsigned long long timeout_ms; /* timeout=: how long to wait for the daemon */
	char run_dir[PATH_MAX];	       /* run_dir=: where control.sock is */
	char erofs[256];	       /* domain_id=, device=: passed on to the daemon's mount */
};

struct mount_args {
	const char *source;  /* mount: the model name */
	const char *target;  /* the mount point */
	const char *options; /* -o, or NULL */
	bool sloppy;	     /* -s: unknown options are ignored */
	bool fake;	     /* -f: do everything but the mount */
	bool no_mtab;	     /* -n: do not write /run/mount/utab */
	bool verbose;	     /* -v */
	bool lazy;	     /* umount -l (the daemon always detaches lazily) */
	bool force;	     /* umount -f */
};

/*
 * Parse the helper's command line. mount: "MODEL DIR [-sfnvr] [-N NS] [-o OPTS] [-t TYPE]";
 * umount (is_umount): "DIR [-nlfvrd] [-N NS] [-t TYPE]". Options may come before, between or
 * after the operands, as mount(8) may place them. Pointers in `out` point into argv.
 * Returns 0, or -EINVAL with the reason in err.
 */
int mount_args_parse(int argc, char **argv, bool is_umount, struct mount_args *out, char *err,
		     size_t err_len);

/*
 * Parse the comma-separated -o string (NULL: none) into `out` (defaults first). Accepted and
 * not passed on: what fstab, systemd and mount(8) add (defaults, nofail, _netdev, auto,
 * noauto, x-*, comment=, user...), and the generic flags the daemon's read-only, nosuid,
 * nodev mount satisfies or makes moot (ro, rw, nosuid, nodev, suid, dev, exec, atime
 * variants, sync, async). Refused: fsid= (the model is the source), noexec and other
 * options that cannot be honoured, malformed values; with `sloppy`, unknown options are
 * ignored instead. Returns 0, or -EINVAL with the reason in err.
 */
int mount_opts_parse(const char *optstr, bool sloppy, struct mount_opts *out, char *err,
		     size_t err_len);
