// SPDX-License-Identifier: GPL-2.0-or-later
/* Records of name-keyed cache files (ondemand_records.h): the record's text, the decision made
 * at a metadata OPEN, the files; and the mountinfo options that tell a live mount. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/xattr.h>

#include "core/mountinfo.h"
#include "frontend/ondemand_records.h"
#include "io.h"
#include "test-helpers.h"

#define A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int parse(const char *text, struct od_record *r)
{
	return od_record_parse(text, strlen(text), r);
}

static void record_format_parse_round_trip(void **state)
{
	struct od_record r = { .meta = A, .size = 4096 }, back;
	char buf[256];
	int n = od_record_format(&r, buf, sizeof(buf));

	assert_int_equal(n, (int)strlen("meta " A "\nsize 4096\n"));
	assert_string_equal(buf, "meta " A "\nsize 4096\n");
	assert_int_equal(od_record_parse(buf, (size_t)n, &back), 0);
	assert_string_equal(back.meta, A);
	assert_int_equal(back.size, 4096);
	r.size = UINT64_MAX;
	n = od_record_format(&r, buf, sizeof(buf));
	assert_int_equal(od_record_parse(buf, (size_t)n, &back), 0);
	assert_true(back.size == UINT64_MAX);
	assert_int_equal(od_record_format(&r, buf, 10), -ENOBUFS);
}

static void record_malformed_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"meta " A "\n",
		"meta " A "\nsize \n",
		"meta " A "\nsize 12",		/* no final newline: a torn write */
		"meta " A "\nsize 12\nextra\n", /* trailing text */
		"meta " A "\nsize 012\n",	/* leading zero: not what format writes */
		"meta " A "\nsize -1\n",
		"meta " A "\nsize 18446744073709551616\n", /* 2^64 */
		"meta AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nsize 1\n",
		"meta abc\nsize 1\n",
		"meta  " A "\nsize 1\n",
		"size 1\nmeta " A "\n",
	};
	struct od_record r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &r) != -EINVAL)
			fail_msg("accepted record #%zu: '%s'", i, bad[i]);
	/* A NUL inside, and a length shorter than the text: the length is what counts. */
	assert_int_equal(od_record_parse("meta " A "\nsize 1\0\n", 79, &r), -EINVAL);
	assert_int_equal(od_record_parse("meta " A "\nsize 1\n", 10, &r), -EINVAL);
	assert_int_equal(od_record_parse(NULL, 0, &r), -EINVAL);
}

/* Every prefix of a good record, and every single-byte change, is handled without reading
 * outside the given length (run under ASan in the sanitizer build). */
static void record_prefixes_and_flips(void **state)
{
	const char *good = "meta " A "\nsize 4096\n";
	size_t len = strlen(good);
	struct od_record r;

	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n ? n : 1);
		memcpy(copy, good, n);
		assert_int_equal(od_record_parse(copy, n, &r), -EINVAL);
		free(copy);
	}
	for (size_t i = 0; i < len; i++) {
		char copy[128];
		memcpy(copy, good, len);
		copy[i] ^= 0x40;
		od_record_parse(copy, len, &r); /* any result, no crash */
	}
}

static void decide(void **state)
{
	struct od_record ra = { .meta = A, .size = 4096 };

	/* New mounts: the record says what the file holds. */
	assert_int_equal(od_decide(&ra, A, false, true), OD_SERVE_CURRENT);
	assert_int_equal(od_decide(&ra, B, false, true), OD_SERVE_CURRENT_DISCARD);
	assert_int_equal(od_decide(NULL, B, false, true), OD_SERVE_CURRENT_DISCARD);
	/* Nothing cached: nothing to discard. */
	assert_int_equal(od_decide(&ra, B, false, false), OD_SERVE_CURRENT);
	assert_int_equal(od_decide(NULL, A, false, false), OD_SERVE_CURRENT);
	/* A live mount re-opened after a restart reads the version it was made with. */
	assert_int_equal(od_decide(&ra, B, true, true), OD_SERVE_RECORDED);
	assert_int_equal(od_decide(&ra, A, true, true), OD_SERVE_RECORDED);
	assert_int_equal(od_decide(&ra, B, true, false), OD_SERVE_RECORDED);
	/* ... never discarding its file; without a record only the current one is known. */
	assert_int_equal(od_decide(NULL, B, true, true), OD_SERVE_CURRENT);
}

