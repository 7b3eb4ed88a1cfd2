// SPDX-License-Identifier: GPL-2.0-or-later
/* HTTP origin helpers: Content-Range parsing, strict response checks, retry schedule, and the
 * CURLcode / HTTP status -> errno conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "core/http.h"

static void expect_range(const char *v, uint64_t a, uint64_t b, uint64_t t)
{
	uint64_t first = 1, last = 1, total = 1;

	if (http_parse_content_range(v, &first, &last, &total) != 0)
		fail_msg("'%s' refused, expected %llu-%llu/%llu", v, (unsigned long long)a,
			 (unsigned long long)b, (unsigned long long)t);
	assert_int_equal(first, a);
	assert_int_equal(last, b);
	assert_true(total == t);
}

static void expect_bad_range(const char *v)
{
	uint64_t first = 7, last = 7, total = 7;

	if (http_parse_content_range(v, &first, &last, &total) != -EINVAL)
		fail_msg("'%s' accepted as %llu-%llu/%llu", v ? v : "(null)",
			 (unsigned long long)first, (unsigned long long)last,
			 (unsigned long long)total);
	/* Outputs untouched on error. */
	assert_int_equal(first, 7);
	assert_int_equal(last, 7);
	assert_int_equal(total, 7);
}

static void content_range_valid_forms(void **state)
{
	expect_range("bytes 0-499/1234", 0, 499, 1234);
	expect_range("bytes 0-0/1", 0, 0, 1);
	expect_range("BYTES 1048576-2097151/4194304", 1048576, 2097151, 4194304);
	expect_range("  bytes\t5-9/10 \t", 5, 9, 10);
	expect_range("bytes 5-9/*", 5, 9, HTTP_TOTAL_UNKNOWN);
	expect_range("bytes 0-18446744073709551613/18446744073709551614", 0,
		     18446744073709551613ULL, 18446744073709551614ULL);
}

static void content_range_malformed_is_refused(void **state)
{
	expect_bad_range(NULL);
	expect_bad_range("");
	expect_bad_range("bytes");
	expect_bad_range("bytes ");
	expect_bad_range("bytes=0-1/2");   /* the request's syntax, not the response's */
	expect_bad_range("bytes0-1/2");	   /* no space */
	expect_bad_range("items 0-1/2");   /* other unit */
	expect_bad_range("bytes */1234");  /* unsatisfied range: no range at all */
	expect_bad_range("bytes 1-0/10");  /* first > last */
	expect_bad_range("bytes 0-10/10"); /* last beyond the end */
	expect_bad_range("bytes 0-9/0");
	expect_bad_range("bytes -1-9/10");
	expect_bad_range("bytes +1-9/10");
	expect_bad_range("bytes 1 -9/10");
	expect_bad_range("bytes 1- 9/10");
	expect_bad_range("bytes 1-9 /10");
	expect_bad_range("bytes 1-9/ 10");
	expect_bad_range("bytes 0x1-9/10");
	expect_bad_range("bytes 1-9/10x");
	expect_bad_range("bytes 1-9/10, bytes 1-9/10");
	expect_bad_range("bytes 1-9/10/11");
	expect_bad_range("bytes 1-9");
	expect_bad_range("bytes 1-/10");
	expect_bad_range("bytes -9/10");
	expect_bad_range("bytes 0-1/18446744073709551616"); /* 2^64: overflow */
	expect_bad_range("bytes 0-1/18446744073709551615"); /* UINT64_MAX is the "*" marker */
	expect_bad_range("bytes 99999999999999999999-1/2"); /* overflow */
}

static int check(long status, const char *cr, int64_t clen, uint64_t body, uint64_t off,
		 uint64_t len, uint64_t size, const char **reason)
{
	*reason = NULL;
	return http_check_response(status, cr, clen, body, off, len, size, reason);
}

static void expect_refused(long status, const char *cr, int64_t clen, uint64_t body, uint64_t off,
			   uint64_t len, uint64_t size, const char *why)
{
	const char *reason;

	if (check(status, cr, clen, body, off, len, size, &reason) != -EIO)
		fail_msg("status %ld Content-Range '%s' body %llu for %llu+%llu of %llu: accepted",
			 status, cr ? cr : "(none)", (unsigned long long)body,
			 (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)size);
	assert_non_null(reason);
	if (!strstr(reason, why))
		fail_msg("reason '%s' does not contain '%s'", reason, why);
}

static void response_206_exact_range_is_accepted(void **state)
{
	const char *reason;

	assert_int_equal(check(206, "bytes 1048576-2097151/5000000", 1048576, 1048576, 1048576,
			       1048576, 5000000, &reason),
			 0);
	/* The blob's last, partial chunk. */
	assert_int_equal(check(206, "bytes 4194304-4999999/5000000", -1, 805696, 4194304, 805696,
			       5000000, &reason),
			 0);
	/* Size not known to the caller: any definite total that contains the range. */
	assert_int_equal(check(206, "bytes 0-9/100", 10, 10, 0, 10, 0, &reason), 0);
}

