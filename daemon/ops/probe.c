// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/probe.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include "log.h"
#include "core/loop.h"
#include "macros.h"

/* Enough that idle or slow clients (a scanner, 1,000 idle sockets) cannot starve the
 * orchestrator's probes: each costs an fd and a lazily touched 8 KiB pool, and is dropped after
 * CONNECTION_TIMEOUT_S of silence. The daemon raises its fd limit at start for this. */
#define MAX_CONNECTIONS	     2048
#define CONNECTION_TIMEOUT_S 5
#define CONNECTION_MEMORY    8192 /* bounds request headers: larger ones get 431 */

struct models_req;

struct probe {
	struct loop *loop;
	struct MHD_Daemon *mhd;
	int epoll_fd;
	int timer;
	probe_gather_fn gather;
	void *userdata;
	struct models_req *waiting; /* suspended /models requests, waiting for a walk */
};

/* A /models request: its connection is suspended until a walk of the cache has been applied,
 * then resumed and answered from the fresh figures. */
struct models_req {
	struct probe *p;
	struct MHD_Connection *c;
	struct space_wait *wait; /* NULL once called (or cancelled) */
	/* From the probe source when asked: the same when answered (the daemon's). */
	void (*cancel)(void *userdata, struct space_wait *w);
	void *userdata;
	bool scanned;  /* the walk was applied: answer */
	bool stopping; /* the endpoint stops: close */
	struct models_req *prev, *next;
};

bool probe_ready(const struct probe_source *s, uint64_t now_ms, char *why, size_t why_len)
{
	size_t used = 0;
	bool ready = true;

#define REASON(...)                                                                                \
	do {                                                                                       \
		ready = false;                                                                     \
		if (used < why_len)                                                                \
			used += (size_t)snprintf(why + used, why_len - used, __VA_ARGS__);         \
	} while (0)

	if (why_len)
		why[0] = '\0';
	if (!s->bound)
		REASON("cachefiles device not bound\n");
	if (s->fill->oldest_request_age_ms >= s->request_timeout_ms)
		REASON("a request is %llu ms old, past its %llu ms deadline\n",
		       (unsigned long long)s->fill->oldest_request_age_ms,
		       (unsigned long long)s->request_timeout_ms);
	if (s->fill->origin_last_error_ms > s->fill->origin_last_ok_ms)
		REASON("origin failing: its last fetch failed %llu ms ago\n",
		       (unsigned long long)(now_ms - s->fill->origin_last_error_ms));
	if (s->extra_ready && !s->extra_ready(s->extra, why, why_len))
		ready = false;
#undef REASON
	return ready;
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v)
{
	fprintf(f, "# HELP blobcached_%s %s\n# TYPE blobcached_%s counter\nblobcached_%s %llu\n",
		name, help, name, name, (unsigned long long)v);
}

/* A family whose samples carry one label: its header, then one sample() per label value. */
static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP blobcached_%s %s\n# TYPE blobcached_%s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *label, const char *value, uint64_t v)
{
	fprintf(f, "blobcached_%s{%s=\"%s\"} %llu\n", name, label, value, (unsigned long long)v);
}

static void gauge(FILE *f, const char *name, const char *help, double v)
{
	fprintf(f, "# HELP blobcached_%s %s\n# TYPE blobcached_%s gauge\nblobcached_%s %g\n", name,
		help, name, name, v);
}

