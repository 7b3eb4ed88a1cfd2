/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The fill core: turns "make bytes [off, off+len) of this blob present in this cache file" into
 * whole-chunk origin fetches, one in flight per chunk however many requests wait on it, each
 * request bounded by a deadline. Knows nothing of /dev/cachefiles: a front end hands it a sink
 * (a file descriptor to write chunks into) and gets a callback when the range is filled.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "catalogue.h"

struct loop;
struct origin;
struct fill;
struct fill_sink;

struct fill_options {
	uint64_t chunk_size;	     /* power of two >= 4096 */
	uint64_t request_timeout_ms; /* a request not filled by then fails with -ETIMEDOUT */
	unsigned max_inflight;	     /* chunks fetched at once (bounds memory: x chunk_size) */
};

struct fill_stats {
	uint64_t requests;	  /* fill_read calls */
	uint64_t requests_failed; /* completed with an error (timeouts included) */
	uint64_t requests_timed_out;
	uint64_t bytes_requested; /* sum of the lengths asked for */
	uint64_t chunks_fetched;  /* origin fetches that succeeded */
	uint64_t chunks_deduped;  /* requests that joined a fetch already in flight */
	uint64_t chunks_present;  /* chunks found already in the cache file */
	uint64_t origin_bytes;	  /* bytes read from the origin */
	uint64_t origin_errors;
	uint64_t cache_write_errors;
	uint64_t inflight; /* chunks being fetched now */
	uint64_t oldest_request_age_ms;
};

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

int fill_new(struct loop *loop, struct origin *origin, const struct fill_options *opts,
	     struct fill **out);
void fill_free(struct fill *f);
const struct fill_stats *fill_get_stats(struct fill *f);

/* A sink: one cache file of one blob. Takes ownership of fd (closed when the last reference
 * goes: in-flight fetches hold references). The blob is copied. Returns 0 or -errno. */
int fill_sink_new(struct fill *f, const struct catalogue_blob *blob, int fd,
		  struct fill_sink **out);
struct fill_sink *fill_sink_ref(struct fill_sink *s);
void fill_sink_unref(struct fill_sink *s);
int fill_sink_fd(const struct fill_sink *s);
const struct catalogue_blob *fill_sink_blob(const struct fill_sink *s);
uint64_t fill_sink_origin_bytes(const struct fill_sink *s);

/* Fill [off, off+len) of the sink's blob. `done` is called exactly once, never from inside this
 * call. Returns 0, or -errno (then `done` is not called). */
int fill_read(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done, void *userdata);
