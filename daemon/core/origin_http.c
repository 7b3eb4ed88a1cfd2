// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The HTTP(S) origin: blobs at <url>/blobs/sha256/<hex>, fetched by range. One libcurl multi
 * handle, driven by the daemon's epoll loop through the multi-socket API: curl tells us which
 * sockets to watch (loop_add_fd / loop_modify_fd / loop_remove_fd) and when to wake it (a
 * timerfd of ours, which also schedules retries). No thread per request; connections are
 * kept alive and reused, at most max_connections per host.
 *
 * What the server sends is checked before it is delivered: 206 with exactly the range asked
 * and the blob's size, a body of exactly the length asked (http.c). Transient failures
 * (connect, timeout, 5xx, 429, a cut connection) are retried after 1, 2, 4 ... s; answers that
 * will not change (404, 403, a wrong Content-Range) are not.
 */
#include "core/origin.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include "core/http.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "names.h"

#ifndef CURL_WRITEFUNC_ERROR /* libcurl < 7.87 */
#define CURL_WRITEFUNC_ERROR 0xFFFFFFFF
#endif

_Static_assert(ORIGIN_HTTP_ERROR_KINDS == HTTP_ERR_KIND_MAX, "origin_http_stats.errors size");

#define MAX_REDIRECTS	    5
#define CONNECT_TIMEOUT_MS  10000
#define BACKOFF_BASE_MS	    1000
#define BACKOFF_CAP_MS	    30000
#define ERROR_BODY_MAX	    (64 * 1024) /* read and drop, to keep the connection */
#define CREDENTIAL_FILE_MAX (64 * 1024)
#define LOGGED_FAILURES_MAX 1024
#define CONTENT_RANGE_MAX   96
/* curl's receive buffer (its default is 16 KiB): a 1 MiB chunk in 16 KiB recv()s costs 64 recv
 * and 64 poll calls and as many body callbacks. 512 KiB is the largest every libcurl takes. */
#define RECV_BUFFER_MAX (512 * 1024)
#define RECV_BUFFER_MIN (16 * 1024)

struct http_request {
	struct http_origin *ho;
	char digest[DIGEST_HEX_LEN + 1];
	char *url;
	uint64_t blob_size, off;
	size_t len;
	void *buf;
	origin_done_fn done;
	void *userdata;
	CURL *easy;
	unsigned attempt; /* 1 for the first */
	uint64_t started_ms;
	uint64_t retry_at_ms;
	/* This attempt's response. */
	size_t got;
	uint64_t discarded;
	bool body_started;
	bool error_status; /* the final status is not 200/206: body dropped */
	int own_error;	   /* set when a callback of ours aborted the transfer */
	const char *own_reason;
	char content_range[CONTENT_RANGE_MAX];
	bool have_content_range;
	char errbuf[CURL_ERROR_SIZE];
	struct http_request *prev, *next; /* ho->requests */
	struct http_request *next_retry;  /* ho->retry_head, by retry_at_ms */
};

struct logged_failure {
	char digest[DIGEST_HEX_LEN + 1];
	enum http_error_kind kind;
	struct logged_failure *next;
};

struct http_origin {
	struct origin base;
	struct loop *loop;
	CURLM *multi;
	int timerfd;
	uint64_t curl_due_ms; /* UINT64_MAX: curl wants no timeout */
	char *url;	      /* without trailing '/' */
	char *bearer, *userpwd;
	char *ca_file, *ca_path, *proxy, *no_proxy;
	bool tls_verify;
	unsigned retries;
	uint64_t request_timeout_ms, connect_timeout_ms, backoff_base_ms, backoff_cap_ms;
	struct origin_http_stats stats;
	struct http_request *requests;	 /* all not completed */
	struct http_request *retry_head; /* waiting for their back-off */
	struct logged_failure *logged;
	unsigned n_logged;
};

static const struct origin_ops http_ops;

/* ---- timer: curl's timeout and our retries share one timerfd ---- */

