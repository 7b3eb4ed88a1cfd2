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
/* Chunks written but not yet committed, at most (chunkmap_written then says -ENOSPC). */
#define CHUNKMAP_PENDING_MAX 64

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

/* Record chunk index as present, at once in the map file. Call only after its bytes are written
 * and fdatasync'd. Safe from several threads at once. Returns 0 or -errno (the chunk then stays
 * absent). */
int chunkmap_mark(struct chunkmap *m, uint64_t index);

/*
 * Group commit: a chunk written into the cache file is readable at once, but its map byte is
 * persisted only after one fdatasync of the cache file that covers a whole batch of chunks (one
 * fdatasync per chunk costs a journal commit and a disk flush each). So the map file never
 * claims a chunk whose bytes are not durable; a kill -9 or a power cut before the commit loses
 * only the marks of the batch (a refetch).
 */

/* Chunk index was completely written into the cache file (not yet fdatasync'd): chunkmap_has
 * says true from now on, and the next chunkmap_commit persists it. Any thread. Returns the
 * chunks now waiting for a commit, -ENOSPC if CHUNKMAP_PENDING_MAX wait already (commit, then
 * call again), or -EINVAL. now_ms: a monotonic clock, for chunkmap_pending. */
int chunkmap_written(struct chunkmap *m, uint64_t index, uint64_t now_ms);

/* Chunks waiting for a commit, and (if since_ms) when the oldest of them was written. */
size_t chunkmap_pending(struct chunkmap *m, uint64_t *since_ms);

/* Make the chunks written so far durable (one fdatasync of data_fd, the cache file), then set
 * their bytes in the map file. Any thread; commits of one map run one at a time, so when one
 * returns every chunk written before the call is in the map file. Returns 0 or -errno: if the
 * fdatasync failed, the batch is absent again (chunkmap_has false: fetched again if asked); if a
 * map write failed, the chunks stay readable but a restart does not know them. */
int chunkmap_commit(struct chunkmap *m, int data_fd);

/* Chunks present, and chunks in all. */
uint64_t chunkmap_count(const struct chunkmap *m);
uint64_t chunkmap_size(const struct chunkmap *m);
