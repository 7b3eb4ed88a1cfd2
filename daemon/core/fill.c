// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/fill.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include "core/chunkmap.h"
#include "io.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/origin.h"
#include "verify.h"
#include "core/workpool.h"

#define PAGE		4096ULL
#define TIMEOUT_SCAN_MS 100
#define JOB_BUCKETS	4096
#define MAX_WHOLE_BLOB	(64ULL << 20)
/* Threads that write verified chunks into the cache files. A write mostly waits for the disk
 * (O_DIRECT in on-demand mode; fdatasync with a chunk map), so these are apart from the
 * verification threads: a verifier hashes the next chunk while the last one is written. */
#define WRITE_THREADS 4
/* Group commit of chunk maps (chunkmap.h): a writer commits once this many chunks of a sink
 * wait, and the timer commits what has waited this long; kill -9 loses at most that much. */
#define COMMIT_CHUNKS 16
#define COMMIT_MS     500

struct fill_request {
	unsigned refs;	  /* the fill core's own + one per waiter */
	unsigned pending; /* chunks not yet filled */
	int result;
	bool finished; /* done() called */
	uint64_t deadline_ms;
	fill_done_fn done;
	void *userdata;
	struct fill_request *prev, *next; /* fill->requests: oldest first */
	struct fill_request *next_ready;  /* fill->ready */
};

struct waiter {
	struct fill_request *req;
	struct fill_sink *sink; /* where this waiter needs the chunk */
	struct waiter *next;
};

enum job_state {
	JOB_QUEUED,
	JOB_FETCHING,
	JOB_PROCESSING, /* verifying, then writing, in the pools */
};

#define FILL_BUF_POOL_MAX 64

struct chunk_job {
	struct fill *fill;
	struct fill_sink *owner; /* holds the blob (digests); written to unless fd < 0 */
	uint64_t index, start, end, data_len;
	enum job_state state;
	bool prefetch;	 /* started by read-ahead: fetched even with nobody waiting yet */
	bool whole_blob; /* fill_fetch_verified_blob: verified as a whole, handed over */
	bool hashed;	 /* in fill->jobs */
	bool pooled;	 /* buf is a chunk_size buffer of the pool */
	uint64_t dispatch_ms;
	void *buf;
	int result;		/* of fetch + verification */
	uint64_t verify_cpu_ns; /* the pool thread's CPU time in verify_*() */
	struct waiter *waiters;
	/* Fixed when processing starts: the sinks the pool writes into, and how each went. */
	size_t n_targets;
	struct fill_sink **targets;
	int *target_results;
	fill_blob_done_fn blob_done; /* NULL once answered (or given up at the deadline) */
	void *blob_userdata;
	uint64_t blob_deadline_ms;
	bool from_local;	     /* whole blob: found verified in opts.meta_dir */
	struct chunk_job *blob_next; /* fill->blob_jobs */
	struct chunk_job *hash_next;
	struct chunk_job *queue_next;
};

struct fill_sink {
	unsigned refs;
	struct fill *fill; /* NULL once fill_free ran (a front end may let go of sinks after) */
	struct fill_sink *sink_prev, *sink_next; /* fill->sinks: every sink not yet freed */
	int fd;
	struct catalogue_blob blob; /* deep copy */
	uint64_t unit;		    /* fetch unit for this blob */
	uint64_t n_chunks;
	uint64_t origin_bytes;
	uint64_t last_first; /* first chunk of the previous request (read-ahead) */
	uint64_t ra_next;    /* next chunk not yet requested or prefetched */
	bool verify_warned;
	bool closed;   /* the front end let go (fill_sink_close); loop thread only */
	void *preload; /* verified bytes [0, preload_len) to write at the first READ */
	uint64_t preload_len;
	struct chunkmap *map; /* presence, when SEEK_HOLE cannot tell (NULL: SEEK_HOLE) */
	/* On fill->commits (loop thread): its map has chunks waiting for a commit. No reference:
	 * the last unref commits and leaves the list. */
	bool commit_listed;
	bool commit_running; /* a commit_work is in the writers pool */
	struct fill_sink *commit_next;
	/* Chunks known to be in the cache file, one bit each (loop thread only): written by us or
	 * found by SEEK_HOLE once. Nothing punches holes in an open cache file, so a chunk seen
	 * present stays so, and a READ that lands on it needs no lseek. */
	uint64_t *present;
	/* Chunks known to be holes (loop thread only): found so by one SEEK_DATA for the whole
	 * run of holes it skips, and not written through this sink since. On a cold cache file
	 * one lseek covers every chunk: an lseek per chunk would wait, on the loop thread, for
	 * the inode lock that the writers hold through every O_DIRECT write into a hole. The
	 * bit can only be stale towards "absent" (another sink on the same file wrote it), and
	 * that costs a fetch of verified bytes written again, never wrong bytes. */
	uint64_t *absent;
};

struct job_queue {
	struct chunk_job *head, *tail;
};

struct fill {
	struct loop *loop;
	struct origin *origin;
	struct workpool *pool;	  /* verification */
	struct workpool *writers; /* cache writes of verified chunks */
	struct fill_options opts;
	struct fill_stats stats;
	struct fill_request *requests_head, *requests_tail; /* not finished */
	struct job_queue demand, prefetch;		    /* waiting for an in-flight slot */
	struct fill_request *ready;			    /* finished before any fetch */
	struct chunk_job *jobs[JOB_BUCKETS];		    /* queued or in flight, by key */
	struct chunk_job *blob_jobs; /* whole-blob fetches not yet answered */
	int eventfd;
	int timer;
	/* While the origin is failing: what last failed, re-read now and then to notice that it
	 * answers again even when no reader asks (readiness follows it). */
	/* the blob of the last failed fetch (digest, size, path; no chunk digests) */
	struct catalogue_blob probe_blob;
	uint64_t probe_off, probe_last_ms;
	struct origin_probe *probe; /* in flight, or NULL */
	/* Chunk buffers of jobs that finished, reused by the next ones: no allocation, mapping
	 * or page faults per chunk. At most max_inflight (the memory bound holds). */
	void *bufs[FILL_BUF_POOL_MAX];
	unsigned n_bufs;
	struct fill_sink *commits; /* sinks whose chunk maps wait for a commit */
	struct fill_sink *sinks;   /* all of them: fill_free tells each that it is gone */
	fill_locate_fn locate;	   /* where in-place blobs are now (fill_set_locator) */
	void *locate_data;
};