static void rearm_timer(struct http_origin *ho)
{
	uint64_t due = ho->curl_due_ms;
	struct itimerspec its = {};

	if (ho->retry_head)
		due = MIN(due, ho->retry_head->retry_at_ms);
	if (due != UINT64_MAX) {
		due = MAX(due, 1); /* 0 would disarm; a time in the past fires at once */
		its.it_value.tv_sec = (time_t)(due / 1000);
		its.it_value.tv_nsec = (long)(due % 1000) * 1000000;
	}
	if (timerfd_settime(ho->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		log_error_errno(errno, "HTTP origin: cannot arm the timer");
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_origin *ho = userp;

	/* Not allowed to drive curl from here: the timerfd fires at once for 0. */
	ho->curl_due_ms = timeout_ms < 0 ? UINT64_MAX : loop_now_ms() + (uint64_t)timeout_ms;
	rearm_timer(ho);
	return 0;
}

/* ---- logging once per blob per kind ---- */

static bool failure_seen(struct http_origin *ho, const char *digest, enum http_error_kind kind)
{
	struct logged_failure *l;

	for (l = ho->logged; l; l = l->next)
		if (l->kind == kind && streq(l->digest, digest))
			return true;
	if (ho->n_logged >= LOGGED_FAILURES_MAX) {
		/* Many blobs failing at once: start over rather than grow without bound. */
		while (ho->logged) {
			l = ho->logged;
			ho->logged = l->next;
			free(l);
		}
		ho->n_logged = 0;
	}
	l = calloc(1, sizeof(*l));
	if (l) {
		memcpy(l->digest, digest, sizeof(l->digest));
		l->kind = kind;
		l->next = ho->logged;
		ho->logged = l;
		ho->n_logged++;
	}
	return false;
}

/* A blob that reads again may be logged again when it next fails. */
static void failure_forget(struct http_origin *ho, const char *digest)
{
	struct logged_failure **pp = &ho->logged;

	while (*pp) {
		struct logged_failure *l = *pp;
		if (streq(l->digest, digest)) {
			*pp = l->next;
			free(l);
			ho->n_logged--;
		} else {
			pp = &l->next;
		}
	}
}

/* ---- requests ---- */

static void request_free(struct http_request *req)
{
	if (req->easy)
		curl_easy_cleanup(req->easy);
	free(req->url);
	free(req);
}

static void request_unlink(struct http_origin *ho, struct http_request *req)
{
	if (req->prev)
		req->prev->next = req->next;
	else
		ho->requests = req->next;
	if (req->next)
		req->next->prev = req->prev;
}

/* Deliver the result and free the request. Called from the loop only, never from fetch(). */
static void request_complete(struct http_request *req, ssize_t result)
{
	struct http_origin *ho = req->ho;
	origin_done_fn done = req->done;
	void *userdata = req->userdata;

	request_unlink(ho, req);
	ho->stats.in_flight--;
	if (result >= 0) {
		ho->stats.succeeded++;
		ho->stats.bytes += (uint64_t)result;
		if (ho->logged)
			failure_forget(ho, req->digest);
	} else {
		ho->stats.failed++;
	}
	request_free(req);
	done(userdata, result);
}

static int start_attempt(struct http_request *req)
{
	struct http_origin *ho = req->ho;
	uint64_t elapsed;
	CURLMcode mc;

	req->got = 0;
	req->discarded = 0;
	req->body_started = false;
	req->error_status = false;
	req->own_error = 0;
	req->own_reason = NULL;
	req->have_content_range = false;
	req->content_range[0] = '\0';
	req->errbuf[0] = '\0';
	req->attempt++;
	ho->stats.attempts++;
	if (req->attempt > 1)
		ho->stats.retries++;
	/* Attempts share the request's deadline: a hung server costs one deadline in all, not
	 * one per attempt. */
	elapsed = loop_now_ms() - req->started_ms;
	curl_easy_setopt(
		req->easy, CURLOPT_TIMEOUT_MS,
		(long)(elapsed < ho->request_timeout_ms ? ho->request_timeout_ms - elapsed : 1));
	mc = curl_multi_add_handle(ho->multi, req->easy);
	if (mc != CURLM_OK) {
		log_error("HTTP origin: cannot start a transfer: %s", curl_multi_strerror(mc));
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	return 0;
}

static void schedule_retry(struct http_request *req, uint64_t delay_ms)
{
	struct http_origin *ho = req->ho;
	struct http_request **pp = &ho->retry_head;

	req->retry_at_ms = loop_now_ms() + delay_ms;
	while (*pp && (*pp)->retry_at_ms <= req->retry_at_ms)
		pp = &(*pp)->next_retry;
	req->next_retry = *pp;
	*pp = req;
	rearm_timer(ho);
}

static uint32_t jitter_random(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
		v = (uint32_t)loop_now_ms() * 2654435761u;
	return v;
}

/* One attempt ended: deliver, retry, or fail. */
static void attempt_done(struct http_request *req, CURLcode code)
{
	struct http_origin *ho = req->ho;
	struct http_failure f;
	const char *reason = NULL;
	long status = 0, os_errno = 0;
	curl_off_t content_length = -1;

	curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &content_length);
	if (req->own_error) {
		f = (struct http_failure){ req->own_error, HTTP_ERR_BAD_RESPONSE, false };
		reason = req->own_reason;
	} else if (req->error_status || (code == CURLE_OK && status != 200 && status != 206)) {
		/* An error status: what it says counts, not how its body ended. */
		f = http_classify(CURLE_OK, status, 0);
		reason = "error status";
	} else if (code != CURLE_OK) {
		f = http_classify(code, status, (int)os_errno);
		reason = req->errbuf[0] ? req->errbuf : curl_easy_strerror(code);
	} else {
		int r = http_check_response(
			status, req->have_content_range ? req->content_range : NULL, content_length,
			req->got, req->off, req->len, req->blob_size, &reason);
		if (r == 0) {
			request_complete(req, (ssize_t)req->len);
			return;
		}
		f = (struct http_failure){ r, HTTP_ERR_BAD_RESPONSE, false };
	}

	uint64_t delay = http_retry_delay_ms(req->attempt, ho->backoff_base_ms, ho->backoff_cap_ms,
					     jitter_random());
	/* Retry only while a reader can still use the result: past the request deadline the
	 * fill core has failed the READ already, and a fetch retrying for minutes would hold an
	 * in-flight slot that live readers need. */
	bool in_budget = loop_now_ms() + delay - req->started_ms < ho->request_timeout_ms;

	if (f.transient && req->attempt <= ho->retries && in_budget) {
		log_debug("HTTP origin: GET %s bytes %llu-%llu: %s (status %ld); retry %u/%u in "
			  "%llu ms",
			  req->url, (unsigned long long)req->off,
			  (unsigned long long)(req->off + req->len - 1), reason, status,
			  req->attempt, ho->retries, (unsigned long long)delay);
		schedule_retry(req, delay);
		return;
	}
	ho->stats.errors[f.kind]++;
	if (!failure_seen(ho, req->digest, f.kind))
		log_warn_errno(f.error,
			       "HTTP origin: GET %s bytes %llu-%llu failed after %u attempt%s: "
			       "%s: %s (status %ld; logged once per blob and kind)",
			       req->url, (unsigned long long)req->off,
			       (unsigned long long)(req->off + req->len - 1), req->attempt,
			       req->attempt == 1 ? "" : "s", http_error_kind_name(f.kind), reason,
			       status);
	request_complete(req, f.error);
}

static void collect_done(struct http_origin *ho)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(ho->multi, &left))) {
		struct http_request *req = NULL;
		CURL *easy = msg->easy_handle;
		CURLcode code = msg->data.result;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
		curl_multi_remove_handle(ho->multi, easy);
		attempt_done(req, code);
	}
}

