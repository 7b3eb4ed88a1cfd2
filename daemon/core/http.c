// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/http.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "macros.h"

#define HTTP_RETRY_DELAY_MAX_MS (24ULL * 3600 * 1000)

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Decimal digits into *out; at least one, at most what fits. Returns the end or NULL. */
static const char *parse_u64(const char *p, uint64_t *out)
{
	uint64_t v = 0;

	if (*p < '0' || *p > '9')
		return NULL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
	}
	*out = v;
	return p;
}

int http_parse_content_range(const char *value, uint64_t *first, uint64_t *last, uint64_t *total)
{
	const char *p;
	uint64_t a, b, t;

	if (!value)
		return -EINVAL;
	p = skip_blanks(value);
	if (strncasecmp(p, "bytes", 5) != 0 || (p[5] != ' ' && p[5] != '\t'))
		return -EINVAL;
	p = skip_blanks(p + 5);
	p = parse_u64(p, &a);
	if (!p || *p++ != '-')
		return -EINVAL;
	p = parse_u64(p, &b);
	if (!p || *p++ != '/')
		return -EINVAL;
	if (*p == '*') {
		t = HTTP_TOTAL_UNKNOWN;
		p++;
	} else {
		p = parse_u64(p, &t);
		if (!p || t == HTTP_TOTAL_UNKNOWN)
			return -EINVAL;
	}
	if (*skip_blanks(p) != '\0')
		return -EINVAL;
	if (a > b || (t != HTTP_TOTAL_UNKNOWN && b >= t))
		return -EINVAL;
	*first = a;
	*last = b;
	*total = t;
	return 0;
}

static const char *const kind_names[] = {
	[HTTP_ERR_NOT_FOUND] = "not_found", [HTTP_ERR_DENIED] = "denied",
	[HTTP_ERR_TIMEOUT] = "timeout",	    [HTTP_ERR_CONNECT] = "connect",
	[HTTP_ERR_SERVER] = "server",	    [HTTP_ERR_BAD_RESPONSE] = "bad_response",
	[HTTP_ERR_REDIRECT] = "redirect",   [HTTP_ERR_TLS] = "tls",
	[HTTP_ERR_OTHER] = "other",
};

const char *http_error_kind_name(enum http_error_kind kind)
{
	return (unsigned)kind < ARRAY_SIZE(kind_names) ? kind_names[kind] : "?";
}

static struct http_failure failure(int error, enum http_error_kind kind, bool transient)
{
	return (struct http_failure){ .error = error, .kind = kind, .transient = transient };
}

static struct http_failure classify_status(long status)
{
	switch (status) {
	case 404:
	case 410:
		return failure(-ENOENT, HTTP_ERR_NOT_FOUND, false);
	case 401:
	case 403:
	case 407:
		return failure(-EACCES, HTTP_ERR_DENIED, false);
	case 408:
		return failure(-ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
	case 429:
		return failure(-EBUSY, HTTP_ERR_SERVER, true);
	default:
		if (status >= 500 && status <= 599)
			return failure(-EIO, HTTP_ERR_SERVER, true);
		/* 416 (the blob is shorter than the catalogue says), other 4xx, 1xx/3xx left
		 * over (a redirect without Location): the server answered, and will again. */
		return failure(-EIO, HTTP_ERR_BAD_RESPONSE, false);
	}
}

static bool is_connect_errno(int e)
{
	return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN ||
	       e == ENETDOWN || e == EADDRNOTAVAIL || e == ETIMEDOUT;
}

struct http_failure http_classify(CURLcode code, long status, int os_errno)
{
	switch (code) {
	case CURLE_OK:
		return classify_status(status);
	case CURLE_OPERATION_TIMEDOUT:
		return failure(-ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
	case CURLE_COULDNT_CONNECT:
		if (os_errno == ETIMEDOUT)
			return failure(-ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
		return failure(is_connect_errno(os_errno) ? -os_errno : -ECONNREFUSED,
			       HTTP_ERR_CONNECT, true);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return failure(-EHOSTUNREACH, HTTP_ERR_CONNECT, true);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: /* the server closed before the declared length */
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return failure(-ECONNRESET, HTTP_ERR_CONNECT, true);
	case CURLE_TOO_MANY_REDIRECTS:
		return failure(-ELOOP, HTTP_ERR_REDIRECT, false);
	case CURLE_UNSUPPORTED_PROTOCOL: /* a redirect to file://, ftp://... */
		return failure(-EPROTONOSUPPORT, HTTP_ERR_REDIRECT, false);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return failure(-EPROTO, HTTP_ERR_TLS, false);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_RANGE_ERROR:
		return failure(-EIO, HTTP_ERR_BAD_RESPONSE, false);
	case CURLE_OUT_OF_MEMORY:
		return failure(-ENOMEM, HTTP_ERR_OTHER, false);
	default:
		return failure(-EIO, HTTP_ERR_OTHER, false);
	}
}

int http_check_response(long status, const char *content_range, int64_t content_length,
			uint64_t body_len, uint64_t off, uint64_t len, uint64_t blob_size,
			const char **reason)
{
	uint64_t first, last, total;

	if (len == 0 || off + len < off)
		return *reason = "empty or overflowing range asked", -EIO;
	if (status == 206) {
		if (!content_range)
			return *reason = "206 without Content-Range", -EIO;
		if (http_parse_content_range(content_range, &first, &last, &total) < 0)
			return *reason = "malformed Content-Range", -EIO;
		if (first != off || last != off + len - 1)
			return *reason = "Content-Range is not the range asked", -EIO;
		if (total == HTTP_TOTAL_UNKNOWN)
			return *reason = "Content-Range without the blob size", -EIO;
		if (blob_size && total != blob_size)
			return *reason = "Content-Range total is not the blob size", -EIO;
	} else if (status == 200) {
		/* A server that ignores Range sends the whole blob: usable only if that is
		 * exactly what was asked. */
		if (off != 0 || (blob_size && len != blob_size))
			return *reason = "200 (whole blob) for a partial range", -EIO;
		if (content_range)
			return *reason = "200 with a Content-Range", -EIO;
	} else {
		return *reason = "unexpected status for a range request", -EIO;
	}
	if (content_length >= 0 && (uint64_t)content_length != len)
		return *reason = "Content-Length is not the length asked", -EIO;
	if (body_len < len)
		return *reason = "short body", -EIO;
	if (body_len > len)
		return *reason = "body longer than asked", -EIO;
	return 0;
}

uint64_t http_retry_delay_ms(unsigned retry, uint64_t base_ms, uint64_t cap_ms, uint32_t random)
{
	uint64_t delay = MIN(base_ms, HTTP_RETRY_DELAY_MAX_MS);

	cap_ms = MIN(cap_ms, HTTP_RETRY_DELAY_MAX_MS); /* and no overflow below */
	for (unsigned i = 1; i < retry && delay < cap_ms; i++)
		delay *= 2;
	delay = MIN(delay, cap_ms);
	return delay + (delay / 4) * random / UINT32_MAX;
}
