/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Chunk presence for cache files that the kernel does not track (the ublk front end's plain
 * sparse files): which whole chunks of a blob's cache file are completely written.
 *
 * SEEK_DATA cannot say that: after a kill -9 or a power cut, a chunk whose write was cut short
 * is partly allocated and would be served torn. So presence is a separate file beside the
 * cache file, one byte per chunk after a header, and a chunk's byte is set only after the chunk
 * is written and fdatasync'd. Losing a byte (the map write did not reach the disk) costs a
 * refetch, never wrong data. One byte per chunk (not a bit) so that concurrent marks from the
 * writer threads never read-modify-write a shared byte.
 *
 * The header names the blob size and the chunk (fetch) unit: a map made for another unit (the
 * chunk_size was changed) is started afresh.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHUNKMAP_HEADER_SIZE 64
#define CHUNKMAP_MAGIC	     "BCCHMAP1"

struct chunkmap;

/* Pure: the number of chunks of unit bytes covering a blob of blob_size bytes (padded to
 * 4096, as the cache file is). 0 if unit is 0. */
uint64_t chunkmap_chunks(uint64_t blob_size, uint64_t unit);

/* Pure: encode the header of a map for (blob_size, unit) into buf (CHUNKMAP_HEADER_SIZE). */
void chunkmap_header_encode(uint64_t blob_size, uint64_t unit, void *buf);

/* Pure: does buf (len bytes read from the start of a map file) hold a header for exactly
 * (blob_size, unit)? */
bool chunkmap_header_matches(const void *buf, size_t len, uint64_t blob_size, uint64_t unit);

/* Pure: bytes of the blob that a map's contents (buf, len bytes read from the start of a map
 * file) say are cached: the chunks marked cached, each of the unit of its header, the last cut
 * at the blob size padded to 4096 (the size of the cache file and of the space figures), so
 * never more than that padded size. 0 for a file that is not
 * a map (bad magic, or a chunk count that does not fit its blob size and unit); a short file
 * counts the chunk bytes it has. *blob_size gets the header's blob size (0 if none). */
uint64_t chunkmap_cached_bytes(const void *buf, size_t len, uint64_t *blob_size);

/* chunkmap_cached_bytes of the map file at path, read whole (maps are one byte per chunk).
 * Returns 0 and *cached, or -errno (-ENOENT: no map). */
int chunkmap_file_cached(const char *path, uint64_t *cached);

/* Pure: the file offset of chunk index's byte. */
static inline uint64_t chunkmap_byte_offset(uint64_t index)
{
	return CHUNKMAP_HEADER_SIZE + index;
}

/* Open (or create) the map file at path for a blob of blob_size bytes fetched in unit-byte
 * chunks, and load it. A missing, short or foreign map is (re)created empty. Returns 0 and
 * *out, or -errno. */
int chunkmap_open(const char *path, uint64_t blob_size, uint64_t unit, struct chunkmap **out);
void chunkmap_free(struct chunkmap *m);

/* Is chunk index completely in the cache file? Any thread. */
bool chunkmap_has(const struct chunkmap *m, uint64_t index);

/* Record chunk index as present. Call only after its bytes are written and fdatasync'd. Safe
 * from several threads at once. Returns 0 or -errno (the chunk then stays absent). */
int chunkmap_mark(struct chunkmap *m, uint64_t index);

/* Chunks present, and chunks in all. */
uint64_t chunkmap_count(const struct chunkmap *m);
uint64_t chunkmap_size(const struct chunkmap *m);