/* ---- curl callbacks ---- */

static size_t on_header(char *data, size_t size, size_t n, void *userdata)
{
	struct http_request *req = userdata;
	size_t total = size * n, vlen;
	const char *v;

	if (total >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a redirect, a proxy's CONNECT, a 100). */
		req->have_content_range = false;
		req->content_range[0] = '\0';
		return total;
	}
	if (total < 14 || strncasecmp(data, "content-range:", 14) != 0)
		return total;
	v = data + 14;
	vlen = total - 14;
	while (vlen && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' ' ||
			v[vlen - 1] == '\t'))
		vlen--;
	if (req->have_content_range || vlen >= sizeof(req->content_range) ||
	    memchr(v, '\0', vlen)) {
		/* Twice, too long, or odd bytes: never matches. */
		snprintf(req->content_range, sizeof(req->content_range), "invalid");
	} else {
		memcpy(req->content_range, v, vlen);
		req->content_range[vlen] = '\0';
	}
	req->have_content_range = true;
	return total;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata)
{
	struct http_request *req = userdata;
	size_t total = size * n;

	if (!req->body_started) {
		long status = 0;
		curl_off_t content_length = -1;
		const char *reason;

		req->body_started = true;
		curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200 && status != 206) {
			req->error_status = true;
		} else {
			/* Headers checked now, as if the body were complete: a wrong range
			 * is refused before a byte of it lands in the caller's buffer. */
			curl_easy_getinfo(req->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T,
					  &content_length);
			if (http_check_response(status,
						req->have_content_range ? req->content_range : NULL,
						content_length, req->len, req->off, req->len,
						req->blob_size, &reason) < 0) {
				req->own_error = -EIO;
				req->own_reason = reason;
				return CURL_WRITEFUNC_ERROR;
			}
		}
	}
	if (req->error_status) {
		req->discarded += total;
		return req->discarded > ERROR_BODY_MAX ? CURL_WRITEFUNC_ERROR : total;
	}
	if (total > req->len - req->got) {
		req->own_error = -EIO;
		req->own_reason = "body longer than asked";
		return CURL_WRITEFUNC_ERROR;
	}
	memcpy((char *)req->buf + req->got, data, total);
	req->got += total;
	return total;
}