#define ORIGIN_PROBE_INTERVAL_MS 2000

struct origin_probe {
	struct fill *fill; /* NULL once the fill core is gone */
	void *buf;
};

/* ---- pure planning ---- */

bool fill_chunk_extent(uint64_t blob_size, uint64_t chunk_size, uint64_t index, uint64_t *start,
		       uint64_t *end, uint64_t *data_len)
{
	uint64_t limit = ALIGN_UP(blob_size, PAGE);

	if (chunk_size == 0 || index > limit / chunk_size || index * chunk_size >= limit)
		return false;
	*start = index * chunk_size;
	*end = MIN(*start + chunk_size, limit);
	*data_len = MIN(*end, blob_size) - *start;
	return true;
}

int fill_plan(uint64_t blob_size, uint64_t chunk_size, uint64_t off, uint64_t len, uint64_t *first,
	      uint64_t *last)
{
	uint64_t limit = ALIGN_UP(blob_size, PAGE);

	if (len == 0 || chunk_size == 0 || off >= limit || len > limit - off)
		return -EINVAL;
	*first = off / chunk_size;
	*last = (off + len - 1) / chunk_size;
	return 0;
}

uint64_t fill_unit(uint64_t chunk_size, const struct catalogue_blob *blob)
{
	return MAX(chunk_size, blob->digest_chunk_size);
}

bool fill_readahead_plan(uint64_t first, uint64_t last_first, uint64_t ra_next, uint64_t ra_chunks,
			 uint64_t n_chunks, uint64_t *from, uint64_t *to)
{
	/* Evidence of a sequential reader: a request that follows on from the previous one (in
	 * its chunk, or up to the next chunk not yet asked for). A first request is no evidence,
	 * wherever it lands: a reader of one small file reads one chunk. */
	bool sequential = last_first != UINT64_MAX && first >= last_first && first <= ra_next;

	if (ra_chunks == 0 || n_chunks == 0 || !sequential)
		return false;
	*from = MAX(first + 1, ra_next);
	*to = MIN(first + ra_chunks, n_chunks - 1);
	return *from <= *to;
}

/* ---- requests ---- */

static void request_unref(struct fill_request *req)
{
	if (--req->refs == 0)
		free(req);
}

static void request_finish(struct fill *f, struct fill_request *req)
{
	if (req->finished)
		return;
	req->finished = true;
	if (req->prev)
		req->prev->next = req->next;
	else
		f->requests_head = req->next;
	if (req->next)
		req->next->prev = req->prev;
	else
		f->requests_tail = req->prev;
	if (req->result < 0)
		f->stats.requests_failed++;
	req->done(req->userdata, req->result);
	request_unref(req);
}

static void request_chunk_done(struct fill *f, struct fill_request *req, int result)
{
	if (result < 0 && req->result == 0)
		req->result = result;
	if (--req->pending == 0)
		request_finish(f, req);
	request_unref(req);
}

/* ---- sinks ---- */

