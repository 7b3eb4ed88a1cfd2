/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Retiring models on the origin: unpublish (remove a model's entry) and gc (remove the blobs no
 * entry references).
 *
 * A publish stores its blobs first and writes the entry last, so for a moment its blobs are
 * referenced by nothing. Two things keep gc from removing them:
 *  - the origin lock, ORIGIN/.lock: publish holds it shared from storing its first blob until
 *    its entry is written; gc holds it exclusive while it reads the entries and removes blobs
 *    (OFD locks, which NFSv4 carries to the server, so publishers and gc on different machines
 *    exclude each other too);
 *  - the grace period: a blob modified less than `grace` ago is kept, for writers that do not
 *    take the lock (blobs copied in by hand, an older blobcachectl). publish refreshes the
 *    modification time of a blob it reuses, so a reused blob counts as new.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define GC_DEFAULT_GRACE_MS (60ULL * 60 * 1000)

/* Take the origin lock (shared or exclusive), waiting for it. Returns the fd that holds it
 * (close it to release), or -errno (logged, naming ORIGIN/.lock). */
int origin_lock(const char *origin_dir, bool exclusive);

/* Refresh a reused blob's modification time (publish), so that gc's grace keeps it.
 * Returns 0 or -errno (-ENOENT: it is gone, store it again). */
int origin_touch_blob(const char *path);

struct gc_options {
	const char *origin_dir;
	uint64_t grace_ms;
	bool dry_run;
};

struct gc_result {
	unsigned entries;    /* model entries read */
	unsigned referenced; /* blobs they reference that are present */
	uint64_t referenced_bytes;
	unsigned removed; /* unreferenced and old enough (or would be, dry run) */
	uint64_t removed_bytes;
	unsigned young; /* unreferenced but within the grace period: kept */
	uint64_t young_bytes;
	unsigned missing; /* referenced by an entry but absent: reported */
	unsigned foreign; /* files in blobs/sha256 not named by a digest: kept */
};

/* Remove (or, dry run, list on stdout) the blobs of ORIGIN/blobs/sha256 that no
 * ORIGIN/models/NAME.model references and that were not modified within the grace period. An
 * entry that cannot be read or parsed stops everything before anything is removed (-EINVAL or
 * -errno, logged with the file and the fix): it could reference blobs. */
int gc_run(const struct gc_options *o, struct gc_result *res);

/* Remove model `name`'s entry from ORIGIN/models (and from catalogue_dir, if given), under the
 * origin lock. Returns 0; -ENOENT if neither had it; -errno (logged). Its blobs stay until gc. */
int unpublish_model(const char *name, const char *origin_dir, const char *catalogue_dir);