static void on_socket_event(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct http_origin *ho = userdata;
	int flags = 0, running;

	if (events & EPOLLIN)
		flags |= CURL_CSELECT_IN;
	if (events & EPOLLOUT)
		flags |= CURL_CSELECT_OUT;
	if (events & (EPOLLERR | EPOLLHUP))
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(ho->multi, fd, flags, &running);
	collect_done(ho);
}

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct http_origin *ho = userp;
	uint32_t events = 0;
	int r;

	if (what == CURL_POLL_REMOVE) {
		if (socketp) {
			loop_remove_fd(ho->loop, s);
			curl_multi_assign(ho->multi, s, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (socketp) {
		r = loop_modify_fd(ho->loop, s, events);
	} else {
		r = loop_add_fd(ho->loop, s, events, on_socket_event, ho);
		if (r == 0)
			curl_multi_assign(ho->multi, s, ho);
	}
	if (r < 0) {
		log_error_errno(r, "HTTP origin: cannot watch a connection");
		return -1;
	}
	return 0;
}

static void on_timerfd(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct http_origin *ho = userdata;
	uint64_t expirations, now;
	int running;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "HTTP origin: timerfd read failed");
	now = loop_now_ms();
	if (ho->curl_due_ms <= now) {
		ho->curl_due_ms = UINT64_MAX;
		curl_multi_socket_action(ho->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	while (ho->retry_head && ho->retry_head->retry_at_ms <= now) {
		struct http_request *req = ho->retry_head;
		int r;

		ho->retry_head = req->next_retry;
		req->next_retry = NULL;
		r = start_attempt(req);
		if (r < 0) {
			ho->stats.errors[HTTP_ERR_OTHER]++;
			request_complete(req, r);
		}
	}
	collect_done(ho);
	rearm_timer(ho);
}

/* ---- fetch ---- */

#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (c == CURLE_OK)                                                                 \
			c = curl_easy_setopt(e, opt, val);                                         \
	} while (0)

/* What every request of this origin carries: URL, protocols, redirects, timeouts, TLS, proxy,
 * credentials. */
static CURLcode common_options(const struct http_origin *ho, CURL *e, const char *url, char *errbuf)
{
	CURLcode c = CURLE_OK;

	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
	SET(CURLOPT_TIMEOUT_MS, (long)ho->request_timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)ho->connect_timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "blobcached/" PACKAGE_VERSION);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_SSL_VERIFYPEER, ho->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, ho->tls_verify ? 2L : 0L);
	if (ho->ca_file)
		SET(CURLOPT_CAINFO, ho->ca_file);
	if (ho->ca_path)
		SET(CURLOPT_CAPATH, ho->ca_path);
	/* Only the configured proxy: "" also ignores http_proxy & co. in the environment. */
	SET(CURLOPT_PROXY, ho->proxy ? ho->proxy : "");
	if (ho->no_proxy)
		SET(CURLOPT_NOPROXY, ho->no_proxy);
	if (ho->bearer) {
		/* curl sends it to the origin's host only, not to a redirect target (e.g. a
		 * pre-signed object-store URL). Same for basic auth. */
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		SET(CURLOPT_XOAUTH2_BEARER, ho->bearer);
	} else if (ho->userpwd) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERPWD, ho->userpwd);
	}
	return c;
}