static int sink_alloc(struct fill *f, const struct catalogue_blob *blob, int fd,
		      struct fill_sink **out)
{
	struct fill_sink *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return -ENOMEM;
	r = catalogue_blob_copy(&s->blob, blob);
	if (r < 0) {
		free(s);
		return r;
	}
	s->refs = 1;
	s->fill = f;
	s->fd = fd;
	s->sink_next = f->sinks;
	if (f->sinks)
		f->sinks->sink_prev = s;
	f->sinks = s;
	s->unit = fill_unit(f->opts.chunk_size, blob);
	s->n_chunks = (ALIGN_UP(blob->size, PAGE) + s->unit - 1) / s->unit;
	s->last_first = UINT64_MAX;
	s->present = calloc((s->n_chunks + 63) / 64, sizeof(*s->present));
	s->absent = calloc((s->n_chunks + 63) / 64, sizeof(*s->absent));
	if (!s->present || !s->absent) {
		free(s->present);
		free(s->absent);
		catalogue_blob_release(&s->blob);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static void sink_clear_absent(const struct fill_sink *s, uint64_t index)
{
	if (index < s->n_chunks)
		s->absent[index / 64] &= ~(1ULL << (index % 64));
}

/* Through a const sink too: the bits are a cache of what the file holds, not sink state. */
static void sink_mark_present(const struct fill_sink *s, uint64_t index)
{
	if (index < s->n_chunks)
		s->present[index / 64] |= 1ULL << (index % 64);
	sink_clear_absent(s, index);
}

static void sink_mark_absent(const struct fill_sink *s, uint64_t index)
{
	if (index < s->n_chunks)
		s->absent[index / 64] |= 1ULL << (index % 64);
}

static bool sink_known_absent(const struct fill_sink *s, uint64_t index)
{
	return index < s->n_chunks && (s->absent[index / 64] & (1ULL << (index % 64)));
}

static bool sink_known_present(const struct fill_sink *s, uint64_t index)
{
	return index < s->n_chunks && (s->present[index / 64] & (1ULL << (index % 64)));
}

int fill_sink_new(struct fill *f, const struct catalogue_blob *blob, int fd, struct fill_sink **out)
{
	return sink_alloc(f, blob, fd, out);
}

struct fill_sink *fill_sink_ref(struct fill_sink *s)
{
	s->refs++;
	return s;
}

/* Take s off fill->commits. */
static void commit_unlist(struct fill_sink *s)
{
	if (!s->commit_listed)
		return;
	for (struct fill_sink **pp = &s->fill->commits; *pp; pp = &(*pp)->commit_next)
		if (*pp == s) {
			*pp = s->commit_next;
			break;
		}
	s->commit_listed = false;
}

/* Make the chunks of s written so far durable and known to its map, now. Blocks: pool threads,
 * or fill_free. */
static int sink_commit(struct fill_sink *s)
{
	int r = chunkmap_commit(s->map, s->fd);

	if (r < 0)
		log_error_errno(r,
				"blob %.12s: committing the chunk map failed (the chunks written "
				"since the last commit are fetched again)",
				s->blob.digest);
	return r;
}

static void sink_destroy(struct fill_sink *s)
{
	if (s->fill) {
		if (s->sink_prev)
			s->sink_prev->sink_next = s->sink_next;
		else
			s->fill->sinks = s->sink_next;
		if (s->sink_next)
			s->sink_next->sink_prev = s->sink_prev;
	}
	if (s->fd >= 0)
		close(s->fd);
	chunkmap_free(s->map);
	free(s->preload);
	free(s->present);
	free(s->absent);
	catalogue_blob_release(&s->blob);
	free(s);
}

int fill_sink_commit(struct fill_sink *s)
{
	if (!s->map || s->fd < 0)
		return 0;
	return sink_commit(s);
}

/* Writers pool: the last commit of a sink that nobody holds any more. */
static void last_commit_work(void *userdata)
{
	sink_commit(userdata);
}

static void last_commit_done(void *userdata)
{
	sink_destroy(userdata);
}

void fill_sink_unref(struct fill_sink *s)
{
	if (!s || --s->refs > 0)
		return;
	commit_unlist(s);
	/* What the writers left becomes durable and known to the map, so that a restart knows
	 * it. The fdatasync waits for the disk, as long as the disk takes: in the writers pool,
	 * never on the loop thread, whose stall would stop every reader and /livez with it (a
	 * hung cache volume). The sink is freed when it is done. Until then a reopen of the
	 * blob may not see those chunks and fetches them again: verified bytes, written twice. */
	if (s->map && s->fd >= 0 && s->fill && chunkmap_pending(s->map, NULL) > 0 &&
	    workpool_submit(s->fill->writers, last_commit_work, last_commit_done, s) == 0)
		return;
	/* Nothing to commit, the fill core gone, or no memory for the job: here, then. */
	fill_sink_commit(s);
	sink_destroy(s);
}

void fill_sink_close(struct fill_sink *s)
{
	if (!s)
		return;
	s->closed = true;
	fill_sink_unref(s);
}

int fill_sink_fd(const struct fill_sink *s)
{
	return s->fd;
}

const struct catalogue_blob *fill_sink_blob(const struct fill_sink *s)
{
	return &s->blob;
}

uint64_t fill_sink_origin_bytes(const struct fill_sink *s)
{
	return s->origin_bytes;
}

uint64_t fill_sink_unit(const struct fill_sink *s)
{
	return s->unit;
}

void fill_sink_set_chunkmap(struct fill_sink *s, struct chunkmap *map)
{
	chunkmap_free(s->map);
	s->map = map;
}

void fill_sink_set_preload(struct fill_sink *s, void *buf, uint64_t len)
{
	free(s->preload);
	s->preload = buf;
	s->preload_len = len;
}

static void write_preload(struct fill_sink *s)
{
	ssize_t n = pwrite(s->fd, s->preload, s->preload_len, 0);

	/* Written here, not by a job: what was known to be holes may not be any more. */
	for (uint64_t i = 0; s->preload_len && i <= (s->preload_len - 1) / s->unit; i++)
		sink_clear_absent(s, i);

	if (n != (ssize_t)s->preload_len) /* not fatal: the READ fetches and verifies it again */
		log_warn_errno(n < 0 ? errno : EIO, "blob %.12s: writing the verified start failed",
			       s->blob.digest);
	free(s->preload);
	s->preload = NULL;
}

/* ---- the table of jobs queued or in flight, keyed by (blob digest, chunk) ---- */

static size_t job_bucket(const char *digest, uint64_t index)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < DIGEST_HEX_LEN; i++)
		h = (h ^ (unsigned char)digest[i]) * 1099511628211ULL;
	h = (h ^ index) * 1099511628211ULL;
	return h % JOB_BUCKETS;
}

static struct chunk_job *job_find(struct fill *f, const char *digest, uint64_t index)
{
	for (struct chunk_job *j = f->jobs[job_bucket(digest, index)]; j; j = j->hash_next)
		if (j->index == index && memcmp(j->owner->blob.digest, digest, DIGEST_HEX_LEN) == 0)
			return j;
	return NULL;
}

static void job_unhash(struct fill *f, struct chunk_job *job)
{
	struct chunk_job **pp;

	if (!job->hashed)
		return;
	for (pp = &f->jobs[job_bucket(job->owner->blob.digest, job->index)]; *pp;
	     pp = &(*pp)->hash_next)
		if (*pp == job) {
			*pp = job->hash_next;
			break;
		}
	job->hashed = false;
}

static void queue_push(struct job_queue *q, struct chunk_job *job)
{
	job->queue_next = NULL;
	if (q->tail)
		q->tail->queue_next = job;
	else
		q->head = job;
	q->tail = job;
}

static struct chunk_job *queue_pop(struct job_queue *q)
{
	struct chunk_job *job = q->head;

	if (job) {
		q->head = job->queue_next;
		if (!q->head)
			q->tail = NULL;
	}
	return job;
}

/* A chunk_size buffer, page-aligned, from the pool if one is there. */
static void *buf_get(struct fill *f)
{
	void *b;

	if (f->n_bufs)
		return f->bufs[--f->n_bufs];
	return posix_memalign(&b, PAGE, f->opts.chunk_size) == 0 ? b : NULL;
}

static void buf_put(struct fill *f, void *b)
{
	if (b && f->n_bufs < MIN((unsigned)FILL_BUF_POOL_MAX, f->opts.max_inflight))
		f->bufs[f->n_bufs++] = b;
	else
		free(b);
}

static void job_free(struct chunk_job *job)
{
	for (size_t i = 0; i < job->n_targets; i++)
		fill_sink_unref(job->targets[i]);
	free(job->targets);
	free(job->target_results);
	fill_sink_unref(job->owner);
	if (job->pooled)
		buf_put(job->fill, job->buf);
	else
		free(job->buf); /* sized otherwise: a whole blob, or a larger digest unit */
	free(job);
}

/* Write a verified chunk into a sink's cache file: 0 or -errno. With a chunk map, the chunk is
 * readable at once and its mark persisted by a group commit (chunkmap.h): here once
 * COMMIT_CHUNKS wait, else by the timer or the sink's last unref. Blocks: pool threads (and the
 * rare join below). */
