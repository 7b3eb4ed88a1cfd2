/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fill core: turns "make bytes [off, off+len) of this blob present in this cache file" into
 * whole-chunk origin fetches. Knows nothing of /dev/cachefiles: a front end hands it a sink (a
 * file descriptor to write chunks into) and gets a callback when the range is filled.
 *
 *  - One fetch in flight per (blob digest, chunk) on the node, however many requests, sinks and
 *    mounts wait on it; the fetched chunk is written into every sink that waits.
 *  - Every fetched chunk is verified against the catalogue's per-chunk sha256 before it is
 *    written; a mismatch fails the waiting requests (EIO to the reader) and is never written.
 *  - Each request has a deadline; a reader never waits for a hung origin beyond it.
 *  - Sequential access triggers read-ahead, so the origin stays busy ahead of the reader.
 *  - Fetch buffers in use are bounded: max_inflight x chunk size.
 *  - Verification runs in a thread pool, cache writes in another (a chunk is written while the
 *    next is hashed), never in the loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "catalogue.h"

struct loop;
struct origin;
struct fill;
struct fill_sink;
struct chunkmap;

struct fill_options {
	uint64_t chunk_size;	     /* fetch unit: power of two >= 4096 */
	uint64_t request_timeout_ms; /* a request not filled by then fails with -ETIMEDOUT */
	unsigned max_inflight;	     /* chunks held at once (fetching or being written) */
	uint64_t readahead_bytes;    /* window fetched ahead of a sequential reader; 0: off */
	unsigned threads;	     /* verification threads (cache writes have 4 of their own) */
	const char *meta_dir;	     /* verified whole blobs kept here (NULL: none) */
};

struct fill_stats {
	uint64_t requests;	  /* fill_read calls */
	uint64_t requests_failed; /* completed with an error (timeouts included) */
	uint64_t requests_timed_out;
	uint64_t bytes_requested;   /* sum of the lengths asked for */
	uint64_t chunks_fetched;    /* origin fetches that succeeded and verified */
	uint64_t chunks_deduped;    /* requests that joined a fetch already in flight */
	uint64_t chunks_present;    /* chunks found already in the cache file */
	uint64_t chunks_prefetched; /* read-ahead fetches started */
	uint64_t origin_bytes;	    /* bytes read from the origin */
	uint64_t origin_errors;
	uint64_t verify_failures; /* chunks whose digest did not match: never written */
	uint64_t verify_cpu_ns;	  /* CPU time the pool threads spent hashing chunks (sha256) */
	uint64_t cache_write_errors;
	uint64_t cache_last_error_ms; /* loop_now_ms() of the last failed cache write, 0: none */
	int cache_last_errno;	      /* its error (positive) */
	uint64_t inflight;	      /* chunks fetching or being written now */
	uint64_t oldest_request_age_ms;
	uint64_t origin_last_ok_ms;    /* loop_now_ms() of the last good fetch, 0: none */
	uint64_t origin_last_error_ms; /* ... of the last failed fetch, 0: none */
	/* Fetch latency histogram (origin request to verified chunk), cumulative like
	 * Prometheus buckets: fetch_latency[i] counts fetches <= FILL_LATENCY_BUCKETS_MS[i]. */
	uint64_t fetch_latency[8];
	uint64_t fetch_latency_count;
	uint64_t fetch_latency_sum_ms;
};

/* Upper bounds of the latency buckets, in ms (the last is +Inf). */
#define FILL_LATENCY_BUCKETS_MS                                                                    \
	{                                                                                          \
		5, 10, 50, 100, 500, 1000, 5000, UINT64_MAX                                        \
	}

/* Completion of fill_read, in the loop thread: 0, or -errno (-ETIMEDOUT, -EIO, -ENOENT...). */
typedef void (*fill_done_fn)(void *userdata, int result);

/* Pure: the chunk-aligned range [*start, *end) of chunk `index` of a blob of `blob_size` bytes,
 * clipped to the blob size rounded up to 4096 (cache files are sized so), and the count of
 * bytes of it that exist on the origin (*data_len <= *end - *start). Returns false if the chunk
 * lies beyond the blob. */
bool fill_chunk_extent(uint64_t blob_size, uint64_t chunk_size, uint64_t index, uint64_t *start,
		       uint64_t *end, uint64_t *data_len);

/* Pure: the indexes [*first, *last] of the chunks covering [off, off+len). Returns -EINVAL if
 * len is 0 or the range ends beyond the blob size rounded up to 4096. */
int fill_plan(uint64_t blob_size, uint64_t chunk_size, uint64_t off, uint64_t len, uint64_t *first,
	      uint64_t *last);

/* Pure: the fetch unit for a blob: the configured chunk size, raised to the blob's digest chunk
 * size if that is larger (a chunk must be verifiable on its own). */
uint64_t fill_unit(uint64_t chunk_size, const struct catalogue_blob *blob);

/* Pure: read-ahead decision. Given the first chunk of a new request, the sink's previous request
 * start (UINT64_MAX: none yet) and the next chunk not yet requested or prefetched, say whether
 * the access is sequential (it follows on from the previous request: a first request never is)
 * and which chunks [*from, *to] to prefetch (ra_chunks ahead of `first`). */
