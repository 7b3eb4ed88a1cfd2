/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The bounded cache: the daemon culls the cache volume itself (in on-demand mode the kernel
 * leaves culling to the daemon, and refuses cache writes below bstop).
 *
 *  - Usage: the front end reports OPEN, READ and CLOSE of each cache file (volume key + cookie
 *    key); last uses are kept in state_dir/usage (written atomically) across restarts.
 *  - Watermarks: every cull_interval the volume is checked with statfs; above high_watermark
 *    the least recently used cache files that are neither pinned nor in use are culled until
 *    the volume is below low_watermark.
 *  - Purge: every purge_check_every, the files of models unused for purge_unused_after (and
 *    neither pinned nor in use) are removed, with their verified metadata copy.
 *  - The removal itself is the kernel's `cull` (space_kernel_ops): it refuses a file the
 *    kernel holds (EBUSY), so a file being opened, mounted or written cannot be culled; the
 *    daemon also never tries one with an open object or a warm in progress.
 *  - For the operations layer (ops/cachectl.c: the status, warm, evict, pin and unpin verbs):
 *    pins, holds on models being warmed, the sink of an open blob, per-model figures and
 *    eviction. This module knows nothing of the control socket or of mounting.
 *
 * Policy decisions are the pure functions of spacepolicy.h. Everything here runs in the loop
 * thread, except the periodic walk of the cache directories (spacescan.h), which runs in a scan
 * thread of its own so that a cold disk never stalls the loop.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct config;
struct models;
struct fill;
struct fill_sink;
struct catalogue_model;
struct catalogue_blob;
struct space;
struct space_entry; /* one cache file's usage record: the front end's handle */

/* One cache file a front end keeps in a layout of its own (ublk: <cache dir>/ublk/<digest>
 * with its chunk map), as its list_files call reports it. */
struct space_file_info {
	const char *volume, *key; /* its identity in the usage records */
	uint64_t bytes;		  /* allocated on disk, the file and its map */
	uint64_t cached;	  /* bytes of the blob its chunk map says are cached */
	int64_t mtime_ms;	  /* last write, wall clock: a last use when no record has one */
	bool leftover; /* not a cache file: a leftover of key (ublk: a map without its file) for
			* remove_leftover */
};
typedef void (*space_file_fn)(void *ctx, const struct space_file_info *fi);

/* What the kernel front end provides. On-demand: cull and find_sink (the files are cachefiles'
 * <cache dir>/cache/I<volume>/@xx/D<key>, found by the space manager). A front end with files
 * of its own (ublk) provides the others instead. */
struct space_kernel_ops {
	/* Remove cache file `name` of directory `dir` (absolute) if the kernel does not hold it:
	 * 0, -EBUSY (in use), -ENOENT/-ESTALE (gone), or -errno. */
	int (*cull)(void *userdata, const char *dir, const char *name);
	/* The sink of the open object for (volume, key), with a reference taken; NULL if none. */
	struct fill_sink *(*find_sink)(void *userdata, const char *volume, const char *key);

	/* Its files all live in this one volume, keyed by blob digest (the metadata blob's too);
	 * NULL: cachefiles' keys (volume per model, the metadata blob by model name). */
	const char *file_volume;
	/* Call fn once per cache file it keeps. Runs in the space manager's scan thread, never the
	 * loop thread: it may read only what does not change while the front end lives (its
	 * directory's name), and must not change anything; a leftover to remove is reported as
	 * such (fi->leftover). */
	void (*list_files)(void *userdata, space_file_fn fn, void *ctx);
	/* Remove leftover key that list_files reported, if it still is one (loop thread). */
	void (*remove_leftover)(void *userdata, const char *key);
	/* Remove a file list_files reported, unless a device uses it: 0, -EBUSY, -ENOENT (gone)
	 * or -errno. */
	int (*remove_file)(void *userdata, const char *volume, const char *key);
	/* The sink of blob b whether or not a device serves it (its cache file and map are opened
	 * if not), for a warm; NULL on error (logged). Give it back with put_sink. */
	struct fill_sink *(*open_sink)(void *userdata, const struct catalogue_blob *b);
	void (*put_sink)(void *userdata, struct fill_sink *s);
	/* Does the front end have devices for model (made for a mount, or being removed)? source
	 * gets the device a mount of it names (e.g. "/dev/ublkb3"; "" while being made). */
	bool (*model_device)(void *userdata, const char *model, char *source, size_t len);
};

/* What /metrics reports (updated at each check). */
struct space_model_report {
	char name[65];
	char meta[65];	 /* the version the figures are of (its metadata blob's digest) */
	uint64_t size;	 /* sum of its blobs, page-aligned */
	uint64_t cached; /* bytes of it in the cache */
	bool pinned;
};

struct space_report {
	uint64_t volume_bytes, volume_used_bytes; /* statfs of the cache volume */
	uint64_t cache_bytes;			  /* allocated by the cache files */
	uint64_t files;
	unsigned high_watermark, low_watermark;
	uint64_t culled_files, culled_bytes; /* by the watermark cull */
	uint64_t purged_files, purged_bytes; /* by the purge of unused models */
	uint64_t evicted_files, evicted_bytes;
	uint64_t retired_files, retired_bytes; /* of no catalogue model (unpublished, or an old
						* version), once unused */
	uint64_t cull_busy;		       /* cull refused by the kernel (file in use) */
	size_t n_models;
	struct space_model_report *models;
};