static int sink_write_chunk(struct fill_sink *s, const void *buf, uint64_t index, uint64_t start,
			    uint64_t len)
{
	ssize_t n;
	int r;

	do
		n = pwrite(s->fd, buf, len, (off_t)start);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		return n < 0 ? -errno : -EIO;
	if (!s->map)
		return 0;
	r = chunkmap_written(s->map, index, loop_now_ms());
	if (r == -ENOSPC) { /* commits lag behind the writes: this writer does one first */
		r = chunkmap_commit(s->map, s->fd);
		if (r >= 0)
			r = chunkmap_written(s->map, index, loop_now_ms());
	}
	if (r < 0)
		return r;
	if (r >= COMMIT_CHUNKS)
		return chunkmap_commit(s->map, s->fd);
	return 0;
}

/* ---- group commits of chunk maps: what the writers left, after COMMIT_MS ---- */

static void commit_work(void *userdata)
{
	struct fill_sink *s = userdata;

	sink_commit(s);
}

static void commit_done(void *userdata)
{
	struct fill_sink *s = userdata;

	s->commit_running = false;
	fill_sink_unref(s);
}

/* Loop thread, after a write into s: list it if its map has chunks waiting. */
static void commit_note(struct fill *f, struct fill_sink *s)
{
	if (!s->map || s->commit_listed || chunkmap_pending(s->map, NULL) == 0)
		return;
	s->commit_listed = true;
	s->commit_next = f->commits;
	f->commits = s;
}

/* Loop thread, from the timer: commit in the writers pool what has waited COMMIT_MS. */
static void commit_scan(struct fill *f)
{
	uint64_t now = loop_now_ms(), since;

	for (struct fill_sink *s = f->commits, *next; s; s = next) {
		next = s->commit_next;
		if (s->commit_running)
			continue;
		if (chunkmap_pending(s->map, &since) == 0) {
			commit_unlist(s);
			continue;
		}
		if (now - since < COMMIT_MS)
			continue;
		s->commit_running = true;
		if (workpool_submit(f->writers, commit_work, commit_done, fill_sink_ref(s)) < 0) {
			/* Not the last reference: a listed sink is held elsewhere. Next scan. */
			s->commit_running = false;
			fill_sink_unref(s);
		}
	}
}

/* Finish every waiter with the job's outcome for its sink; the job leaves the table. */
/* Answer a whole-blob fetch once: with its result, or -ETIMEDOUT at its deadline. */
static void blob_job_answer(struct fill *f, struct chunk_job *job, int result)
{
	struct chunk_job **pp;
	void *buf;

	if (!job->blob_done)
		return;
	for (pp = &f->blob_jobs; *pp; pp = &(*pp)->blob_next)
		if (*pp == job) {
			*pp = job->blob_next;
			break;
		}
	buf = result >= 0 ? TAKE_PTR(job->buf) : NULL;
	job->blob_done(job->blob_userdata, result, buf, job->end - job->start);
	job->blob_done = NULL;
}

static void job_complete(struct fill *f, struct chunk_job *job)
{
	if (job->whole_blob)
		blob_job_answer(f, job, job->result);
	job_unhash(f, job);
	for (size_t i = 0; job->result >= 0 && i < job->n_targets; i++)
		if (job->target_results[i] >= 0)
			sink_mark_present(job->targets[i], job->index);
	while (job->waiters) {
		struct waiter *w = job->waiters;
		int r = job->result;

		job->waiters = w->next;
		if (r >= 0) {
			size_t i;
			for (i = 0; i < job->n_targets; i++)
				if (job->targets[i] == w->sink)
					break;
			if (i < job->n_targets) {
				r = job->target_results[i];
			} else if (job->buf) {
				/* Joined while the pool was writing: write its sink here (rare). */
				r = sink_write_chunk(w->sink, job->buf, job->index, job->start,
						     job->end - job->start);
				if (r >= 0)
					sink_mark_present(w->sink, job->index);
				commit_note(f, w->sink);
			}
		}
		request_chunk_done(f, w->req, r);
		fill_sink_unref(w->sink);
		free(w);
	}
	job_free(job);
}

static bool job_has_live_waiter(const struct chunk_job *job)
{
	for (const struct waiter *w = job->waiters; w; w = w->next)
		if (!w->req->finished)
			return true;
	return false;
}

/* ---- fetch -> verify -> write ---- */

static void dispatch(struct fill *f);
static void save_local_blob(struct chunk_job *job);

/* CPU time of the calling thread in ns (0 if the clock is unavailable): what hashing costs,
 * apart from the waits and the rest of the daemon, for the verify_cpu_ns counter. */
static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Pool thread: verify the chunk. Touches only the job's buffer and its owner's blob (read-only). */
static void process_work(void *userdata)
{
	struct chunk_job *job = userdata;
	const struct catalogue_blob *b = &job->owner->blob;
	uint64_t len = job->end - job->start, bad = 0, cpu0 = thread_cpu_ns();
	int r;

	if (job->whole_blob ||
	    (b->n_chunk_digests == 0 && job->start == 0 && job->data_len == b->size))
		r = verify_whole(b->digest, job->buf, job->data_len);
	else
		r = verify_range(b, job->start, job->buf, job->data_len, &bad);
	job->verify_cpu_ns = thread_cpu_ns() - cpu0;
	job->result = r < 0 ? r : 0;
	if (job->result < 0)
		return;
	if (job->whole_blob)
		save_local_blob(job);
	/* The tail past the blob's end is padding up to the next page: writes to the cache file
	 * are O_DIRECT and must be page-sized. */
	memset((char *)job->buf + job->data_len, 0, len - job->data_len);
}

/* Writer thread: write the verified chunk into every target sink. Touches only the job's
 * buffer and the target array fixed before the verification was submitted. */
static void write_work(void *userdata)
{
	struct chunk_job *job = userdata;

	for (size_t i = 0; i < job->n_targets; i++)
		job->target_results[i] = sink_write_chunk(job->targets[i], job->buf, job->index,
							  job->start, job->end - job->start);
}

