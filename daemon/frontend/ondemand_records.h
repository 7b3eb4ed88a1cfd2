/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What each name-keyed cache file holds, and discarding it when a model was re-published.
 *
 * The kernel keys the metadata (primary) object of a mount by the fsid, a model name, and
 * checks nothing but the object size against the cache file (EROFS gives no coherency data):
 * a new version under the same name, with a metadata blob of the same size, would be read
 * from the old file. So when the daemon answers an OPEN of a metadata blob asked for by name,
 * it records the digest and size it served for (volume key, cookie key) in
 * state_dir/served/<volume key>/<cookie key>, and before answering a new mount's OPEN whose
 * record is missing or names another digest, it makes the cache file's coherency xattr
 * invalid, so that the kernel discards the file and starts a fresh object. Blobs keyed by
 * their digest never need this.
 *
 * Record file: "meta <64 hex>\nsize <decimal>\n", nothing else.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

struct od_record {
	char meta[DIGEST_HEX_LEN + 1];
	uint64_t size;
};

/* Parse a record's text (len bytes, not NUL-terminated, any content). 0 or -EINVAL. */
int od_record_parse(const char *text, size_t len, struct od_record *out);

/* Format a record into buf. Returns the length, or -ENOBUFS if buf is too small. */
int od_record_format(const struct od_record *r, char *buf, size_t len);

enum od_open_action {
	OD_SERVE_CURRENT,	  /* the catalogue's version; the cache file (if any) holds it */
	OD_SERVE_CURRENT_DISCARD, /* the catalogue's version, after discarding the cache file */
	OD_SERVE_RECORDED,	  /* the recorded version: a live mount was made with it */
};

/* What to serve for an OPEN of a name-keyed metadata object. rec: the record, NULL if none.
 * live: the OPEN is the kernel re-opening the object of a mount already in place (after a
 * restart), not a new mount. file_exists: a cache file for the keys exists. Pure. */
enum od_open_action od_decide(const struct od_record *rec, const char *current_meta, bool live,
			      bool file_exists);

/* Read the record of (volume, key) under served_dir. 0, -ENOENT if none, -EINVAL if it does
 * not parse, or -errno. */
int od_record_load(const char *served_dir, const char *volume, const char *key,
		   struct od_record *out);

/* Write it atomically (directories created). 0 or -errno. */
int od_record_save(const char *served_dir, const char *volume, const char *key,
		   const struct od_record *r);

/* Remove it. 0 (also if there was none) or -errno. */
int od_record_remove(const char *served_dir, const char *volume, const char *key);

/* Find the cache file of (volume, key): cache_dir/cache/I<volume>/@<xx>/D<key>, any fan-out.
 * 0 with its path, -ENOENT, or -errno. */
int od_cache_file_find(const char *cache_dir, const char *volume, const char *key, char *path,
		       size_t path_len);

/* Make the kernel discard the cache file at path at its next lookup: its coherency xattr is
 * replaced by one of the wrong length (a missing xattr would fail the lookup instead of
 * replacing the file). 0 or -errno. */
int od_cache_file_discard(const char *path);