static int setup_easy(struct http_origin *ho, struct http_request *req)
{
	char range[64];
	CURL *e;
	CURLcode c;

	e = req->easy = curl_easy_init();
	if (!e)
		return -ENOMEM;
	snprintf(range, sizeof(range), "%llu-%llu", (unsigned long long)req->off,
		 (unsigned long long)(req->off + req->len - 1));
	c = common_options(ho, e, req->url, req->errbuf);
	SET(CURLOPT_PRIVATE, req);
	SET(CURLOPT_RANGE, range); /* the whole blob too: a 206 carries the size to check */
	SET(CURLOPT_BUFFERSIZE, (long)MAX(RECV_BUFFER_MIN, MIN(req->len, RECV_BUFFER_MAX)));
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, req);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, req);
	if (c != CURLE_OK) {
		log_error("HTTP origin: libcurl refused an option: %s", curl_easy_strerror(c));
		return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	}
	return 0;
}

/* Start a ranged GET of `url` (taken over, freed on failure) for blob `digest`. */
static int http_fetch_url(struct http_origin *ho, const char *digest, char *url, uint64_t blob_size,
			  uint64_t off, size_t len, void *buf, origin_done_fn done, void *userdata)
{
	struct http_request *req;
	int r;

	req = calloc(1, sizeof(*req));
	if (!req) {
		free(url);
		return -ENOMEM;
	}
	req->ho = ho;
	memcpy(req->digest, digest, DIGEST_HEX_LEN);
	req->url = url;
	req->blob_size = blob_size;
	req->off = off;
	req->len = len;
	req->buf = buf;
	req->done = done;
	req->userdata = userdata;
	req->started_ms = loop_now_ms();
	r = setup_easy(ho, req);
	if (r < 0) {
		request_free(req);
		return r;
	}
	ho->stats.requests++;
	r = start_attempt(req);
	if (r < 0) {
		ho->stats.errors[HTTP_ERR_OTHER]++;
		ho->stats.failed++;
		request_free(req);
		return r;
	}
	ho->stats.in_flight++;
	req->next = ho->requests;
	if (ho->requests)
		ho->requests->prev = req;
	ho->requests = req;
	return 0;
}