static void write_done(void *userdata)
{
	struct chunk_job *job = userdata;
	struct fill *f = job->fill;

	f->stats.inflight--; /* the buffer is free once written */
	for (size_t i = 0; i < job->n_targets; i++)
		if (job->target_results[i] == -ENOBUFS && job->targets[i]->closed) {
			/* The kernel closed the object under a read-ahead (its last mount went, a
			 * warm was cancelled): nothing is wrong with the volume. ENOBUFS on an open
			 * object is the kernel refusing the write (the volume below bstop). */
			log_debug(
				"blob %.12s: chunk %llu not written: the kernel closed the object",
				job->owner->blob.digest, (unsigned long long)job->index);
		} else if (job->target_results[i] < 0) {
			f->stats.cache_write_errors++;
			f->stats.cache_last_error_ms = loop_now_ms();
			f->stats.cache_last_errno = -job->target_results[i];
			log_error_errno(job->target_results[i],
					"blob %.12s: writing chunk %llu to the cache failed",
					job->owner->blob.digest, (unsigned long long)job->index);
		}
	for (size_t i = 0; i < job->n_targets; i++)
		commit_note(f, job->targets[i]);
	job_complete(f, job);
	dispatch(f);
}

static void process_done(void *userdata)
{
	struct chunk_job *job = userdata;
	struct fill *f = job->fill;
	struct fill_sink *s = job->owner;

	f->stats.verify_cpu_ns += job->verify_cpu_ns;
	if (job->result == -EBADMSG || job->result == -ENODATA) {
		f->stats.verify_failures++;
		if (!s->verify_warned && s->blob.path[0]) {
			s->verify_warned = true;
			log_error("in-place file %s (blob %.12s) changed since it was published: "
				  "chunk %llu (bytes %llu-%llu) does not match its digest; not "
				  "cached, the reader gets EIO; re-publish the model "
				  "(blobcachectl publish --in-place --force)",
				  s->blob.path, s->blob.digest, (unsigned long long)job->index,
				  (unsigned long long)job->start,
				  (unsigned long long)(job->start + job->data_len));
		}
		if (!s->verify_warned) { /* once per blob (per open object) */
			s->verify_warned = true;
			log_error("blob %.12s: chunk %llu (bytes %llu-%llu) does not match its "
				  "digest "
				  "in the catalogue: not cached, the reader gets EIO (origin "
				  "corrupt or "
				  "model republished without updating the catalogue)",
				  s->blob.digest, (unsigned long long)job->index,
				  (unsigned long long)job->start,
				  (unsigned long long)(job->start + job->data_len));
		}
		job->result = -EIO;
	} else if (job->result >= 0) {
		static const uint64_t bounds[] = FILL_LATENCY_BUCKETS_MS;
		uint64_t now = loop_now_ms(), ms = now - job->dispatch_ms;

		f->stats.chunks_fetched++;
		f->stats.origin_last_ok_ms = now;
		for (size_t i = 0; i < ARRAY_SIZE(bounds); i++)
			if (ms <= bounds[i])
				f->stats.fetch_latency[i]++;
		f->stats.fetch_latency_count++;
		f->stats.fetch_latency_sum_ms += ms;
		/* Verified: written by a writer thread, while this verifier takes the next. */
		if (job->n_targets && workpool_submit(f->writers, write_work, write_done, job) >= 0)
			return;
		if (job->n_targets) { /* no memory for the hand-over: write here (rare) */
			write_work(job);
			write_done(job);
			return;
		}
	}
	f->stats.inflight--;
	job_complete(f, job);
	dispatch(f);
}

static void add_target(struct chunk_job *job, struct fill_sink *s)
{
	if (s->fd < 0)
		return;
	for (size_t i = 0; i < job->n_targets; i++)
		if (job->targets[i] == s)
			return;
	job->targets[job->n_targets++] = fill_sink_ref(s);
}

static void on_fetched(void *userdata, ssize_t result)
{
	struct chunk_job *job = userdata;
	struct fill *f = job->fill;
	struct fill_sink *s = job->owner;
	size_t n = 1;
	int r;

	if (result < 0) {
		f->stats.inflight--;
		f->stats.origin_errors++;
		f->stats.origin_last_error_ms = loop_now_ms();
		f->probe_blob = s->blob;
		f->probe_blob.chunk_digests = NULL;
		f->probe_blob.n_chunk_digests = 0;
		f->probe_off = job->start;
		job->result = (int)result;
		if (s->blob.path[0])
			log_warn_errno(job->result,
				       "blob %.12s (in-place file %s): fetch of chunk %llu (bytes "
				       "%llu-%llu) failed; if the file changed since it was "
				       "published, re-publish the model",
				       s->blob.digest, s->blob.path, (unsigned long long)job->index,
				       (unsigned long long)job->start,
				       (unsigned long long)(job->start + job->data_len));
		else
			log_warn_errno(job->result,
				       "blob %.12s: fetch of chunk %llu (bytes %llu-%llu) failed",
				       s->blob.digest, (unsigned long long)job->index,
				       (unsigned long long)job->start,
				       (unsigned long long)(job->start + job->data_len));
		job_complete(f, job);
		dispatch(f);
		return;
	}
	f->stats.origin_bytes += job->data_len;
	s->origin_bytes += job->data_len;

	for (struct waiter *w = job->waiters; w; w = w->next)
		n++;
	job->targets = calloc(n, sizeof(*job->targets));
	job->target_results = calloc(n, sizeof(*job->target_results));
	if (!job->targets || !job->target_results) {
		r = -ENOMEM;
		goto fail;
	}
	add_target(job, s);
	for (struct waiter *w = job->waiters; w; w = w->next)
		add_target(job, w->sink);
	job->state = JOB_PROCESSING;
	r = workpool_submit(f->pool, process_work, process_done, job);
	if (r >= 0)
		return;
fail:
	f->stats.inflight--;
	job->result = r;
	job_complete(f, job);
	dispatch(f);
}

/* An in-place sink reads from where the catalogue has its bytes now: the entry it was opened
 * for may have been re-published over a rewritten file, or removed with its directory, while
 * the object still serves other mounts and models that list another copy (fill_set_locator). */
