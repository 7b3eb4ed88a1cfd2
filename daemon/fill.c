// SPDX-License-Identifier: GPL-2.0-or-later
#include "fill.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "log.h"
#include "loop.h"
#include "macros.h"
#include "origin.h"

#define PAGE		4096ULL
#define TIMEOUT_SCAN_MS 100

struct fill_request {
	unsigned refs;	  /* the fill core's own + one per chunk job waiting for it */
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
	struct waiter *next;
};

struct chunk_job {
	struct fill_sink *sink;
	uint64_t index, start, end, data_len;
	void *buf;
	bool dispatched;
	uint64_t dispatch_ms;
	struct waiter *waiters;
	struct chunk_job *next_in_sink; /* sink->jobs */
	struct chunk_job *next_queued;	/* fill->queue, before dispatch */
};

struct fill_sink {
	unsigned refs;
	struct fill *fill;
	int fd;
	struct catalogue_blob blob;
	uint64_t origin_bytes;
	struct chunk_job *jobs; /* in flight or queued, for dedupe */
};

struct fill {
	struct loop *loop;
	struct origin *origin;
	struct fill_options opts;
	struct fill_stats stats;
	struct fill_request *requests_head, *requests_tail; /* not finished */
	struct chunk_job *queue_head, *queue_tail;	    /* waiting for an in-flight slot */
	struct fill_request *ready;			    /* finished before any fetch */
	int eventfd;
	int timer;
};

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

int fill_sink_new(struct fill *f, const struct catalogue_blob *blob, int fd, struct fill_sink **out)
{
	struct fill_sink *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->fill = f;
	s->fd = fd;
	s->blob = *blob;
	*out = s;
	return 0;
}

struct fill_sink *fill_sink_ref(struct fill_sink *s)
{
	s->refs++;
	return s;
}

void fill_sink_unref(struct fill_sink *s)
{
	if (!s || --s->refs > 0)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s);
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

/* ---- chunk jobs ---- */

static void job_free(struct fill *f, struct chunk_job *job, int result)
{
	struct chunk_job **pp;

	for (pp = &job->sink->jobs; *pp; pp = &(*pp)->next_in_sink)
		if (*pp == job) {
			*pp = job->next_in_sink;
			break;
		}
	while (job->waiters) {
		struct waiter *w = job->waiters;
		job->waiters = w->next;
		request_chunk_done(f, w->req, result);
		free(w);
	}
	fill_sink_unref(job->sink);
	free(job->buf);
	free(job);
}

static bool job_has_live_waiter(const struct chunk_job *job)
{
	for (const struct waiter *w = job->waiters; w; w = w->next)
		if (!w->req->finished)
			return true;
	return false;
}

static void dispatch_queue(struct fill *f);

static void on_fetched(void *userdata, ssize_t result)
{
	struct chunk_job *job = userdata;
	struct fill_sink *s = job->sink;
	struct fill *f = s->fill;
	int r = 0;

	f->stats.inflight--;
	if (result < 0) {
		f->stats.origin_errors++;
		r = (int)result;
		log_warn_errno(r, "blob %.12s: fetch of chunk %llu (bytes %llu-%llu) failed",
			       s->blob.digest, (unsigned long long)job->index,
			       (unsigned long long)job->start,
			       (unsigned long long)(job->start + job->data_len));
	} else {
		uint64_t len = job->end - job->start;
		ssize_t n;

		f->stats.origin_bytes += job->data_len;
		s->origin_bytes += job->data_len;
		f->stats.chunks_fetched++;
		/* The tail past the blob's end is padding up to the next page: writes to the
		 * cache file are O_DIRECT and must be page-sized. */
		memset((char *)job->buf + job->data_len, 0, len - job->data_len);
		do
			n = pwrite(s->fd, job->buf, len, (off_t)job->start);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)len) {
			r = n < 0 ? -errno : -EIO;
			f->stats.cache_write_errors++;
			log_error_errno(r, "blob %.12s: writing chunk %llu to the cache failed",
					s->blob.digest, (unsigned long long)job->index);
		}
	}
	job_free(f, job, r);
	dispatch_queue(f);
}