static void response_206_wrong_range_or_length_is_refused(void **state)
{
	expect_refused(206, NULL, 10, 10, 0, 10, 100, "without Content-Range");
	expect_refused(206, "bytes 0-9", 10, 10, 0, 10, 100, "malformed");
	expect_refused(206, "bytes 1-10/100", 10, 10, 0, 10, 100, "not the range asked");
	expect_refused(206, "bytes 0-10/100", 11, 11, 0, 10, 100, "not the range asked");
	expect_refused(206, "bytes 0-8/100", 9, 9, 0, 10, 100, "not the range asked");
	expect_refused(206, "bytes 0-9/101", 10, 10, 0, 10, 100, "not the blob size");
	expect_refused(206, "bytes 0-9/*", 10, 10, 0, 10, 100, "without the blob size");
	expect_refused(206, "bytes 0-9/*", 10, 10, 0, 10, 0, "without the blob size");
	expect_refused(206, "bytes 0-9/100", 9, 10, 0, 10, 100, "Content-Length");
	expect_refused(206, "bytes 0-9/100", 11, 10, 0, 10, 100, "Content-Length");
	expect_refused(206, "bytes 0-9/100", -1, 9, 0, 10, 100, "short body");
	expect_refused(206, "bytes 0-9/100", -1, 11, 0, 10, 100, "longer");
	expect_refused(206, "bytes 0-9/100", -1, 0, 0, 10, 100, "short body");
}

static void response_200_only_for_the_whole_blob(void **state)
{
	const char *reason;

	assert_int_equal(check(200, NULL, 100, 100, 0, 100, 100, &reason), 0);
	assert_int_equal(check(200, NULL, -1, 100, 0, 100, 0, &reason), 0);
	/* A server ignoring Range sends everything: not what a partial range asked. */
	expect_refused(200, NULL, 100, 100, 0, 10, 100, "partial range");
	expect_refused(200, NULL, 90, 90, 10, 90, 100, "partial range");
	expect_refused(200, NULL, -1, 100, 0, 10, 0, "longer");
	expect_refused(200, NULL, 100, 100, 0, 10, 0, "Content-Length");
	expect_refused(200, NULL, -1, 50, 0, 100, 100, "short body");
	expect_refused(200, "bytes 0-99/100", 100, 100, 0, 100, 100, "Content-Range");
}

static void response_other_statuses_are_refused(void **state)
{
	expect_refused(204, NULL, 0, 0, 0, 10, 100, "unexpected status");
	expect_refused(304, NULL, 0, 0, 0, 10, 100, "unexpected status");
	expect_refused(416, "bytes */100", 0, 0, 0, 10, 100, "unexpected status");
	expect_refused(206, "bytes 0-9/100", 10, 10, 0, 0, 100, "empty");
}

static void expect_class(CURLcode code, long status, int os_errno, int error,
			 enum http_error_kind kind, bool transient)
{
	struct http_failure f = http_classify(code, status, os_errno);

	if (f.error != error || f.kind != kind || f.transient != transient)
		fail_msg("curl %d status %ld errno %d: got %d/%s/%s, expected %d/%s/%s", code,
			 status, os_errno, f.error, http_error_kind_name(f.kind),
			 f.transient ? "transient" : "final", error, http_error_kind_name(kind),
			 transient ? "transient" : "final");
}