/* Load state_dir/usage, start the timers. Returns 0 or -errno (logged). */
int space_new(struct loop *loop, const struct config *cfg, struct models *models, struct fill *fill,
	      struct space **out);
/* Give the kernel action (before any use); the first walk of the cache starts then, in the
 * scan thread. */
void space_set_kernel(struct space *sp, const struct space_kernel_ops *ops, void *userdata);
/* Has a walk of the cache been applied (the records and the report say what is cached)? */
bool space_scanned(const struct space *sp);
/* Stop the checks, and wait for a scan in flight (it reads the front end's directory): before
 * the front end stops. space_free does it too. */
void space_stop(struct space *sp);
/* Saves the usage file. */
void space_free(struct space *sp);

/* An object was opened on (volume, key) (not NUL-terminated); fd is its cache file (not owned,
 * valid until space_use_close). Returns the handle for the calls below, or NULL (ENOMEM: the
 * file is then simply not tracked). */
struct space_entry *space_use_open(struct space *sp, const char *volume, size_t volume_len,
				   const char *key, size_t key_len, int fd);
void space_use_touch(struct space_entry *e);		       /* a READ */
void space_use_error(struct space_entry *e);		       /* a failed READ */
void space_use_close(struct space *sp, struct space_entry *e); /* the object is gone */

const struct space_report *space_get_report(struct space *sp);

/* Who pinned a model (flags): the configuration ([model NAME] pin = yes), a run-time pin. */
enum space_pin {
	SPACE_PIN_NONE = 0,
	SPACE_PIN_RUNTIME = 1 << 0,
	SPACE_PIN_CONFIG = 1 << 1,
};
enum space_pin space_model_pin(const struct space *sp, const char *model);

/* Add or remove a run-time pin, saved in the usage file at once (a failed save is logged: the
 * pin then holds until the daemon stops). Unpinning a model that is not pinned at run time does
 * nothing. Returns 0 or -ENOMEM. */
int space_set_pin(struct space *sp, const char *model, bool pin);

/* Holds: a model held (being warmed) is never culled or purged. Hold returns 0 or -ENOMEM;
 * every successful hold is released once. */
int space_model_hold(struct space *sp, const char *model);
void space_model_release(struct space *sp, const char *model);
unsigned space_model_holds(const struct space *sp, const char *model);

/* The sink of blob `b` of model `m`, with a reference taken (give it back with space_put_sink):
 * on-demand, that of its open object, NULL when the kernel has none open; ublk, its cache file's
 * whether mounted or not (NULL on error). */
struct fill_sink *space_find_sink(struct space *sp, const struct catalogue_model *m,
				  const struct catalogue_blob *b);
void space_put_sink(struct space *sp, struct fill_sink *s);
/* Does space_find_sink give sinks of models that are not mounted (no private mount needed)? */
bool space_sinks_without_mount(const struct space *sp);
/* Has the front end block devices for model (see space_kernel_ops.model_device)? false in
 * on-demand mode. */
bool space_model_device(const struct space *sp, const char *model, char *source, size_t len);

/* Per-model figures, after a fresh scan of the cache (the report is refreshed too). */
struct space_model_status {
	const struct catalogue_model *model; /* valid until the next models_* call */
	uint64_t size;			     /* sum of its blobs, page-aligned */
	uint64_t cached;		     /* bytes of it in the cache */
	int64_t last_use_ms;		     /* wall clock, ms */
	unsigned open_objects;		     /* objects the front end has open on its files */
	unsigned errors;		     /* failed READs on its files */
};
/* Every catalogue model, in catalogue order: *out is malloc'd (free() it), *n its length.
 * Returns 0 or -ENOMEM. From the records as they are: call it after space_after_scan for fresh
 * figures. */
int space_status_now(struct space *sp, struct space_model_status **out, size_t *n);

/* Call fn(sp, ctx) in the loop thread once a walk of the cache that starts after this call has
 * been applied (the walk runs in the scan thread: the loop goes on meanwhile). Returns the
 * wait, for space_wait_cancel before fn is called, or NULL (ENOMEM). fn is not called after
 * space_stop. */
struct space_wait;
typedef void (*space_scanned_fn)(struct space *sp, void *ctx);
struct space_wait *space_after_scan(struct space *sp, space_scanned_fn fn, void *ctx);
void space_wait_cancel(struct space *sp, struct space_wait *w);

struct space_evict_result {
	unsigned files; /* removed */
	uint64_t bytes; /* removed */
	unsigned kept;	/* shared with a pinned model: not removed */
	unsigned busy;	/* held by the kernel: not removed */
};
/* Remove model m's cache files (not those shared with pinned models) and its verified metadata
 * copy, as the records know them: call it from a space_after_scan callback, so that they are
 * fresh. The caller checks that it is not mounted. Returns 0; -EPERM if it is pinned; -EBUSY
 * before removing anything if it has open objects or a hold, or after the others are removed
 * if the kernel refused some files (res->busy > 0). */
int space_evict(struct space *sp, const struct catalogue_model *m, struct space_evict_result *res);