static void dispatch_queue(struct fill *f)
{
	while (f->queue_head && f->stats.inflight < f->opts.max_inflight) {
		struct chunk_job *job = f->queue_head;
		int r;

		f->queue_head = job->next_queued;
		if (!f->queue_head)
			f->queue_tail = NULL;
		/* Everyone waiting gave up (deadline): do not spend the origin on it. */
		if (!job_has_live_waiter(job)) {
			job_free(f, job, -ETIMEDOUT);
			continue;
		}
		if (posix_memalign(&job->buf, PAGE, job->end - job->start) != 0) {
			job->buf = NULL;
			job_free(f, job, -ENOMEM);
			continue;
		}
		job->dispatched = true;
		job->dispatch_ms = loop_now_ms();
		f->stats.inflight++;
		r = origin_fetch(f->origin, job->sink->blob.digest, job->start, job->data_len,
				 job->buf, on_fetched, job);
		if (r < 0) {
			f->stats.inflight--;
			job_free(f, job, r);
		}
	}
}

/* Is [start, end) of the cache file already written? (SEEK_HOLE finds the first hole.) */
static bool chunk_present(int fd, uint64_t start, uint64_t end)
{
	off_t hole = lseek(fd, (off_t)start, SEEK_HOLE);

	return hole >= 0 && (uint64_t)hole >= end;
}

static int attach_chunk(struct fill_sink *s, struct fill_request *req, uint64_t index)
{
	struct fill *f = s->fill;
	struct chunk_job *job;
	struct waiter *w;
	uint64_t start, end, data_len;

	if (!fill_chunk_extent(s->blob.size, f->opts.chunk_size, index, &start, &end, &data_len))
		return -EINVAL;
	for (job = s->jobs; job; job = job->next_in_sink)
		if (job->index == index)
			break;
	if (job && job->dispatched &&
	    loop_now_ms() - job->dispatch_ms >= f->opts.request_timeout_ms) {
		/* The origin has sat on this chunk for a whole deadline already: the kernel retries
		 * a failed READ, and making each retry wait another deadline would multiply the
		 * reader's wait. Fail at once; a later READ after the fetch ends starts afresh. */
		f->stats.requests_timed_out++;
		return -ETIMEDOUT;
	}
	if (job) {
		f->stats.chunks_deduped++;
	} else {
		if (chunk_present(s->fd, start, end)) {
			f->stats.chunks_present++;
			return 0;
		}
		job = calloc(1, sizeof(*job));
		if (!job)
			return -ENOMEM;
		job->sink = fill_sink_ref(s);
		job->index = index;
		job->start = start;
		job->end = end;
		job->data_len = data_len;
		job->next_in_sink = s->jobs;
		s->jobs = job;
		if (f->queue_tail)
			f->queue_tail->next_queued = job;
		else
			f->queue_head = job;
		f->queue_tail = job;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM; /* a new job without waiters is dropped at dispatch */
	w->req = req;
	w->next = job->waiters;
	job->waiters = w;
	req->refs++;
	req->pending++;
	return 0;
}

static void wake_ready(struct fill *f)
{
	uint64_t one = 1;

	if (write(f->eventfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "eventfd write failed");
}

int fill_read(struct fill_sink *s, uint64_t off, uint64_t len, fill_done_fn done, void *userdata)
{
	struct fill *f = s->fill;
	struct fill_request *req;
	uint64_t first, last;
	int r;

	r = fill_plan(s->blob.size, f->opts.chunk_size, off, len, &first, &last);
	if (r < 0)
		return r;
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
	if (--req->pending == 0) {
		/* Nothing to fetch (all present): complete from the loop, not from inside this
		 * call, so the caller's state is settled when done() runs. */
		req->refs++;
		req->next_ready = f->ready;
		f->ready = req;
		wake_ready(f);
	}
	dispatch_queue(f);
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
	f->stats.oldest_request_age_ms =
		f->requests_head
			? now - (f->requests_head->deadline_ms - f->opts.request_timeout_ms)
			: 0;
	/* Jobs whose waiters all gave up are dropped from the queue at dispatch. */
	dispatch_queue(f);
}

int fill_new(struct loop *loop, struct origin *origin, const struct fill_options *opts,
	     struct fill **out)
{
	struct fill *f;
	int r;

	if (opts->chunk_size < PAGE || (opts->chunk_size & (opts->chunk_size - 1)) ||
	    opts->max_inflight == 0)
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

void fill_free(struct fill *f)
{
	if (!f)
		return;
	/* Requests still open are failed: their front end is going away. */
	while (f->requests_head) {
		struct fill_request *req = f->requests_head;
		req->result = -ESHUTDOWN;
		request_finish(f, req);
	}
	loop_remove_fd(f->loop, f->eventfd);
	if (f->timer >= 0)
		loop_remove_fd(f->loop, f->timer);
	close(f->eventfd);
	/* Jobs still queued or in flight keep their sinks; the origin is freed by the owner after
	 * us and the process exits. */
	free(f);
}

const struct fill_stats *fill_get_stats(struct fill *f)
{
	return &f->stats;
}
