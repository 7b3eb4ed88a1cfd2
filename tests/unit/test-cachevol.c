// SPDX-License-Identifier: GPL-2.0-or-later
/* The cache volume's verdict from its probes and the fill core's last failed write. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ops/cachevol.h"

static void healthy_volume_is_ready(void **state)
{
	struct cachevol_state st = { .last_ok_ms = 1000, .probes = 1 };
	char why[256] = "";

	assert_true(cachevol_verdict(&st, 0, 0, 1500, "/c", why, sizeof(why)));
	assert_string_equal(why, "");
	/* A write error older than the last good probe is over. */
	assert_true(cachevol_verdict(&st, 900, EIO, 1500, "/c", why, sizeof(why)));
}

static void failed_probe_names_the_step_and_error(void **state)
{
	struct cachevol_state st = {
		.last_ok_ms = 1000, .last_error_ms = 3000, .last_errno = EIO, .last_step = "read"
	};
	char why[256] = "";

	assert_false(cachevol_verdict(&st, 0, 0, 3500, "/c", why, sizeof(why)));
	assert_non_null(strstr(why, "cache volume failing: read of the probe in /c failed 500 ms"));
	assert_non_null(strstr(why, "Input/output error"));
	/* The next good probe makes it ready again. */
	st.last_ok_ms = 5000;
	why[0] = '\0';
	assert_true(cachevol_verdict(&st, 0, 0, 5001, "/c", why, sizeof(why)));
}

static void read_only_filesystem_says_how_to_repair(void **state)
{
	struct cachevol_state st = { .last_error_ms = 10,
				     .last_errno = EROFS,
				     .last_step = "statvfs" };
	char why[256] = "";

	assert_false(cachevol_verdict(&st, 0, 0, 20, "/c", why, sizeof(why)));
	assert_non_null(strstr(why, "read-only"));
	assert_non_null(strstr(why, "e2fsck"));
}

static void chunk_write_failure_after_the_last_good_probe(void **state)
{
	struct cachevol_state st = { .last_ok_ms = 1000 };
	char why[256] = "prior reason\n";

	assert_false(cachevol_verdict(&st, 1200, ENOSPC, 1300, "/c", why, sizeof(why)));
	assert_non_null(strstr(why, "prior reason\ncache volume failing: writing a chunk"));
	assert_non_null(strstr(why, "No space left on device"));
}

static void hung_probe_is_reported(void **state)
{
	struct cachevol_state st = { .last_ok_ms = 1000, .running_since_ms = 2000 };
	char why[256] = "";

	assert_true(
		cachevol_verdict(&st, 0, 0, 2000 + CACHEVOL_HUNG_MS - 1, "/c", why, sizeof(why)));
	assert_false(cachevol_verdict(&st, 0, 0, 2000 + CACHEVOL_HUNG_MS, "/c", why, sizeof(why)));
	assert_non_null(strstr(why, "not answering"));
}

static void caches_file_gives_the_state_of_our_tag(void **state)
{
	const char *text = "CACHE    REF   VOLS  OBJS  ACCES S NAME\n"
			   "======== ===== ===== ===== ===== = ===============\n"
			   "00000001     2     1     2     0 A other\n"
			   "00000002     3     1     4     0 E blobcached\n";
	struct cachevol_state st = { .last_ok_ms = 10, .cache_state = 'E' };
	char why[512] = "";

	assert_int_equal(cachevol_parse_caches(text, "blobcached"), 'E');
	assert_int_equal(cachevol_parse_caches(text, "other"), 'A');
	assert_int_equal(cachevol_parse_caches(text, "none"), 0);
	assert_int_equal(cachevol_parse_caches("", "blobcached"), 0);
	/* A stopped cache is not ready even when the volume answers. */
	assert_false(cachevol_verdict(&st, 0, 0, 20, "/c", why, sizeof(why)));
	assert_non_null(strstr(why, "cachefiles stopped the cache"));
	st.cache_state = 'A';
	assert_true(cachevol_verdict(&st, 0, 0, 20, "/c", why, sizeof(why)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(healthy_volume_is_ready),
		cmocka_unit_test(failed_probe_names_the_step_and_error),
		cmocka_unit_test(read_only_filesystem_says_how_to_repair),
		cmocka_unit_test(chunk_write_failure_after_the_last_good_probe),
		cmocka_unit_test(hung_probe_is_reported),
		cmocka_unit_test(caches_file_gives_the_state_of_our_tag),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