void probe_format_metrics(const struct probe_source *s, FILE *f)
{
	static const uint64_t bounds[] = FILL_LATENCY_BUCKETS_MS;
	const struct fill_stats *fs = s->fill;
	const struct ondemand_stats *os = s->ondemand;

	counter(f, "opens_total", "OPEN requests from the kernel", os->opens);
	counter(f, "opens_refused_total", "OPENs answered with an error (unknown or bad names)",
		os->opens_refused);
	counter(f, "reads_total", "READ requests from the kernel (ranges not yet cached)",
		os->reads);
	counter(f, "read_failures_total", "READs completed without data (the reader got EIO)",
		os->reads_failed);
	counter(f, "bad_messages_total", "malformed messages from the device", os->bad_messages);
	counter(f, "bytes_requested_total", "bytes the kernel asked for", fs->bytes_requested);
	counter(f, "origin_bytes_total", "bytes fetched from the origin", fs->origin_bytes);
	counter(f, "chunks_fetched_total", "chunks fetched and verified", fs->chunks_fetched);
	counter(f, "chunks_deduplicated_total", "requests that joined a fetch in flight",
		fs->chunks_deduped);
	counter(f, "chunks_present_total", "chunks found already cached", fs->chunks_present);
	counter(f, "chunks_prefetched_total", "read-ahead fetches started", fs->chunks_prefetched);
	fprintf(f,
		"# HELP blobcached_verify_cpu_seconds_total CPU time spent hashing fetched chunks "
		"(sha256)\n# TYPE blobcached_verify_cpu_seconds_total counter\n"
		"blobcached_verify_cpu_seconds_total %.6f\n",
		(double)fs->verify_cpu_ns / 1e9);
	family(f, "errors_total", "counter", "Errors by kind");
	sample(f, "errors_total", "kind", "origin", fs->origin_errors);
	sample(f, "errors_total", "kind", "verify", fs->verify_failures);
	sample(f, "errors_total", "kind", "cache_write", fs->cache_write_errors);
	sample(f, "errors_total", "kind", "timeout", fs->requests_timed_out);
	fprintf(f,
		"# HELP blobcached_fetch_seconds Origin fetch latency, request to verified chunk\n"
		"# TYPE blobcached_fetch_seconds histogram\n");
	for (size_t i = 0; i < ARRAY_SIZE(bounds); i++) {
		if (bounds[i] == UINT64_MAX)
			fprintf(f, "blobcached_fetch_seconds_bucket{le=\"+Inf\"} %llu\n",
				(unsigned long long)fs->fetch_latency[i]);
		else
			fprintf(f, "blobcached_fetch_seconds_bucket{le=\"%g\"} %llu\n",
				(double)bounds[i] / 1000.0,
				(unsigned long long)fs->fetch_latency[i]);
	}
	fprintf(f, "blobcached_fetch_seconds_sum %g\nblobcached_fetch_seconds_count %llu\n",
		(double)fs->fetch_latency_sum_ms / 1000.0,
		(unsigned long long)fs->fetch_latency_count);
	gauge(f, "objects", "cache objects open (blobs of mounted models)", (double)os->objects);
	gauge(f, "inflight_chunks", "chunks being fetched or written", (double)fs->inflight);
	gauge(f, "oldest_request_age_seconds", "age of the oldest unfinished request",
	      (double)fs->oldest_request_age_ms / 1000.0);
	if (s->http) {
		counter(f, "http_attempts_total", "HTTP requests sent to the origin",
			s->http->attempts);
		counter(f, "http_retries_total", "HTTP requests that were retries",
			s->http->retries);
		counter(f, "http_failures_total", "HTTP fetches failed after retries",
			s->http->failed);
	}
	if (s->ublk) {
		const struct ublk_stats *us = s->ublk;
		gauge(f, "ublk_devices",
		      "ublk block devices serving (one per blob of a mounted "
		      "model)",
		      (double)us->devices);
		counter(f, "ublk_requests_total",
			"ublk READ requests (every page-cache miss of a ublk-mounted model)",
			us->reads);
		counter(f, "ublk_requests_cached_total",
			"ublk READ requests served from the cache file without a fill",
			us->reads_cached);
		counter(f, "ublk_request_failures_total",
			"ublk requests completed with an error (the reader got EIO)",
			us->reads_failed);
		counter(f, "ublk_bytes_read_total",
			"bytes read from cache files into ublk requests", us->bytes_read);
		counter(f, "ublk_device_errors_total", "ublk device commands that failed",
			us->device_errors);
	}
	if (s->extra_metrics)
		s->extra_metrics(s->extra, f);
	if (s->space) {
		const struct space_report *sp = s->space;
		gauge(f, "cache_volume_bytes", "size of the cache volume",
		      (double)sp->volume_bytes);
		gauge(f, "cache_volume_used_bytes", "bytes used on the cache volume (all files)",
		      (double)sp->volume_used_bytes);
		gauge(f, "cache_bytes", "bytes allocated by the cache files",
		      (double)sp->cache_bytes);
		gauge(f, "cache_files", "cache files (one per blob and volume)", (double)sp->files);
		gauge(f, "cache_high_watermark_ratio", "culling starts above this volume use",
		      sp->high_watermark / 100.0);
		gauge(f, "cache_low_watermark_ratio", "culling stops below this volume use",
		      sp->low_watermark / 100.0);
		family(f, "cache_removed_files_total", "counter", "Cache files removed, by reason");
		sample(f, "cache_removed_files_total", "reason", "watermark", sp->culled_files);
		sample(f, "cache_removed_files_total", "reason", "purge", sp->purged_files);
		sample(f, "cache_removed_files_total", "reason", "evict", sp->evicted_files);
		sample(f, "cache_removed_files_total", "reason", "retired", sp->retired_files);
		family(f, "cache_removed_bytes_total", "counter",
		       "Bytes of the cache files removed, by reason");
		sample(f, "cache_removed_bytes_total", "reason", "watermark", sp->culled_bytes);
		sample(f, "cache_removed_bytes_total", "reason", "purge", sp->purged_bytes);
		sample(f, "cache_removed_bytes_total", "reason", "evict", sp->evicted_bytes);
		sample(f, "cache_removed_bytes_total", "reason", "retired", sp->retired_bytes);
		counter(f, "cull_busy_total", "culls the kernel refused (file in use)",
			sp->cull_busy);
		family(f, "model_cached_bytes", "gauge", "Bytes of a model in the cache");
		for (size_t i = 0; i < sp->n_models; i++)
			sample(f, "model_cached_bytes", "model", sp->models[i].name,
			       sp->models[i].cached);
		family(f, "model_size_bytes", "gauge", "Size of a model (its blobs)");
		for (size_t i = 0; i < sp->n_models; i++)
			sample(f, "model_size_bytes", "model", sp->models[i].name,
			       sp->models[i].size);
		family(f, "model_pinned", "gauge", "Whether a model is pinned");
		for (size_t i = 0; i < sp->n_models; i++)
			sample(f, "model_pinned", "model", sp->models[i].name,
			       sp->models[i].pinned);
	}
}