static int http_fetch_sized(struct origin *o, const char *digest, uint64_t blob_size, uint64_t off,
			    size_t len, void *buf, origin_done_fn done, void *userdata)
{
	struct http_origin *ho = (struct http_origin *)o;
	char *url = NULL;

	if (!name_is_digest(digest, strnlen(digest, DIGEST_HEX_LEN + 1)))
		return -EINVAL;
	if (len == 0 || off + len < off || (blob_size && off + len > blob_size))
		return -EINVAL;
	/* The digest is validated lower-case hex: nothing to escape. */
	if (asprintf(&url, "%s/blobs/sha256/%.64s", ho->url, digest) < 0)
		return -ENOMEM;
	return http_fetch_url(ho, digest, url, blob_size, off, len, buf, done, userdata);
}

/* An in-place blob: the file at <url>/<path>, each byte outside RFC 3986's unreserved set
 * (and '/') percent-encoded. The server's Content-Range total must be the file's size. */
static int http_fetch_path(struct origin *o, const char *digest, const char *path,
			   uint64_t file_size, uint64_t off, size_t len, void *buf,
			   origin_done_fn done, void *userdata)
{
	struct http_origin *ho = (struct http_origin *)o;
	static const char hex[] = "0123456789ABCDEF";
	size_t base = strlen(ho->url), k;
	char *url;

	if (!name_is_digest(digest, strnlen(digest, DIGEST_HEX_LEN + 1)) ||
	    !catalogue_path_is_valid(path) || len == 0 || off + len < off || off + len > file_size)
		return -EINVAL;
	url = malloc(base + 1 + 3 * strlen(path) + 1);
	if (!url)
		return -ENOMEM;
	memcpy(url, ho->url, base);
	k = base;
	url[k++] = '/';
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			url[k++] = (char)*p;
		} else {
			url[k++] = '%';
			url[k++] = hex[*p >> 4];
			url[k++] = hex[*p & 0xf];
		}
	}
	url[k] = '\0';
	return http_fetch_url(ho, digest, url, file_size, off, len, buf, done, userdata);
}

static int http_fetch(struct origin *o, const char *digest, uint64_t off, size_t len, void *buf,
		      origin_done_fn done, void *userdata)
{
	return http_fetch_sized(o, digest, 0, off, len, buf, done, userdata);
}

static const struct origin_http_stats *get_stats(const struct origin *o)
{
	return &((const struct http_origin *)o)->stats;
}

const struct origin_http_stats *origin_http_get_stats(const struct origin *o)
{
	return o && o->ops == &http_ops ? get_stats(o) : NULL;
}

static void erase_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void http_free(struct origin *o)
{
	struct http_origin *ho = (struct http_origin *)o;

	/* Fetches still open are dropped without a callback: their owner is going away. */
	while (ho->requests) {
		struct http_request *req = ho->requests;
		ho->requests = req->next;
		if (ho->multi && req->easy)
			curl_multi_remove_handle(ho->multi, req->easy);
		request_free(req);
	}
	if (ho->multi)
		curl_multi_cleanup(ho->multi); /* removes its sockets from the loop */
	if (ho->timerfd >= 0) {
		loop_remove_fd(ho->loop, ho->timerfd);
		close(ho->timerfd);
	}
	while (ho->logged) {
		struct logged_failure *l = ho->logged;
		ho->logged = l->next;
		free(l);
	}
	free(ho->url);
	erase_free(ho->bearer);
	erase_free(ho->userpwd);
	free(ho->ca_file);
	free(ho->ca_path);
	free(ho->proxy);
	free(ho->no_proxy);
	free(ho);
	curl_global_cleanup();
}

struct membuf {
	char *data;
	size_t len, max;
	bool too_big;
};

static size_t on_file_body(char *p, size_t size, size_t n, void *userdata)
{
	struct membuf *b = userdata;
	size_t l = size * n;
	char *nd;

	if (b->len + l > b->max) {
		b->too_big = true;
		return CURL_WRITEFUNC_ERROR;
	}
	nd = realloc(b->data, b->len + l + 1);
	if (!nd)
		return CURL_WRITEFUNC_ERROR;
	b->data = nd;
	memcpy(b->data + b->len, p, l);
	b->len += l;
	b->data[b->len] = '\0';
	return l;
}