bool fill_readahead_plan(uint64_t first, uint64_t last_first, uint64_t ra_next, uint64_t ra_chunks,
			 uint64_t n_chunks, uint64_t *from, uint64_t *to);

int fill_new(struct loop *loop, struct origin *origin, const struct fill_options *opts,
	     struct fill **out);
void fill_free(struct fill *f);
const struct fill_stats *fill_get_stats(struct fill *f);

/* Call periodically: while the origin's last fetch failed, re-read a page of what failed every
 * 2 s, so that origin_last_ok_ms follows the origin coming back even when no reader asks. */
void fill_check_origin(struct fill *f);

/* Where an in-place blob is read from: fn(userdata, b) gives the blob of b's digest that the
 * catalogue lists now (models_locate), or NULL to keep b's path. Asked in the loop thread before
 * each fetch of an in-place blob; a sink whose location moved reads from the new one (logged).
 * Without a locator, a sink reads from the path it was opened with. */
typedef const struct catalogue_blob *(*fill_locate_fn)(void *userdata,
						       const struct catalogue_blob *b);
void fill_set_locator(struct fill *f, fill_locate_fn fn, void *userdata);

/* A sink: one cache file of one blob. Takes ownership of fd (closed when the last reference
 * goes: in-flight fetches hold references). The blob is deep-copied. Returns 0 or -errno. */
int fill_sink_new(struct fill *f, const struct catalogue_blob *blob, int fd,
		  struct fill_sink **out);
struct fill_sink *fill_sink_ref(struct fill_sink *s);
/* Drop a reference. At the last one, a sink with a chunk map commits what its writers left
 * (below) in the writers pool, never on the calling thread, and is freed after that: a reopen
 * of the blob meanwhile may fetch those chunks again. A sink may outlive fill_free. */
void fill_sink_unref(struct fill_sink *s);
/* The front end lets go of the sink (on-demand: the kernel closed the object, whose fd then
 * refuses writes with ENOBUFS): fetches still in flight for it finish without counting their
 * refused writes as cache volume errors. Drops the front end's reference. */
void fill_sink_close(struct fill_sink *s);
int fill_sink_fd(const struct fill_sink *s);
const struct catalogue_blob *fill_sink_blob(const struct fill_sink *s);
uint64_t fill_sink_origin_bytes(const struct fill_sink *s);
/* The sink's fetch unit (fill_unit of its blob): the chunk size of its presence map. */
uint64_t fill_sink_unit(const struct fill_sink *s);

/* Judge presence by a chunk map (core/chunkmap.h) instead of SEEK_HOLE on the fd: for plain
 * cache files, where a chunk cut short by a crash is allocated but must not count. A written
 * chunk is readable at once; its map byte is persisted only after an fdatasync covering it (a
 * group commit: every 16 chunks, after 500 ms, after the sink's last unref and at fill_free).
 * Takes ownership of map (freed with the sink). Call before the first fill_read. */
void fill_sink_set_chunkmap(struct fill_sink *s, struct chunkmap *map);

/* With a chunk map: make every chunk written into s so far durable and set in its map file, now.
 * Blocks for an fdatasync, as long as the cache volume takes: never on a daemon's loop thread
 * (the last unref does it in the writers pool); for tools, after their loop has ended. 0
 * without a map, or -errno (logged). */
int fill_sink_commit(struct fill_sink *s);

/* Is all of [off, off+len) already in the sink's cache file (as fill_read would judge it)?
 * false for an invalid range. */
bool fill_range_cached(const struct fill_sink *s, uint64_t off, uint64_t len);

/* Give the sink verified contents for its start (e.g. the metadata blob checked before the
 * OPEN answer), `len` bytes padded to 4096, which it writes into the cache file when the first
 * READ comes: the kernel cannot take writes before it has finished opening the object. Takes
 * ownership of buf (malloc'd). */
void fill_sink_set_preload(struct fill_sink *s, void *buf, uint64_t len);

/* Fill [off, off+len) of the sink's blob. `done` is called exactly once, never from inside this
 * call. Returns 0, or -errno (then `done` is not called). */
int fill_read(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done, void *userdata);

/* fill_read without read-ahead, and without counting as a reader's position: for reads that are
 * not a reader's (the kernel's partition scan of a new block device reads its first and last
 * blocks; read-ahead from there would fetch chunks nobody asked for). */
int fill_read_no_readahead(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done,
			   void *userdata);

/* Fetch a whole (small) blob into memory and verify it against its digest (its name), e.g. the
 * EROFS metadata blob before the kernel is allowed to parse it. A verified copy is kept in
 * opts.meta_dir and used (checked again) next time, so a cached model mounts without the origin.
 * done(userdata, result, buf, len): on success buf holds the blob padded with zeros to a multiple
 * of 4096 (len is that padded length) and belongs to the callee, who must free() it. Blobs above 64
 * MiB are refused
 * (-EFBIG). Returns 0 or -errno (then done is not called). */
typedef void (*fill_blob_done_fn)(void *userdata, int result, void *buf, uint64_t len);
int fill_fetch_verified_blob(struct fill *f, const struct catalogue_blob *blob,
			     fill_blob_done_fn done, void *userdata);