static void record_files(void **state)
{
	char *dir = test_make_temp_dir(), served[4096], path[4096 + 64];
	struct od_record r = { .meta = A, .size = 8192 }, back;

	snprintf(served, sizeof(served), "%s/served", dir);
	assert_int_equal(od_record_load(served, "erofs,m", "m", &back), -ENOENT);
	assert_int_equal(od_record_save(served, "erofs,m", "m", &r), 0);
	assert_int_equal(od_record_load(served, "erofs,m", "m", &back), 0);
	assert_string_equal(back.meta, A);
	assert_int_equal(back.size, 8192);
	/* replaced atomically: no temporary file left beside it */
	memcpy(r.meta, B, sizeof(B));
	assert_int_equal(od_record_save(served, "erofs,m", "m", &r), 0);
	assert_int_equal(od_record_load(served, "erofs,m", "m", &back), 0);
	assert_string_equal(back.meta, B);
	snprintf(path, sizeof(path), "%s/erofs,m", served);
	assert_int_equal(test_count_entries(path), 1);
	/* another volume (a domain) is another record */
	assert_int_equal(od_record_load(served, "erofs,dom", "m", &back), -ENOENT);
	/* a damaged record is reported as such (the caller treats it as none) */
	snprintf(path, sizeof(path), "%s/erofs,m/m", served);
	test_write_file(path, "meta x\n", 7);
	assert_int_equal(od_record_load(served, "erofs,m", "m", &back), -EINVAL);
	assert_int_equal(od_record_remove(served, "erofs,m", "m"), 0);
	assert_int_equal(od_record_remove(served, "erofs,m", "m"), 0);
	assert_int_equal(od_record_load(served, "erofs,m", "m", &back), -ENOENT);
	test_remove_tree(dir);
	free(dir);
}

static void cache_file_find_and_discard(void **state)
{
	char *dir = test_make_temp_dir(), path[4096], found[4096], value[64];
	ssize_t n;

	assert_int_equal(od_cache_file_find(dir, "erofs,m", "m", found, sizeof(found)), -ENOENT);
	snprintf(path, sizeof(path), "%s/cache/Ierofs,m/@7c", dir);
	assert_int_equal(mkdir_parents(path), 0);
	snprintf(path, sizeof(path), "%s/cache/Ierofs,m/@7c/Dm", dir);
	test_write_file(path, "x", 1);
	assert_int_equal(od_cache_file_find(dir, "erofs,m", "m", found, sizeof(found)), 0);
	assert_string_equal(found, path);
	assert_int_equal(od_cache_file_find(dir, "erofs,m", "m2", found, sizeof(found)), -ENOENT);
	assert_int_equal(od_cache_file_find(dir, "erofs,d", "m", found, sizeof(found)), -ENOENT);

	/* The coherency xattr gets a value of a length the kernel never accepts (it is 18 bytes
	 * for EROFS); one is created where none was. Skipped where the filesystem has no user
	 * xattrs (tmpfs before 6.6). */
	if (lsetxattr(path, "user.CacheFiles.cache", "012345678901234567", 18, 0) < 0) {
		print_message("no user xattrs on %s: discard not checked\n", dir);
	} else {
		assert_int_equal(od_cache_file_discard(path), 0);
		n = lgetxattr(path, "user.CacheFiles.cache", value, sizeof(value));
		assert_int_equal(n, 1);
		lremovexattr(path, "user.CacheFiles.cache");
		assert_int_equal(od_cache_file_discard(path), 0);
		n = lgetxattr(path, "user.CacheFiles.cache", value, sizeof(value));
		assert_int_equal(n, 1);
	}
	snprintf(path, sizeof(path), "%s/cache/Ierofs,m/@7c/Dgone", dir);
	assert_int_equal(od_cache_file_discard(path), -ENOENT);
	test_remove_tree(dir);
	free(dir);
}

static void mount_options_match(void **state)
{
	assert_true(erofs_options_match("ro,fsid=m", "m", NULL));
	assert_true(erofs_options_match("ro,fsid=m", "m", "m"));
	assert_false(erofs_options_match("ro,fsid=m", "m", "dom"));
	assert_true(erofs_options_match("ro,fsid=m,domain_id=dom", "m", "dom"));
	assert_true(erofs_options_match("ro,fsid=m,domain_id=dom", "m", NULL));
	/* in a domain named like the model, the volume is the domain's, not the fsid's */
	assert_true(erofs_options_match("ro,fsid=m,domain_id=m", "m", "m"));
	assert_false(erofs_options_match("ro,fsid=m,domain_id=x", "m", "m"));
	assert_false(erofs_options_match("ro,fsid=m2", "m", NULL));
	assert_false(erofs_options_match("ro,fsid=mm", "m", NULL));
	assert_false(erofs_options_match("ro,fsid=", "m", NULL));
	assert_false(erofs_options_match("ro,device=m", "m", NULL));
	assert_false(erofs_options_match("", "m", NULL));
	assert_false(erofs_options_match(NULL, "m", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_format_parse_round_trip),
		cmocka_unit_test(record_malformed_refused),
		cmocka_unit_test(record_prefixes_and_flips),
		cmocka_unit_test(decide),
		cmocka_unit_test(record_files),
		cmocka_unit_test(cache_file_find_and_discard),
		cmocka_unit_test(mount_options_match),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
