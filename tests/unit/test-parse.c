// SPDX-License-Identifier: GPL-2.0-or-later
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>

#include "parse.h"

static uint64_t size_ok(const char *s)
{
	uint64_t v = 0xdeadbeef;

	assert_int_equal(parse_size(s, &v), 0);
	return v;
}

static void test_size_units(void **state)
{
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("4K"), 4096);
	assert_int_equal(size_ok("4k"), 4096);
	assert_int_equal(size_ok("1M"), 1 << 20);
	assert_int_equal(size_ok("1MiB"), 1 << 20);
	assert_int_equal(size_ok("1MB"), 1 << 20);
	assert_int_equal(size_ok("2G"), 2ULL << 30);
	assert_int_equal(size_ok("1T"), 1ULL << 40);
	assert_int_equal(size_ok("7B"), 7);
	assert_int_equal(size_ok("18446744073709551615"), UINT64_MAX);
}

static void test_size_malformed(void **state)
{
	uint64_t v = 42;

	assert_int_equal(parse_size("", &v), -EINVAL);
	assert_int_equal(parse_size(NULL, &v), -EINVAL);
	assert_int_equal(parse_size("-1", &v), -EINVAL);
	assert_int_equal(parse_size("+1", &v), -EINVAL);
	assert_int_equal(parse_size(" 1", &v), -EINVAL);
	assert_int_equal(parse_size("1 ", &v), -EINVAL);
	assert_int_equal(parse_size("1X", &v), -EINVAL);
	assert_int_equal(parse_size("1Kx", &v), -EINVAL);
	assert_int_equal(parse_size("1KiBB", &v), -EINVAL);
	assert_int_equal(parse_size("K", &v), -EINVAL);
	assert_int_equal(parse_size("1.5M", &v), -EINVAL);
	assert_int_equal(v, 42); /* untouched on error */
}

static void test_size_overflow(void **state)
{
	uint64_t v;

	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("16777216T", &v), -ERANGE); /* 2^64 */
	assert_int_equal(parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(parse_size("16777215T", &v), 0);
	assert_int_equal(v, 16777215ULL << 40);
}

static uint64_t ms_ok(const char *s)
{
	uint64_t v = 0xdeadbeef;

	assert_int_equal(parse_duration_ms(s, &v), 0);
	return v;
}

static void test_duration(void **state)
{
	uint64_t v;

	assert_int_equal(ms_ok("30"), 30000);
	assert_int_equal(ms_ok("30s"), 30000);
	assert_int_equal(ms_ok("500ms"), 500);
	assert_int_equal(ms_ok("2m"), 120000);
	assert_int_equal(ms_ok("2min"), 120000);
	assert_int_equal(ms_ok("1h"), 3600000);
	assert_int_equal(ms_ok("7d"), 7ULL * 86400000);
	assert_int_equal(ms_ok("0"), 0);
	assert_int_equal(parse_duration_ms("", &v), -EINVAL);
	assert_int_equal(parse_duration_ms("s", &v), -EINVAL);
	assert_int_equal(parse_duration_ms("1x", &v), -EINVAL);
	assert_int_equal(parse_duration_ms("1 s", &v), -EINVAL);
	assert_int_equal(parse_duration_ms("-1s", &v), -EINVAL);
	assert_int_equal(parse_duration_ms("1S", &v), -EINVAL);
}

static void test_duration_overflow(void **state)
{
	uint64_t v;

	assert_int_equal(ms_ok("18446744073709551615ms"), UINT64_MAX);
	assert_int_equal(parse_duration_ms("18446744073709551615s", &v), -ERANGE);
	assert_int_equal(parse_duration_ms("213503982335d", &v), -ERANGE);
	assert_int_equal(parse_duration_ms("99999999999999999999ms", &v), -ERANGE);
}

static void test_bool(void **state)
{
	static const char *yes[] = { "1", "yes", "true", "on", "YES", "True", "ON" };
	static const char *no[] = { "0", "no", "false", "off", "No", "FALSE", "Off" };
	static const char *bad[] = { "", "2", "y", "n", "yes ", "enable", "nope", "01" };
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		assert_int_equal(parse_bool(yes[i], &b), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		assert_int_equal(parse_bool(no[i], &b), 0);
		assert_false(b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse_bool(bad[i], &b), -EINVAL);
	assert_int_equal(parse_bool(NULL, &b), -EINVAL);
}

static void test_uint_range(void **state)
{
	uint64_t v = 0;

	assert_int_equal(parse_uint_range("5", 0, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse_uint_range("50%", 0, 100, &v), 0);
	assert_int_equal(v, 50);
	assert_int_equal(parse_uint_range("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint_range("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	v = 7;
	assert_int_equal(parse_uint_range("11", 0, 10, &v), -ERANGE);
	assert_int_equal(parse_uint_range("4", 5, 10, &v), -ERANGE);
	assert_int_equal(v, 7);
	assert_int_equal(parse_uint_range("5%%", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("5 %", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("%", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("x", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("-1", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_uint_range("99999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(parse_uint_range("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_units),	  cmocka_unit_test(test_size_malformed),
		cmocka_unit_test(test_size_overflow),	  cmocka_unit_test(test_duration),
		cmocka_unit_test(test_duration_overflow), cmocka_unit_test(test_bool),
		cmocka_unit_test(test_uint_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
