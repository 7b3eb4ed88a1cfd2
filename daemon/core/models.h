/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's view of the catalogue directory: loaded at start, re-read when the directory
 * changes (a model published while the daemon runs is found without a restart), kept if a
 * re-read fails. Part of the fill core.
 *
 * Retained versions: a model re-published under its name (a new metadata blob) may still be
 * mounted in its old version, whose objects the kernel re-opens after a daemon restart. So a
 * copy of every model entry whose metadata was served is kept in
 * state_dir/versions/<meta digest>/NAME.model, and resolution falls back to these copies for
 * blob digests no current entry lists. A retained version is dropped (with the verified
 * metadata copy state_dir/meta/<digest>) once it is neither current nor mounted: at start-up
 * and whenever the catalogue changes. */
#pragma once

#include <stdbool.h>

#include "catalogue.h"

struct models;

/* state_dir: where retained versions live; NULL keeps none. Returns 0 or -errno (logged). */
int models_new(const char *dir, const char *state_dir, struct models **out);
void models_free(struct models *m);

/* Resolve a cookie key (not NUL-terminated). Re-reads the directory first if its change time
 * moved. A model name resolves in the current catalogue only; a digest in the current one,
 * else among the retained versions. NULL if unknown. The pointer is valid until the next
 * models_* call. */
const struct catalogue_blob *models_resolve(struct models *m, const char *key, size_t len,
					    const struct catalogue_model **model_out);

/* The version of model `name` whose metadata digest is `meta`: the current entry if it is that
 * one, else a retained copy. NULL if neither. Does not re-read the catalogue, so pointers from
 * the models_resolve() just before stay valid; this one until the next models_* call. */
const struct catalogue_model *models_find_version(struct models *m, const char *name,
						  const char *meta);

/* Where in-place blob `b` (one with a path) is to be read from now: the in-place blob of the
 * same digest and size that the current catalogue lists, b's own path first if some entry still
 * lists it there, else the first other; failing that, the same among the retained versions.
 * NULL if none. A cache object outlives the entry it was opened for (it serves every mount and
 * model with that digest, across re-publishes), and that entry's file may have been rewritten
 * or removed since while another entry's copy still holds the bytes. Does not re-read the
 * catalogue; the pointer is valid until the next models_* call. Asked before every fetch of an
 * in-place blob, so it is a binary search in an index of digests kept beside the catalogue. */
const struct catalogue_blob *models_locate(const struct models *m, const struct catalogue_blob *b);

/* The metadata blob of a model (listed by every valid entry). */
const struct catalogue_blob *models_meta_blob(const struct catalogue_model *model);

/* Keep a copy of model (whose metadata is being served) as a retained version, if not kept
 * already. Returns 0 or -errno; a failure only means the version cannot be served after a
 * restart once the catalogue moved on. */
int models_retain(struct models *m, const struct catalogue_model *model);

/* A front end that knows of uses of a version not visible as an EROFS mount with fsid=NAME
 * (e.g. a block device front end) says so here: fn(userdata, name, meta) true keeps it. */
void models_set_in_use(struct models *m,
		       bool (*fn)(void *userdata, const char *name, const char *meta),
		       void *userdata);

/* Drop retained versions that are neither current nor in use (see above). Done on every
 * catalogue change; at start-up the caller does it, once models_set_in_use() is set. */
void models_prune_versions(struct models *m);

const struct catalogue *models_catalogue(struct models *m);