bool probe_model_ready(const struct probe_model *m)
{
	return m->size > 0 && m->cached >= m->size && (!m->mount || m->mount_up);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_model(FILE *f, const struct probe_model *m)
{
	fprintf(f, "{\"name\": ");
	json_string(f, m->name);
	fprintf(f,
		", \"ready\": %s, \"size\": %" PRIu64 ", \"cached\": %" PRIu64
		", \"cached_fraction\": %.4f, \"pinned\": %s, \"mount\": ",
		probe_model_ready(m) ? "true" : "false", m->size, MIN(m->cached, m->size),
		m->size ? (double)MIN(m->cached, m->size) / (double)m->size : 0.0,
		m->pinned ? "true" : "false");
	if (m->mount) {
		json_string(f, m->mount);
		fprintf(f, ", \"mounted\": %s", m->mount_up ? "true" : "false");
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ", \"preload\": ");
	json_string(f, m->preload ? m->preload : "off");
	fprintf(f, "}");
}

void probe_format_models(const struct probe_model *models, size_t n, bool one, FILE *f)
{
	if (one && n) {
		json_model(f, &models[0]);
		fprintf(f, "\n");
		return;
	}
	fprintf(f, "{\"models\": [");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n  ", i ? "," : "");
		json_model(f, &models[i]);
	}
	fprintf(f, "%s]}\n", n ? "\n" : "");
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
			     char *body, size_t len)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* /models and /models/NAME (name NULL: the list). */
static enum MHD_Result models_reply(struct MHD_Connection *c, const struct probe_source *src,
				    const char *name)
{
	_cleanup_free_ struct probe_model *models = NULL;
	_cleanup_free_ char *buf = NULL;
	const struct probe_model *pick = NULL;
	size_t n = 0, len = 0;
	unsigned status = MHD_HTTP_OK;
	FILE *f;

	if (src->list_models(src->models_userdata, &models, &n) < 0)
		return MHD_NO; /* out of memory: the connection is closed */
	if (name) {
		for (size_t i = 0; i < n && !pick; i++)
			if (streq(models[i].name, name))
				pick = &models[i];
		if (!pick) {
			static char unknown[] = "{\"error\": \"no such model in the catalogue\"}\n";
			return reply(c, MHD_HTTP_NOT_FOUND, "application/json", unknown,
				     sizeof(unknown) - 1);
		}
		status = probe_model_ready(pick) ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
	}
	f = open_memstream(&buf, &len);
	if (!f)
		return MHD_NO;
	probe_format_models(pick ? pick : models, pick ? 1 : n, pick != NULL, f);
	fclose(f);
	return reply(c, status, "application/json", buf, len);
}

