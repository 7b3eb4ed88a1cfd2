/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Managed mounts and their health: the EROFS mounts of configured models ([model NAME] mount =)
 * and of `blobcachectl mount` (kept in state_dir/mounts), and the NFS origin ([origin] nfs =).
 *
 * Mounting, unmounting and probing run in threads of their own: a mount of a model blocks until
 * this daemon's loop answers the kernel's OPEN, and anything on NFS may hang. Their results come
 * back to the loop thread, which owns all the state. libmount's monitor (kernel mountinfo events)
 * makes the loop look at once; a probe (statfs + stat of the mount's root, with a timeout) runs
 * every second. A mount gone from mountinfo is mounted again at once; a mount whose root is
 * stale, or whose probes failed or hung MOUNT_FAILURE_THRESHOLD times in a row, is detached
 * (umount2 MNT_DETACH) and mounted again. Nothing under a mount point is ever removed.
 *
 * Model mounts sit on a shared bind mount of the mount point onto itself (the "anchor"), so
 * that a container which binds the mount point's parent with rslave (HostToContainer)
 * propagation sees the model mounted, and mounted again after a loss.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct control;
struct loop;
struct mounts;

/* Takes the managed mounts from the configuration and state_dir/mounts; nothing is mounted
 * yet. Returns 0 and *out, or -errno (logged). */
int mounts_new(struct loop *loop, const struct config *cfg, struct mounts **out);

/* Adopt what is already mounted, mount the rest, start the monitor and the probe timer, and
 * register the control verbs mount, umount and mounts. Call once the kernel device is bound
 * (the loop answers the mounts' OPENs once it runs). fresh_cache: the cache was bound anew (no
 * device holder or fd store handed it over, or no `restore`), so model mounts found in place
 * belong to the old binding and every read of them fails: they are replaced (lazy detach,
 * mount again), not adopted. Returns 0 or -errno (logged). */
int mounts_start(struct mounts *m, struct control *ctl, bool fresh_cache);

/* Look at every mount now and retry failed ones without waiting for their back-off (a network
 * link came up). Loop thread. */
void mounts_recheck(struct mounts *m, const char *why);

/* Readiness: false, with one reason per line in why, while a managed mount is not in place or
 * not answering. */
bool mounts_ready(const struct mounts *m, char *why, size_t why_len);

/* The managed mount of model `name` ([model] mount = or blobcachectl mount): true, with its
 * mount point (valid until the next mounts_* call) and whether it is mounted and answering;
 * false when the model has none. Loop thread. */
bool mounts_model_state(const struct mounts *m, const char *name, const char **path, bool *up);

/* Prometheus lines: state, remounts and last recovery time of every managed mount. */
void mounts_format_metrics(const struct mounts *m, FILE *f);

/* One line per mount for the status file. */
void mounts_print_status(const struct mounts *m, FILE *f);

/* A front end whose models mount from block devices (ublk) rather than by name (on-demand's
 * fsid=): it makes a model's devices before its mount and removes them after its unmount. */
typedef void (*mounts_attach_done_fn)(void *ctx, int result, const char *source,
				      const char *options);
struct mounts_blockdev_ops {
	/* Make the devices of model; done(ctx, 0, "/dev/...", "device=...") once they serve (at
	 * once if they do), or done(ctx, -errno, "", ""). Returns 0, or -errno (no done). */
	int (*attach)(void *userdata, const char *model, mounts_attach_done_fn done, void *ctx);
	/* The mount waiting as ctx is gone: done must not be called for it. */
	void (*cancel)(void *userdata, const char *model, void *ctx);
	/* The model is no longer mounted: remove its devices. */
	void (*detach)(void *userdata, const char *model);
};

/* Mount models through ops (before mounts_start). Without it, models mount by name. */
void mounts_set_blockdev(struct mounts *m, const struct mounts_blockdev_ops *ops, void *userdata);

/* Stop watching. Mounts stay in place (a restarted daemon adopts them); threads still blocked
 * in the kernel are left alone (the process is about to exit). */
void mounts_free(struct mounts *m);
