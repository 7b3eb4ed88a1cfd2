/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pure helpers of the HTTP origin: the Content-Range parser, the strict check of a range
 * response, the retry schedule, and the one conversion of libcurl's CURLcode and HTTP statuses
 * into -errno. No I/O and no state: unit tested and fuzzed on their own.
 */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_TOTAL_UNKNOWN UINT64_MAX /* the total of "bytes a-b/" + "*" */

/* Parse a Content-Range value, "bytes FIRST-LAST/TOTAL" (RFC 9110 14.4; TOTAL may be "*",
 * given as HTTP_TOTAL_UNKNOWN). Strict: decimal digits only, no sign, no overflow,
 * FIRST <= LAST < TOTAL; "bytes * /TOTAL" (an unsatisfied range) is refused. Leading and
 * trailing spaces and tabs are allowed. Returns 0 or -EINVAL. */
int http_parse_content_range(const char *value, uint64_t *first, uint64_t *last, uint64_t *total);

/* What a failed attempt was, for counters and log lines. */
enum http_error_kind {
	HTTP_ERR_NOT_FOUND,    /* 404, 410 */
	HTTP_ERR_DENIED,       /* 401, 403, 407 */
	HTTP_ERR_TIMEOUT,      /* deadline, 408 */
	HTTP_ERR_CONNECT,      /* refused, unreachable, name resolution, reset */
	HTTP_ERR_SERVER,       /* 5xx, 429 */
	HTTP_ERR_BAD_RESPONSE, /* wrong status, Content-Range, length; other 4xx */
	HTTP_ERR_REDIRECT,     /* more than the allowed redirects (a loop) */
	HTTP_ERR_TLS,	       /* handshake, certificate */
	HTTP_ERR_OTHER,
	HTTP_ERR_KIND_MAX,
};

const char *http_error_kind_name(enum http_error_kind kind);

struct http_failure {
	int error; /* -errno */
	enum http_error_kind kind;
	bool transient; /* worth another attempt after a back-off */
};

/*
 * THE conversion from libcurl's convention to ours. `code` is the transfer's CURLcode,
 * `status` the final HTTP status (0 if none), `os_errno` CURLINFO_OS_ERRNO (0 if none).
 * With code == CURLE_OK the status decides: 404/410 -ENOENT, 401/403/407 -EACCES,
 * 408 -ETIMEDOUT, 429 -EBUSY, 5xx -EIO (these two transient), 416 and anything else -EIO.
 * Transport errors: timeout -ETIMEDOUT; connect failures the socket's errno (-ECONNREFUSED,
 * -EHOSTUNREACH, -ENETUNREACH...) or -ECONNREFUSED; name resolution -EHOSTUNREACH; too many
 * redirects -ELOOP; TLS -EPROTO; a cut connection -ECONNRESET (transient); the rest -EIO.
 */
struct http_failure http_classify(CURLcode code, long status, int os_errno);

/*
 * Check a complete response to the request "Range: bytes=off-(off+len-1)" of a blob of
 * blob_size bytes (0: not known). status: final HTTP status; content_range: the header's value
 * or NULL; content_length: the declared body length or -1; body_len: bytes received.
 * Accepted: 206 whose Content-Range is exactly the range asked, with a TOTAL equal to
 * blob_size (when known), and a body of exactly len bytes; or 200 when the range asked was the
 * whole blob (off == 0, len == blob_size or blob_size unknown) and the body is exactly len.
 * Returns 0, or -EIO with *reason set to a static description.
 */
int http_check_response(long status, const char *content_range, int64_t content_length,
			uint64_t body_len, uint64_t off, uint64_t len, uint64_t blob_size,
			const char **reason);

/*
 * Back-off before retry number `retry` (1 for the first retry): base, 2 base, 4 base... capped
 * at cap, plus up to a quarter more drawn from `random` (uniform over 32 bits), so that nodes
 * restarted together do not retry in step. Never less than the unjittered value.
 */
uint64_t http_retry_delay_ms(unsigned retry, uint64_t base_ms, uint64_t cap_ms, uint32_t random);