static void statuses_map_to_errno_and_retry_class(void **state)
{
	expect_class(CURLE_OK, 404, 0, -ENOENT, HTTP_ERR_NOT_FOUND, false);
	expect_class(CURLE_OK, 410, 0, -ENOENT, HTTP_ERR_NOT_FOUND, false);
	expect_class(CURLE_OK, 401, 0, -EACCES, HTTP_ERR_DENIED, false);
	expect_class(CURLE_OK, 403, 0, -EACCES, HTTP_ERR_DENIED, false);
	expect_class(CURLE_OK, 416, 0, -EIO, HTTP_ERR_BAD_RESPONSE, false);
	expect_class(CURLE_OK, 400, 0, -EIO, HTTP_ERR_BAD_RESPONSE, false);
	expect_class(CURLE_OK, 408, 0, -ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
	expect_class(CURLE_OK, 429, 0, -EBUSY, HTTP_ERR_SERVER, true);
	expect_class(CURLE_OK, 500, 0, -EIO, HTTP_ERR_SERVER, true);
	expect_class(CURLE_OK, 503, 0, -EIO, HTTP_ERR_SERVER, true);
	expect_class(CURLE_OK, 599, 0, -EIO, HTTP_ERR_SERVER, true);
	expect_class(CURLE_OK, 302, 0, -EIO, HTTP_ERR_BAD_RESPONSE, false);
}

static void transport_errors_map_to_errno_and_retry_class(void **state)
{
	expect_class(CURLE_OPERATION_TIMEDOUT, 0, 0, -ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, ECONNREFUSED, -ECONNREFUSED, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, EHOSTUNREACH, -EHOSTUNREACH, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, ENETUNREACH, -ENETUNREACH, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, 0, -ECONNREFUSED, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, EPERM, -ECONNREFUSED, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_COULDNT_CONNECT, 0, ETIMEDOUT, -ETIMEDOUT, HTTP_ERR_TIMEOUT, true);
	expect_class(CURLE_COULDNT_RESOLVE_HOST, 0, 0, -EHOSTUNREACH, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_PARTIAL_FILE, 206, 0, -ECONNRESET, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_RECV_ERROR, 0, ECONNRESET, -ECONNRESET, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_GOT_NOTHING, 0, 0, -ECONNRESET, HTTP_ERR_CONNECT, true);
	expect_class(CURLE_TOO_MANY_REDIRECTS, 302, 0, -ELOOP, HTTP_ERR_REDIRECT, false);
	expect_class(CURLE_UNSUPPORTED_PROTOCOL, 302, 0, -EPROTONOSUPPORT, HTTP_ERR_REDIRECT,
		     false);
	expect_class(CURLE_PEER_FAILED_VERIFICATION, 0, 0, -EPROTO, HTTP_ERR_TLS, false);
	expect_class(CURLE_SSL_CONNECT_ERROR, 0, 0, -EPROTO, HTTP_ERR_TLS, false);
	expect_class(CURLE_WEIRD_SERVER_REPLY, 0, 0, -EIO, HTTP_ERR_BAD_RESPONSE, false);
	expect_class(CURLE_OUT_OF_MEMORY, 0, 0, -ENOMEM, HTTP_ERR_OTHER, false);
	expect_class(CURLE_FAILED_INIT, 0, 0, -EIO, HTTP_ERR_OTHER, false);
}

static void kind_names_are_defined(void **state)
{
	for (int k = 0; k < HTTP_ERR_KIND_MAX; k++) {
		const char *n = http_error_kind_name((enum http_error_kind)k);
		assert_non_null(n);
		assert_string_not_equal(n, "?");
	}
	assert_string_equal(http_error_kind_name(HTTP_ERR_KIND_MAX), "?");
}

static void backoff_doubles_is_capped_and_jitter_only_adds(void **state)
{
	/* No jitter: 1, 2, 4, 8, 16 s, then the cap. */
	assert_int_equal(http_retry_delay_ms(1, 1000, 30000, 0), 1000);
	assert_int_equal(http_retry_delay_ms(2, 1000, 30000, 0), 2000);
	assert_int_equal(http_retry_delay_ms(3, 1000, 30000, 0), 4000);
	assert_int_equal(http_retry_delay_ms(4, 1000, 30000, 0), 8000);
	assert_int_equal(http_retry_delay_ms(5, 1000, 30000, 0), 16000);
	assert_int_equal(http_retry_delay_ms(6, 1000, 30000, 0), 30000);
	assert_int_equal(http_retry_delay_ms(60, 1000, 30000, 0), 30000);
	assert_int_equal(http_retry_delay_ms(1000, 1000, 30000, 0), 30000);
	/* Full jitter adds a quarter, never takes away. */
	assert_int_equal(http_retry_delay_ms(1, 1000, 30000, UINT32_MAX), 1250);
	assert_int_equal(http_retry_delay_ms(3, 1000, 30000, UINT32_MAX), 5000);
	assert_int_equal(http_retry_delay_ms(60, 1000, 30000, UINT32_MAX), 37500);
	for (uint32_t r = 0; r < 4000000000u; r += 123456789u) {
		uint64_t d = http_retry_delay_ms(2, 1000, 30000, r);
		assert_true(d >= 2000 && d <= 2500);
	}
	/* Absurd inputs do not overflow. */
	assert_true(http_retry_delay_ms(64, UINT64_MAX, UINT64_MAX, UINT32_MAX) >=
		    24ULL * 3600 * 1000);
	assert_int_equal(http_retry_delay_ms(0, 1000, 30000, 0), 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(content_range_valid_forms),
		cmocka_unit_test(content_range_malformed_is_refused),
		cmocka_unit_test(response_206_exact_range_is_accepted),
		cmocka_unit_test(response_206_wrong_range_or_length_is_refused),
		cmocka_unit_test(response_200_only_for_the_whole_blob),
		cmocka_unit_test(response_other_statuses_are_refused),
		cmocka_unit_test(statuses_map_to_errno_and_retry_class),
		cmocka_unit_test(transport_errors_map_to_errno_and_retry_class),
		cmocka_unit_test(kind_names_are_defined),
		cmocka_unit_test(backoff_doubles_is_capped_and_jitter_only_adds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
