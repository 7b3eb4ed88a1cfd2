/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Space policy: which cache files go, and when. Pure functions over plain data, no I/O, so that
 * the decisions (LRU order, watermarks, purge of unused models, pins) are unit-tested on their
 * own. The runtime that feeds them (scanning the cache, usage from the front end, the kernel's
 * `cull`) is space.c.
 *
 * Vocabulary:
 *  - a *file* is one cache file, named by the cachefiles volume key ("erofs,<fsid|domain_id>")
 *    and the cookie key (a blob digest, or the model name for the metadata blob);
 *  - a *model* owns every file whose key is its name or one of its blob digests; a file shared
 *    by several models (same blob) has several owners;
 *  - *in use*: an object is open on the file (the model is mounted, being opened or warmed):
 *    never culled, never purged;
 *  - *pinned*: a model pinned by the configuration or at run time; its files, shared ones
 *    included, are never culled nor purged.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct space_file {
	char *volume;	  /* "erofs,NAME" */
	char *key;	  /* cookie key: digest or model name */
	uint64_t bytes;	  /* allocated on disk (st_blocks x 512) */
	int64_t last_use; /* unix ms of the last OPEN/READ/CLOSE (or the file's mtime) */
	unsigned in_use;  /* open objects (plus warms) on it */
	bool present;	  /* found on disk by the last scan */
	bool pinned;	  /* computed by space_propagate_pins */
	size_t *owners;	  /* indexes into the model array (computed) */
	size_t n_owners;
};

struct space_model {
	const char *name;
	bool pinned;	  /* by configuration or at run time */
	unsigned in_use;  /* warms in progress (open objects are counted on its files) */
	int64_t last_use; /* computed: latest last_use of its files, 0 if none */
	bool busy;	  /* computed: in_use, or one of its files in use */
};

/* Pure: mark each file pinned if one of its owners is pinned; compute each model's last_use and
 * busy from its files. Files and models must have their owners filled in. */
void space_propagate(struct space_file *files, size_t n_files, struct space_model *models,
		     size_t n_models);

/* Pure: may this file be culled at all (present, not pinned, not in use)? */
bool space_file_cullable(const struct space_file *f);

/* Pure: is the volume above the high watermark (used/total > high %)? */
bool space_over_high(uint64_t used, uint64_t total, unsigned high_percent);

/* Pure: bytes to free to get down to the low watermark (0 if already there). */
uint64_t space_bytes_over_low(uint64_t used, uint64_t total, unsigned low_percent);

/*
 * Pure: the watermark cull. If used/total is above high %, write into order[] the indexes of the
 * cullable files, least recently used first (ties: by volume, then key), just enough of them to
 * free space_bytes_over_low(); returns how many (0 when below high). order has n_files entries.
 */
size_t space_plan_cull(const struct space_file *files, size_t n_files, uint64_t used,
		       uint64_t total, unsigned high_percent, unsigned low_percent, size_t *order);

/* Pure: is this model past its age and free to purge (not pinned, not busy, used before
 * now - age; a model never used (last_use 0) is not purged)? */
bool space_model_purgeable(const struct space_model *m, int64_t now_ms, int64_t age_ms);

/*
 * Pure: the purge of unused models. Writes into order[] the indexes of the files to remove:
 * cullable files all of whose owners are purgeable, and cullable files of no model (left by a
 * model gone from the catalogue) unused for age_ms. Returns how many.
 */
size_t space_plan_purge(const struct space_file *files, size_t n_files,
			const struct space_model *models, size_t n_models, int64_t now_ms,
			int64_t age_ms, size_t *order);

/* ---- persisted state: state_dir/usage ---- */

struct space_record {
	char *volume, *key;
	int64_t last_use;
};

struct space_state {
	struct space_record *records;
	size_t n_records;
	char **pins; /* models pinned at run time */
	size_t n_pins;
};

/*
 * Pure: parse the text of the usage file. Lines: "use UNIX_MS VOLUME KEY", "pin MODEL",
 * comments (#) and blank lines. A malformed line is skipped: *bad_lines counts them and
 * *first_bad is the first one's number (1-based), so that one damaged line loses one record,
 * not all. Returns 0 or -ENOMEM.
 */
int space_state_parse(const char *text, struct space_state *st, unsigned *bad_lines,
		      unsigned *first_bad);

/* Pure: format the state as text that parses back to the same state. NULL on ENOMEM. */
char *space_state_format(const struct space_state *st);

int space_state_add_record(struct space_state *st, const char *volume, const char *key,
			   int64_t last_use);
int space_state_add_pin(struct space_state *st, const char *model);
void space_state_free(struct space_state *st);