static void sink_relocate(struct fill *f, struct fill_sink *s)
{
	const struct catalogue_blob *b;

	if (!f->locate || !(b = f->locate(f->locate_data, &s->blob)))
		return;
	if (!b->path[0] || b->size != s->blob.size || !streq(b->digest, s->blob.digest) ||
	    b->file_size > b->size ||
	    (streq(b->path, s->blob.path) && b->file_size == s->blob.file_size))
		return;
	log_notice("blob %.12s: in-place bytes read from %s from now on, where the catalogue lists "
		   "them (not from %s)",
		   s->blob.digest, b->path, s->blob.path);
	snprintf(s->blob.path, sizeof(s->blob.path), "%s", b->path);
	s->blob.file_size = b->file_size;
	s->verify_warned = false; /* a new file: a change in it is worth its own warning */
}

static void dispatch(struct fill *f)
{
	/* Read-ahead may use three quarters of the slots; the rest stay free for readers. */
	uint64_t prefetch_limit = MAX(1, f->opts.max_inflight * 3 / 4);

	while (f->stats.inflight < f->opts.max_inflight) {
		struct chunk_job *job = queue_pop(&f->demand);
		uint64_t fetch_len;
		int r;

		if (!job) {
			if (f->stats.inflight >= prefetch_limit)
				break;
			job = queue_pop(&f->prefetch);
			if (!job)
				break;
		}
		/* Everyone waiting gave up (deadline): do not spend the origin on it. */
		if (job->whole_blob ? !job->blob_done
				    : !job->prefetch && !job_has_live_waiter(job)) {
			job->result = -ETIMEDOUT;
			job_complete(f, job);
			continue;
		}
		job->pooled = !job->whole_blob && job->end - job->start <= f->opts.chunk_size;
		if (job->pooled ? !(job->buf = buf_get(f))
				: posix_memalign(&job->buf, PAGE, job->end - job->start) != 0) {
			job->buf = NULL;
			job->result = -ENOMEM;
			job_complete(f, job);
			continue;
		}
		job->state = JOB_FETCHING;
		job->dispatch_ms = loop_now_ms();
		f->stats.inflight++;
		/* An in-place blob is its file zero-padded to a whole block: fetch the file's
		 * bytes, the zeros are ours (verified with them, as publish digested them). */
		fetch_len = job->data_len;
		if (job->owner->blob.path[0]) {
			sink_relocate(f, job->owner);
			fetch_len = MIN(fetch_len, job->owner->blob.file_size - job->start);
		}
		memset((char *)job->buf + fetch_len, 0, job->data_len - fetch_len);
		r = origin_fetch_blob(f->origin, &job->owner->blob, job->start, (size_t)fetch_len,
				      job->buf, on_fetched, job);
		if (r < 0) {
			f->stats.inflight--;
			job->result = r;
			job_complete(f, job);
		}
	}
}

static void on_origin_probe(void *userdata, ssize_t result)
{
	struct origin_probe *p = userdata;
	struct fill *f = p->fill;

	free(p->buf);
	free(p);
	if (!f)
		return;
	f->probe = NULL;
	if (result >= 0) {
		f->stats.origin_last_ok_ms = loop_now_ms();
		log_notice("origin answers again (re-read part of blob %.12s)",
			   f->probe_blob.digest);
	} else {
		f->stats.origin_last_error_ms = loop_now_ms();
	}
}

void fill_check_origin(struct fill *f)
{
	/* an in-place blob's file ends before its padding */
	uint64_t limit = f->probe_blob.path[0] ? f->probe_blob.file_size : f->probe_blob.size;
	uint64_t now = loop_now_ms(), len;
	struct origin_probe *p;
	int r;

	if (f->stats.origin_last_error_ms <= f->stats.origin_last_ok_ms || f->probe ||
	    !f->probe_blob.digest[0] || now - f->probe_last_ms < ORIGIN_PROBE_INTERVAL_MS ||
	    f->probe_off >= limit)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	len = MIN((uint64_t)PAGE, limit - f->probe_off);
	if (posix_memalign(&p->buf, PAGE, PAGE) != 0) {
		free(p);
		return;
	}
	p->fill = f;
	f->probe = p;
	f->probe_last_ms = now;
	r = origin_fetch_blob(f->origin, &f->probe_blob, f->probe_off, (size_t)len, p->buf,
			      on_origin_probe, p);
	if (r < 0) {
		f->probe = NULL;
		free(p->buf);
		free(p);
	}
}

/* Is chunk index ([start, end)) of the cache file already written? The chunk map says so if
 * the sink has one; otherwise SEEK_HOLE finds the first hole. */
static bool chunk_present(const struct fill_sink *s, uint64_t index, uint64_t start, uint64_t end)
{
	off_t data, hole;

	if (s->map)
		return chunkmap_has(s->map, index);
	if (sink_known_present(s, index))
		return true;
	if (sink_known_absent(s, index))
		return false;
	/* Where the next data is: every chunk wholly before it is a hole (no data after start:
	 * all the rest are). A chunk with data in it is present if no hole starts before its end
	 * (a chunk is written whole; a part of one, e.g. after a failed write, counts as absent).
	 */
	data = lseek(s->fd, (off_t)start, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		for (uint64_t i = index; i < s->n_chunks; i++)
			sink_mark_absent(s, i);
		return false;
	}
	if (data < 0)
		return false;
	if ((uint64_t)data >= end) {
		for (uint64_t i = index; i < s->n_chunks && (i + 1) * s->unit <= (uint64_t)data;
		     i++)
			sink_mark_absent(s, i);
		return false;
	}
	hole = lseek(s->fd, (off_t)start, SEEK_HOLE);
	if (hole < 0 || (uint64_t)hole < end)
		return false;
	sink_mark_present(s, index);
	return true;
}

bool fill_range_cached(const struct fill_sink *s, uint64_t off, uint64_t len)
{
	uint64_t first, last, start, end, data_len;

	if (fill_plan(s->blob.size, s->unit, off, len, &first, &last) < 0)
		return false;
	for (uint64_t i = first; i <= last; i++)
		if (!fill_chunk_extent(s->blob.size, s->unit, i, &start, &end, &data_len) ||
		    !chunk_present(s, i, start, end))
			return false;
	return true;
}

static struct chunk_job *job_new(struct fill_sink *s, uint64_t index, bool prefetch)
{
	struct fill *f = s->fill;
	struct chunk_job *job;
	uint64_t start, end, data_len;