/* Blocking, for a pool thread: reads only what set-up fixed. */
static int http_get_file(struct origin *o, const char *path, size_t max, char **out, size_t *len)
{
	struct http_origin *ho = (struct http_origin *)o;
	struct membuf b = { .max = max };
	_cleanup_free_ char *url = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode c;
	CURL *e;
	int r = 0;

	if (asprintf(&url, "%s/%s", ho->url, path) < 0)
		return -ENOMEM;
	e = curl_easy_init();
	if (!e)
		return -ENOMEM;
	c = common_options(ho, e, url, errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_file_body);
	SET(CURLOPT_WRITEDATA, &b);
	if (c == CURLE_OK)
		c = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(e);
	if (b.too_big)
		r = -EFBIG;
	else if (c != CURLE_OK)
		r = c == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	else if (status == 404 || status == 410)
		r = -ENOENT;
	else if (status == 401 || status == 403)
		r = -EACCES;
	else if (status != 200)
		r = -EIO;
	if (r < 0) {
		log_debug("HTTP origin: GET %s: %s (status %ld)", url,
			  errbuf[0] ? errbuf : strerror(-r), status);
		free(b.data);
		return r;
	}
	*out = b.data ? b.data : strdup("");
	*len = b.len;
	return *out ? 0 : -ENOMEM;
}
#undef SET

static const struct origin_ops http_ops = {
	.kind = "http",
	.fetch = http_fetch,
	.fetch_sized = http_fetch_sized,
	.free = http_free,
	.get_file = http_get_file,
	.fetch_path = http_fetch_path,
};

/* ---- set-up ---- */

/* First line of a credential file, trailing blanks removed, into *out (erased on free). */
static int read_credential(const char *path, const char *key, char **out)
{
	_cleanup_close_ int fd = -EBADF;
	char buf[CREDENTIAL_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len;
	int r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0)
		return log_error_errno(errno, "[origin] %s %s: cannot read", key, path);
	if (!S_ISREG(st.st_mode))
		return log_error_errno(EINVAL, "[origin] %s %s: not a regular file", key, path);
	if (st.st_mode & S_IROTH)
		log_warn("[origin] %s %s is readable by every user: chmod 600 it", key, path);
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return log_error_errno(errno, "[origin] %s %s: cannot read", key, path);
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	if (len == 0)
		r = log_error_errno(EINVAL, "[origin] %s %s: empty", key, path);
	else if (memchr(buf, '\0', len) != NULL)
		r = log_error_errno(EINVAL, "[origin] %s %s: contains a NUL byte", key, path);
	else if (!(*out = strdup(buf)))
		r = -ENOMEM;
	explicit_bzero(buf, sizeof(buf));
	return r;
}

/* http or https, a host, no credentials, query or fragment (a path is appended to it). */
static int check_url(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *part = NULL;
	int r = -EINVAL;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
		log_error("[origin] url %s: not a valid URL", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (!streq(scheme, "http") && !streq(scheme, "https"))) {
		log_error("[origin] url %s: only http:// and https:// are supported", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
		log_error("[origin] url %s: no host", url);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK) {
		log_error("[origin] url: credentials in the URL would be logged: use "
			  "basic_auth_file");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &part, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &part, 0) == CURLUE_OK) {
		log_error("[origin] url %s: no query or fragment allowed (the blob path is "
			  "appended)",
			  url);
		goto out;
	}
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(part);
	curl_url_cleanup(u);
	return r;
}

