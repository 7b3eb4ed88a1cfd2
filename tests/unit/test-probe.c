// SPDX-License-Identifier: GPL-2.0-or-later
/* Readiness decisions and the metrics text of the probe endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "probe.h"

static struct fill_stats fs;
static struct ondemand_stats os;

static struct probe_source source(void)
{
	struct probe_source s = {
		.fill = &fs, .ondemand = &os, .request_timeout_ms = 30000, .bound = true
	};
	return s;
}

static int reset(void **state)
{
	memset(&fs, 0, sizeof(fs));
	memset(&os, 0, sizeof(os));
	return 0;
}

static void ready_when_bound_and_nothing_wrong(void **state)
{
	struct probe_source s = source();
	char why[256];

	assert_true(probe_ready(&s, 1000, why, sizeof(why)));
	assert_string_equal(why, "");
}

static void unready_when_not_bound(void **state)
{
	struct probe_source s = source();
	char why[256];

	s.bound = false;
	assert_false(probe_ready(&s, 1000, why, sizeof(why)));
	assert_non_null(strstr(why, "not bound"));
}

static void unready_while_a_request_is_past_its_deadline(void **state)
{
	struct probe_source s = source();
	char why[256];

	fs.oldest_request_age_ms = 29999;
	assert_true(probe_ready(&s, 1000, why, sizeof(why)));
	fs.oldest_request_age_ms = 30000;
	assert_false(probe_ready(&s, 1000, why, sizeof(why)));
	assert_non_null(strstr(why, "past its 30000 ms deadline"));
}

static void unready_while_the_origin_fails_and_ready_after_a_good_fetch(void **state)
{
	struct probe_source s = source();
	char why[256];

	fs.origin_last_ok_ms = 100;
	fs.origin_last_error_ms = 200;
	assert_false(probe_ready(&s, 1200, why, sizeof(why)));
	assert_non_null(strstr(why, "origin failing: its last fetch failed 1000 ms ago"));
	fs.origin_last_ok_ms = 300;
	assert_true(probe_ready(&s, 1200, why, sizeof(why)));
}

static void all_reasons_are_listed(void **state)
{
	struct probe_source s = source();
	char why[512];

	s.bound = false;
	fs.oldest_request_age_ms = 40000;
	fs.origin_last_error_ms = 5;
	assert_false(probe_ready(&s, 10, why, sizeof(why)));
	assert_non_null(strstr(why, "not bound\n"));
	assert_non_null(strstr(why, "deadline\n"));
	assert_non_null(strstr(why, "origin failing"));
	/* A tiny buffer truncates, never overflows. */
	assert_false(probe_ready(&s, 10, why, 8));
	assert_true(strlen(why) < 8);
}

static void metrics_carry_counters_histogram_and_types(void **state)
{
	struct probe_source s = source();
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	os.reads = 7;
	fs.origin_bytes = 1048576;
	fs.verify_failures = 2;
	fs.fetch_latency[2] = 3;
	fs.fetch_latency[7] = 4;
	fs.fetch_latency_count = 4;
	fs.fetch_latency_sum_ms = 1500;
	probe_format_metrics(&s, f);
	fclose(f);
	assert_non_null(
		strstr(buf, "# TYPE blobcached_reads_total counter\nblobcached_reads_total 7\n"));
	assert_non_null(strstr(buf, "blobcached_origin_bytes_total 1048576\n"));
	assert_non_null(strstr(buf, "blobcached_errors_total{kind=\"verify\"} 2\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_bucket{le=\"0.05\"} 3\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(buf, "blobcached_fetch_seconds_sum 1.5\n"));
	assert_null(strstr(buf, "http_attempts")); /* file origin: no HTTP series */
	if (getenv("PROBE_METRICS_OUT")) { /* for the host test that parses it with Prometheus */
		FILE *o = fopen(getenv("PROBE_METRICS_OUT"), "w");
		assert_non_null(o);
		fputs(buf, o);
		fclose(o);
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(ready_when_bound_and_nothing_wrong, reset),
		cmocka_unit_test_setup(unready_when_not_bound, reset),
		cmocka_unit_test_setup(unready_while_a_request_is_past_its_deadline, reset),
		cmocka_unit_test_setup(unready_while_the_origin_fails_and_ready_after_a_good_fetch,
				       reset),
		cmocka_unit_test_setup(all_reasons_are_listed, reset),
		cmocka_unit_test_setup(metrics_carry_counters_histogram_and_types, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