	if (!fill_chunk_extent(s->blob.size, s->unit, index, &start, &end, &data_len))
		return NULL;
	job = calloc(1, sizeof(*job));
	if (!job)
		return NULL;
	job->fill = f;
	job->owner = fill_sink_ref(s);
	job->index = index;
	job->start = start;
	job->end = end;
	job->data_len = data_len;
	job->prefetch = prefetch;
	job->hashed = true;
	size_t b = job_bucket(s->blob.digest, index);
	job->hash_next = f->jobs[b];
	f->jobs[b] = job;
	queue_push(prefetch ? &f->prefetch : &f->demand, job);
	return job;
}

static int attach_chunk(struct fill_sink *s, struct fill_request *req, uint64_t index)
{
	struct fill *f = s->fill;
	struct chunk_job *job = job_find(f, s->blob.digest, index);
	uint64_t start, end, data_len;
	struct waiter *w;

	if (job && job->state != JOB_QUEUED &&
	    loop_now_ms() - job->dispatch_ms >= f->opts.request_timeout_ms) {
		/* The origin has sat on this chunk for a whole deadline already: the kernel retries
		 * a failed READ, and making each retry wait another deadline would multiply the
		 * reader's wait. Fail at once; a READ after the fetch ends starts afresh. */
		f->stats.requests_timed_out++;
		return -ETIMEDOUT;
	}
	if (!job) {
		if (!fill_chunk_extent(s->blob.size, s->unit, index, &start, &end, &data_len))
			return -EINVAL;
		if (chunk_present(s, index, start, end)) {
			f->stats.chunks_present++;
			return 0;
		}
		job = job_new(s, index, false);
		if (!job)
			return -ENOMEM;
	} else {
		f->stats.chunks_deduped++;
		if (job->prefetch && job->state == JOB_QUEUED) {
			/* A reader needs it now: it is demand from here on. Moving it between
			 * queues costs a scan of the (short) prefetch queue. */
			struct chunk_job **pp;
			for (pp = &f->prefetch.head; *pp; pp = &(*pp)->queue_next)
				if (*pp == job) {
					*pp = job->queue_next;
					if (f->prefetch.tail == job) {
						f->prefetch.tail = NULL;
						for (struct chunk_job *j = f->prefetch.head; j;
						     j = j->queue_next)
							f->prefetch.tail = j;
					}
					queue_push(&f->demand, job);
					break;
				}
		}
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM; /* a new job without waiters is dropped at dispatch */
	w->req = req;
	w->sink = fill_sink_ref(s);
	w->next = job->waiters;
	job->waiters = w;
	req->refs++;
	req->pending++;
	return 0;
}

static void start_readahead(struct fill_sink *s, uint64_t first)
{
	struct fill *f = s->fill;
	uint64_t ra_chunks = f->opts.readahead_bytes / s->unit, from, to;

	if (fill_readahead_plan(first, s->last_first, s->ra_next, ra_chunks, s->n_chunks, &from,
				&to)) {
		for (uint64_t i = from; i <= to; i++) {
			uint64_t start, end, data_len;
			if (job_find(f, s->blob.digest, i) ||
			    !fill_chunk_extent(s->blob.size, s->unit, i, &start, &end, &data_len) ||
			    chunk_present(s, i, start, end))
				continue;
			if (!job_new(s, i, true))
				break;
			f->stats.chunks_prefetched++;
		}
		s->ra_next = MAX(s->ra_next, to + 1);
	}
	s->last_first = first;
	s->ra_next = MAX(s->ra_next, first + 1);
}

static void wake_ready(struct fill *f)
{
	uint64_t one = 1;

	if (write(f->eventfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "eventfd write failed");
}

static int read_range(struct fill_sink *s, uint64_t off, uint64_t len, bool readahead,
		      fill_done_fn done, void *userdata)
{
	struct fill *f = s->fill;
	struct fill_request *req;
	uint64_t first, last;
	int r;

	r = fill_plan(s->blob.size, s->unit, off, len, &first, &last);
	if (r < 0)
		return r;
	if (s->preload)
		write_preload(s);
	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->refs = 1;
	req->done = done;
	req->userdata = userdata;
	req->deadline_ms = loop_now_ms() + f->opts.request_timeout_ms;
	req->prev = f->requests_tail;
	if (f->requests_tail)
		f->requests_tail->next = req;
	else
		f->requests_head = req;
	f->requests_tail = req;
	f->stats.requests++;
	f->stats.bytes_requested += len;

	/* Held across the loop so that no completion can finish the request under us. */
	req->pending++;
	for (uint64_t i = first; i <= last; i++) {
		r = attach_chunk(s, req, i);
		if (r < 0) {
			req->result = r;
			break;
		}
	}
	if (readahead)
		start_readahead(s, first);
	if (--req->pending == 0) {
		/* Nothing to fetch (all present): complete from the loop, not from inside this
		 * call, so the caller's state is settled when done() runs. */
		bool wake = !f->ready; /* else the eventfd is pending already */

		req->refs++;
		req->next_ready = f->ready;
		f->ready = req;
		if (wake)
			wake_ready(f);
	}
	dispatch(f);
	return 0;
}

int fill_read(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done, void *userdata)
{
	return read_range(s, off, len, true, done, userdata);
}

int fill_read_no_readahead(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done,
			   void *userdata)
{
	return read_range(s, off, len, false, done, userdata);
}

/* Pool thread: look for a verified copy of a whole blob in opts.meta_dir. */
static void local_blob_work(void *userdata)
{
	struct chunk_job *job = userdata;
	const struct catalogue_blob *b = &job->owner->blob;
	char path[PATH_MAX];
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;

	job->from_local = false;
	snprintf(path, sizeof(path), "%s/%s", job->fill->opts.meta_dir, b->digest);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	n = pread_full(fd, job->buf, job->data_len, 0);
	if (n != (ssize_t)job->data_len || verify_whole(b->digest, job->buf, job->data_len) < 0) {
		/* A damaged local copy: drop it, the origin has the real one. */
		log_warn("local copy %s is damaged: removed, fetching from the origin", path);
		unlink(path);
		return;
	}
	memset((char *)job->buf + job->data_len, 0, job->end - job->start - job->data_len);
	job->from_local = true;
}

static void local_blob_done(void *userdata)
{
	struct chunk_job *job = userdata;
	struct fill *f = job->fill;

	if (job->from_local) {
		job->result = 0;
		job_complete(f, job);
		return;
	}
	free(job->buf);
	job->buf = NULL;
	queue_push(&f->demand, job);
	dispatch(f);
}

/* Pool thread, after a whole blob verified: keep a copy for the next mount (atomically). */
static void save_local_blob(struct chunk_job *job)
{
	const char *dir = job->fill->opts.meta_dir;
	const struct catalogue_blob *b = &job->owner->blob;
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, b->digest);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, b->digest);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	if (write(fd, job->buf, job->data_len) != (ssize_t)job->data_len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return;
	}
	close(fd);
	if (rename(tmp, path) < 0)
		unlink(tmp);
}