static int dup_opt(const char *s, char **out)
{
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

int origin_http_new(struct loop *loop, const struct origin_http_options *opts, struct origin **out)
{
	struct http_origin *ho;
	size_t n;
	CURLMcode mc = CURLM_OK;
	int r;

	if (!opts->url || opts->max_connections == 0 || opts->request_timeout_ms == 0)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return log_error_errno(ENOMEM, "HTTP origin: libcurl initialisation failed");
	ho = calloc(1, sizeof(*ho));
	if (!ho) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	ho->base.ops = &http_ops;
	ho->loop = loop;
	ho->timerfd = -EBADF;
	ho->curl_due_ms = UINT64_MAX;
	ho->tls_verify = opts->tls_verify;
	ho->retries = opts->retries;
	ho->request_timeout_ms = opts->request_timeout_ms;
	ho->connect_timeout_ms = opts->connect_timeout_ms
					 ? opts->connect_timeout_ms
					 : MIN(opts->request_timeout_ms, CONNECT_TIMEOUT_MS);
	ho->backoff_base_ms = opts->backoff_base_ms ? opts->backoff_base_ms : BACKOFF_BASE_MS;
	ho->backoff_cap_ms = opts->backoff_cap_ms ? opts->backoff_cap_ms : BACKOFF_CAP_MS;

	r = check_url(opts->url);
	if (r < 0)
		goto fail;
	r = -ENOMEM;
	ho->url = strdup(opts->url);
	if (!ho->url)
		goto fail;
	n = strlen(ho->url);
	while (n > 0 && ho->url[n - 1] == '/')
		ho->url[--n] = '\0';
	if (dup_opt(opts->ca_file, &ho->ca_file) < 0 || dup_opt(opts->ca_path, &ho->ca_path) < 0 ||
	    dup_opt(opts->proxy, &ho->proxy) < 0 || dup_opt(opts->no_proxy, &ho->no_proxy) < 0)
		goto fail;
	if (opts->token_file && opts->basic_auth_file) {
		r = log_error_errno(EINVAL, "[origin] token_file and basic_auth_file: choose one");
		goto fail;
	}
	if (opts->token_file) {
		r = read_credential(opts->token_file, "token_file", &ho->bearer);
		if (r < 0)
			goto fail;
	}
	if (opts->basic_auth_file) {
		r = read_credential(opts->basic_auth_file, "basic_auth_file", &ho->userpwd);
		if (r < 0)
			goto fail;
		if (!strchr(ho->userpwd, ':')) {
			r = log_error_errno(EINVAL,
					    "[origin] basic_auth_file %s: expected "
					    "user:password",
					    opts->basic_auth_file);
			goto fail;
		}
	}

	ho->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ho->timerfd < 0) {
		r = -errno;
		goto fail;
	}
	r = loop_add_fd(loop, ho->timerfd, EPOLLIN, on_timerfd, ho);
	if (r < 0) {
		close(ho->timerfd);
		ho->timerfd = -EBADF;
		goto fail;
	}
	ho->multi = curl_multi_init();
	if (!ho->multi) {
		r = -ENOMEM;
		goto fail;
	}
#define MSET(opt, val)                                                                             \
	do {                                                                                       \
		if (mc == CURLM_OK)                                                                \
			mc = curl_multi_setopt(ho->multi, opt, val);                               \
	} while (0)
	MSET(CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	MSET(CURLMOPT_SOCKETDATA, ho);
	MSET(CURLMOPT_TIMERFUNCTION, on_curl_timer);
	MSET(CURLMOPT_TIMERDATA, ho);
	MSET(CURLMOPT_MAX_HOST_CONNECTIONS, (long)opts->max_connections);
	/* Keep every allowed connection open between fetches (and a few for redirects). */
	MSET(CURLMOPT_MAXCONNECTS, (long)opts->max_connections + 4);
#undef MSET
	if (mc != CURLM_OK) {
		r = log_error_errno(EINVAL, "HTTP origin: libcurl: %s", curl_multi_strerror(mc));
		goto fail;
	}
	/* Not the proxy's URL: it may hold credentials. */
	log_info("HTTP origin %s: %u connections, %u retries, %llu ms per attempt%s%s", ho->url,
		 opts->max_connections, ho->retries, (unsigned long long)ho->request_timeout_ms,
		 ho->proxy ? ", through a proxy" : "", ho->tls_verify ? "" : ", TLS NOT VERIFIED");
	*out = &ho->base;
	return 0;
fail:
	http_free(&ho->base);
	return r;
}
