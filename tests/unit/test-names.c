// SPDX-License-Identifier: GPL-2.0-or-later
/* Names arrive from whoever can mount: everything outside the grammar must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <string.h>

#include "names.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool valid_model(const char *s)
{
	return name_is_valid_model(s, strlen(s));
}

static void test_model_names_accepted(void **state)
{
	assert_true(valid_model("a"));
	assert_true(valid_model("model123"));
	assert_true(valid_model("Llama-3.1_8B"));
	assert_true(valid_model("0abc"));
	/* 64 bytes is the maximum */
	assert_true(
		valid_model("m123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
}

static void test_model_names_traversal_refused(void **state)
{
	assert_false(valid_model("."));
	assert_false(valid_model(".."));
	assert_false(valid_model("../etc"));
	assert_false(valid_model("a/b"));
	assert_false(valid_model("/abs"));
	assert_false(valid_model(".hidden"));
	assert_false(valid_model("-rf"));
	assert_false(valid_model("_x"));
}

static void test_model_names_odd_bytes_refused(void **state)
{
	assert_false(valid_model("a b"));
	assert_false(valid_model("a\n"));
	assert_false(valid_model("a\tb"));
	assert_false(valid_model("caf\xc3\xa9"));
	assert_false(valid_model("a\x7f"));
	assert_false(valid_model("a,b"));
	assert_false(valid_model("a=b"));
	assert_false(valid_model("a\\b"));
	assert_false(valid_model("a:b"));
}

static void test_model_names_nul_inside_refused(void **state)
{
	assert_false(name_is_valid_model("a\0b", 3));
	assert_false(name_is_valid_model("ab\0", 3));
	/* only `len` bytes count: a valid prefix of a longer buffer is valid */
	assert_true(name_is_valid_model("ab/../x", 2));
}

static void test_model_names_lengths(void **state)
{
	char buf[MODEL_NAME_MAX + 2];

	memset(buf, 'x', sizeof(buf));
	assert_false(name_is_valid_model("", 0));
	assert_false(name_is_valid_model(NULL, 3));
	assert_true(name_is_valid_model(buf, MODEL_NAME_MAX));
	assert_false(name_is_valid_model(buf, MODEL_NAME_MAX + 1));
}

static void test_digests(void **state)
{
	char buf[DIGEST_HEX_LEN + 1];

	assert_true(name_is_digest(HEX64, 64));
	assert_false(name_is_digest(HEX64, 63));
	assert_false(name_is_digest(HEX64 "0", 65));
	assert_false(name_is_digest("", 0));
	assert_false(name_is_digest(NULL, 64));

	memcpy(buf, HEX64, sizeof(buf));
	buf[10] = 'A'; /* upper case is not the canonical form */
	assert_false(name_is_digest(buf, 64));
	buf[10] = 'g';
	assert_false(name_is_digest(buf, 64));
	buf[10] = '\0';
	assert_false(name_is_digest(buf, 64));
	buf[10] = '/';
	assert_false(name_is_digest(buf, 64));
	memcpy(buf, HEX64, sizeof(buf));
	buf[63] = '\n';
	assert_false(name_is_digest(buf, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_names_accepted),
		cmocka_unit_test(test_model_names_traversal_refused),
		cmocka_unit_test(test_model_names_odd_bytes_refused),
		cmocka_unit_test(test_model_names_nul_inside_refused),
		cmocka_unit_test(test_model_names_lengths),
		cmocka_unit_test(test_digests),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