static void models_unlink(struct models_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else if (q->p->waiting == q)
		q->p->waiting = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void on_models_scanned(struct space *sp, void *ctx)
{
	struct models_req *q = ctx;

	q->wait = NULL;
	q->scanned = true;
	models_unlink(q);
	MHD_resume_connection(q->c); /* MHD calls on_request again, from its epoll fd */
}

/* Ask for a walk and suspend the connection until it is applied: the walk reads every
 * directory of the cache, from disk when the page cache is cold, and must not stall the loop. */
static enum MHD_Result models_ask(struct probe *p, struct MHD_Connection *c,
				  const struct probe_source *src, void **req_cls)
{
	struct models_req *q = calloc(1, sizeof(*q));

	if (!q)
		return MHD_NO;
	q->p = p;
	q->c = c;
	q->cancel = src->models_cancel;
	q->userdata = src->models_userdata;
	q->wait = src->models_wait(src->models_userdata, on_models_scanned, q);
	if (!q->wait) {
		free(q);
		return MHD_NO;
	}
	q->next = p->waiting;
	if (p->waiting)
		p->waiting->prev = q;
	p->waiting = q;
	*req_cls = q;
	MHD_suspend_connection(c);
	return MHD_YES;
}

/* The request is over (answered, or its connection closed): free what models_ask made. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct models_req *q = *req_cls;

	if (!q)
		return;
	if (q->wait && q->cancel)
		q->cancel(q->userdata, q->wait);
	models_unlink(q);
	free(q);
	*req_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct probe *p = cls;
	struct probe_source src = { 0 };
	struct models_req *q = *req_cls;
	char text[1024];

	if (q && q->stopping)
		return MHD_NO;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
	if (streq(url, "/livez"))
		return reply(c, MHD_HTTP_OK, "text/plain", "ok\n", 3);
	p->gather(p->userdata, &src);
	if (streq(url, "/readyz")) {
		if (probe_ready(&src, loop_now_ms(), text, sizeof(text)))
			return reply(c, MHD_HTTP_OK, "text/plain", "ready\n", 6);
		return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", text, strlen(text));
	}
	if (streq(url, "/metrics")) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		enum MHD_Result ret;

		if (!f)
			return MHD_NO;
		probe_format_metrics(&src, f);
		fclose(f);
		ret = reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4", buf, len);
		free(buf);
		return ret;
	}
	if ((streq(url, "/models") || strncmp(url, "/models/", 8) == 0) && src.list_models &&
	    src.models_wait) {
		if (!q)
			return models_ask(p, c, &src, req_cls);
		return models_reply(c, &src, url[7] == '/' ? url + 8 : NULL);
	}
	{
		static char not_found[] = "not found: try /livez /readyz /metrics /models\n";
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found, sizeof(not_found) - 1);
	}
}

/* Let MHD work until it has nothing due now: with external epoll it may leave work (an error
 * response to send, a connection to close) for an immediate next call, which its epoll fd
 * does not signal again. */
static void run_mhd(struct probe *p)
{
	MHD_UNSIGNED_LONG_LONG timeout;

	for (int i = 0; i < 16; i++) {
		MHD_run(p->mhd);
		if (MHD_get_timeout(p->mhd, &timeout) != MHD_YES || timeout > 0)
			break;
	}
}

static void on_epoll(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	run_mhd(userdata);
}

static void on_tick(struct loop *loop, void *userdata)
{
	run_mhd(userdata); /* connection timeouts */
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_debug("probe endpoint: %s", msg);
}

int probe_start(struct loop *loop, const char *listen, probe_gather_fn gather, void *userdata,
		struct probe **out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const union MHD_DaemonInfo *info;
	char host[64];
	const char *colon = strrchr(listen, ':');
	unsigned long port;
	struct probe *p;
	char *end;
	int r;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return log_error_errno(EINVAL, "probe_listen '%s': expected ADDRESS:PORT", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || port == 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return log_error_errno(EINVAL,
				       "probe_listen '%s': expected an IPv4 ADDRESS:PORT, e.g. "
				       "127.0.0.1:9464",
				       listen);
	sa.sin_port = htons((uint16_t)port);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->gather = gather;
	p->userdata = userdata;
	p->timer = -1;
	p->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME, 0,
				  NULL, NULL, on_request, p, MHD_OPTION_SOCK_ADDR,
				  (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				  NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!p->mhd) {
		free(p);
		return log_error_errno(EADDRINUSE, "probe endpoint: cannot listen on %s (in use?)",
				       listen);
	}
	info = MHD_get_daemon_info(p->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	p->epoll_fd = info ? info->epoll_fd : -1;
	r = p->epoll_fd >= 0 ? loop_add_fd(loop, p->epoll_fd, EPOLLIN, on_epoll, p) : -EIO;
	if (r >= 0)
		r = p->timer = loop_add_periodic(loop, 1000, on_tick, p);
	if (r < 0) {
		probe_stop(p);
		return log_error_errno(r, "probe endpoint: cannot join the event loop");
	}
	log_info("probe endpoint on http://%s (/livez /readyz /metrics)", listen);
	*out = p;
	return 0;
}

void probe_stop(struct probe *p)
{
	if (!p)
		return;
	if (p->epoll_fd >= 0)
		loop_remove_fd(p->loop, p->epoll_fd);
	if (p->timer >= 0)
		loop_remove_fd(p->loop, p->timer);
	/* Suspended requests: their walks are not waited for; MHD closes them once resumed. */
	while (p->waiting) {
		struct models_req *q = p->waiting;

		models_unlink(q);
		if (q->wait && q->cancel)
			q->cancel(q->userdata, q->wait);
		q->wait = NULL;
		q->stopping = true;
		MHD_resume_connection(q->c);
	}
	MHD_stop_daemon(p->mhd);
	free(p);
}
