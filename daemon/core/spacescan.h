/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The scan of the cache files, in two halves so that the directory walk never runs in the loop
 * thread (a walk of every I<volume>/@xx fan-out directory, with an fstatat of every file, reads
 * directory blocks from disk when the page cache is cold, and stalled the loop for seconds):
 *
 *  - the walk (space_scan_store, a front end's list_files, space_scan_measure_open) runs in a
 *    scan thread and fills a struct space_scan: a plain list of what it found;
 *  - space_scan_apply runs in the loop thread and updates the usage records (struct
 *    space_entry) from that list: pure data, no I/O.
 *
 * The loop keeps working while a walk runs, so applying a list must respect what changed
 * meanwhile: a file removed (culled, evicted) after the walk began stays removed, and a record
 * in use or used since the walk began is kept even if the walk did not see its file.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One cache file's usage record. Only the loop thread touches these. */
struct space_entry {
	struct space_entry *next;
	char *volume, *key;
	char *dir; /* fan-out directory holding the file, when found */
	uint64_t bytes;
	int64_t last_use;
	unsigned in_use;
	int fd; /* of the open object, -1 */
	bool present;
	bool listed;	 /* reported by the front end's list_files: removed by its remove_file */
	uint64_t cached; /* listed: bytes its chunk map says are cached */
	unsigned errors;
	/* The scan sequence number current when its file was last removed, and when its object
	 * was last opened or closed (0: never). */
	uint64_t removed_scan, used_scan;
};

/* One file the walk found. */
struct space_scan_item {
	char *volume, *key;
	char *dir; /* the fan-out directory (cachefiles' store); NULL for a listed file */
	uint64_t bytes, cached;
	int64_t mtime_ms;
	bool listed;
};

/* An open object whose size the walk measures if its file is not linked (yet): fd is a dup of
 * the object's fd, owned by the scan. */
struct space_scan_open {
	char *volume, *key;
	int fd;
	bool measured;
	uint64_t data_bytes;
};

struct space_scan {
	uint64_t seq; /* > 0; records removed at or after it keep their file removed */
	struct space_scan_item *items;
	size_t n_items, cap_items;
	struct space_scan_open *open;
	size_t n_open;
	char **leftovers; /* keys of a front end's leftovers (ublk: a map without its file) */
	size_t n_leftovers, cap_leftovers;
	bool failed; /* out of memory: the list is incomplete, apply nothing */
};

/* Records. */
struct space_entry *space_entry_find(struct space_entry *list, const char *volume, size_t vlen,
				     const char *key, size_t klen);
/* Find or add (with last_use); NULL on ENOMEM. */
struct space_entry *space_entry_get(struct space_entry **list, const char *volume, size_t vlen,
				    const char *key, size_t klen, int64_t last_use);
void space_entry_free(struct space_entry *e);

/* Building a scan (any thread; out of memory sets s->failed). dir NULL: a listed file. */
void space_scan_add(struct space_scan *s, const char *volume, const char *key, const char *dir,
		    uint64_t bytes, uint64_t cached, int64_t mtime_ms, bool listed);
void space_scan_add_leftover(struct space_scan *s, const char *key);
/* Remember the open objects of list (dup of their fds) for space_scan_measure_open. */
void space_scan_add_open(struct space_scan *s, const struct space_entry *list);
/* The walk of cachefiles' store, <store_dir>/I<volume>/@xx/D<key> (the scan thread). */
void space_scan_store(struct space_scan *s, const char *store_dir);
/* Bytes of data of the open objects the walk did not find (the scan thread, after the walk). */
void space_scan_measure_open(struct space_scan *s);
void space_scan_free(struct space_scan *s);

/* Apply s to the records (the loop thread; pure): a record whose file s found is present
 * with its figures, unless the file was removed since s was planned; every other record is
 * absent (an open object's then gets its measured size). Then space_entries_prune(s->seq).
 * Returns the number of records added or dropped (the usage file then needs saving), or 0
 * without changing anything if s failed. */
size_t space_scan_apply(struct space_entry **list, const struct space_scan *s);
/* Drop the records that are absent, not in use, and not opened or closed since scan seq was
 * planned (those may have a file the walk missed). Returns how many. */
size_t space_entries_prune(struct space_entry **list, uint64_t seq);