int fill_fetch_verified_blob(struct fill *f, const struct catalogue_blob *blob,
			     fill_blob_done_fn done, void *userdata)
{
	struct fill_sink *s = NULL;
	struct chunk_job *job;
	int r;

	if (blob->size > MAX_WHOLE_BLOB)
		return -EFBIG;
	r = sink_alloc(f, blob, -1, &s); /* fd -1: nothing is written */
	if (r < 0)
		return r;
	job = calloc(1, sizeof(*job));
	if (!job) {
		fill_sink_unref(s);
		return -ENOMEM;
	}
	job->fill = f;
	job->owner = s; /* takes our reference */
	job->start = 0;
	job->end = ALIGN_UP(blob->size, PAGE);
	job->data_len = blob->size;
	job->whole_blob = true;
	job->blob_done = done;
	job->blob_userdata = userdata;
	/* A mount waits for this answer: it gets the same deadline as any READ. */
	job->blob_deadline_ms = loop_now_ms() + f->opts.request_timeout_ms;
	job->blob_next = f->blob_jobs;
	f->blob_jobs = job;
	if (f->opts.meta_dir) {
		/* A verified copy may be on the cache volume already: then a cached model mounts
		 * without the origin. Read and re-check it in the pool. */
		if (posix_memalign(&job->buf, PAGE, job->end - job->start) == 0 &&
		    workpool_submit(f->pool, local_blob_work, local_blob_done, job) >= 0)
			return 0;
		free(job->buf);
		job->buf = NULL;
	}
	queue_push(&f->demand, job);
	dispatch(f);
	return 0;
}

static void on_ready(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct fill *f = userdata;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "eventfd read failed");
	while (f->ready) {
		struct fill_request *req = f->ready;
		f->ready = req->next_ready;
		if (req->pending == 0)
			request_finish(f, req);
		request_unref(req);
	}
}

static void on_timer(struct loop *loop, void *userdata)
{
	struct fill *f = userdata;
	uint64_t now = loop_now_ms();

	/* Deadlines are submission time + one timeout: the list is in deadline order. */
	while (f->requests_head && f->requests_head->deadline_ms <= now) {
		struct fill_request *req = f->requests_head;
		f->stats.requests_timed_out++;
		req->result = -ETIMEDOUT;
		request_finish(f, req);
	}
	for (struct chunk_job *job = f->blob_jobs, *next; job; job = next) {
		next = job->blob_next;
		if (job->blob_deadline_ms <= now) {
			f->stats.requests_timed_out++;
			blob_job_answer(f, job, -ETIMEDOUT);
		}
	}
	f->stats.oldest_request_age_ms =
		f->requests_head
			? now - (f->requests_head->deadline_ms - f->opts.request_timeout_ms)
			: 0;
	commit_scan(f);
	/* Jobs whose waiters all gave up are dropped from the queue at dispatch. */
	dispatch(f);
}

int fill_new(struct loop *loop, struct origin *origin, const struct fill_options *opts,
	     struct fill **out)
{
	struct fill *f;
	int r;

	if (opts->chunk_size < PAGE || (opts->chunk_size & (opts->chunk_size - 1)) ||
	    opts->max_inflight == 0 || opts->threads == 0)
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->loop = loop;
	f->origin = origin;
	f->opts = *opts;
	f->timer = -1;
	f->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->eventfd < 0) {
		r = -errno;
		free(f);
		return r;
	}
	r = workpool_new(loop, "fill", opts->threads, &f->pool);
	if (r >= 0)
		r = workpool_new(loop, "fill writer", WRITE_THREADS, &f->writers);
	if (r >= 0)
		r = loop_add_fd(loop, f->eventfd, EPOLLIN, on_ready, f);
	if (r >= 0)
		r = f->timer = loop_add_periodic(loop, TIMEOUT_SCAN_MS, on_timer, f);
	if (r < 0) {
		fill_free(f);
		return r;
	}
	*out = f;
	return 0;
}

void fill_set_locator(struct fill *f, fill_locate_fn fn, void *userdata)
{
	f->locate = fn;
	f->locate_data = userdata;
}

void fill_free(struct fill *f)
{
	if (!f)
		return;
	if (f->probe)
		f->probe->fill = NULL; /* its answer, if the origin still gives one, is dropped */
	/* Requests still open are failed: their front end is going away. */
	while (f->requests_head) {
		struct fill_request *req = f->requests_head;
		req->result = -ESHUTDOWN;
		request_finish(f, req);
	}
	workpool_free(f->pool);
	workpool_free(f->writers);
	/* What the writers left becomes durable and known to the maps: a restart finds it. This
	 * includes the last commits of sinks nobody holds, dropped with the pool (the process
	 * exits next: those sinks are not freed, a pool thread may still be in one). The other
	 * sinks stay (front ends may hold them) and are told that the fill core is gone; a
	 * write still running commits itself, or is lost to the map (a refetch). */
	for (struct fill_sink *s = f->sinks; s; s = s->sink_next) {
		if (s->map && s->fd >= 0 && chunkmap_pending(s->map, NULL) > 0)
			sink_commit(s);
		s->commit_listed = false;
		s->fill = NULL;
	}
	f->commits = NULL;
	f->sinks = NULL;
	loop_remove_fd(f->loop, f->eventfd);
	if (f->timer >= 0)
		loop_remove_fd(f->loop, f->timer);
	close(f->eventfd);
	/* Jobs still queued or in flight keep their sinks; the process exits next. */
	while (f->n_bufs)
		free(f->bufs[--f->n_bufs]);
	free(f);
}

const struct fill_stats *fill_get_stats(struct fill *f)
{
	return &f->stats;
}
