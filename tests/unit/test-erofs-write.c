// SPDX-License-Identifier: GPL-2.0-or-later
/* The EROFS metadata writer: images it writes are read back by our superblock reader and by
 * the real fsck.erofs (erofs-utils, which must be installed: these tests fail, they do not
 * skip, without it), which checks every inode and extracts every file through the device
 * files; the extracted bytes must equal the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "erofs_write.h"
#include "macros.h"
#include "test-erofs-tools.h"
#include "test-helpers.h"

static const uint8_t UUID[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };

/* What one test file should contain, to compare with what fsck.erofs extracted. */
struct expect {
	char *path; /* relative to the image root */
	uint8_t *data;
	size_t size;
};

struct fixture {
	char *dir;
	struct expect files[1024];
	size_t n_files;
	char *devices[64];
	size_t n_devices;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (access(FSCK_EROFS_PATH, X_OK) != 0) {
		fprintf(stderr, "%s not found: install erofs-utils (this test needs it)\n",
			FSCK_EROFS_PATH);
		return -1;
	}
	f->dir = test_make_temp_dir();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_remove_tree(f->dir);
	free(f->dir);
	for (size_t i = 0; i < f->n_files; i++) {
		free(f->files[i].path);
		free(f->files[i].data);
	}
	for (size_t i = 0; i < f->n_devices; i++)
		free(f->devices[i]);
	free(f);
	return 0;
}

static uint8_t *pattern(size_t size, unsigned int seed)
{
	uint8_t *p = malloc(size ? size : 1);
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
	return p;
}

static void expect_file(struct fixture *f, const char *path, const uint8_t *data, size_t size)
{
	struct expect *e = &f->files[f->n_files++];

	e->path = strdup(path);
	e->data = malloc(size ? size : 1);
	memcpy(e->data, data, size);
	e->size = size;
}

static int add_inline(struct fixture *f, struct erofs_writer *w, int parent, const char *dir,
		      const char *name, size_t size, unsigned int seed)
{
	_cleanup_free_ uint8_t *data = pattern(size, seed);
	char path[1024];
	int id = erofs_writer_add_file_inline(w, parent, name, 0644, data, size);

	assert_true(id > 0);
	snprintf(path, sizeof(path), "%s%s%s", dir, *dir ? "/" : "", name);
	expect_file(f, path, data, size);
	return id;
}

/* A device file: the given files' bytes, each from a block boundary, zero-padded; returns the
 * device id. starts[] receives each file's first block. */
static int add_device(struct fixture *f, struct erofs_writer *w, const char *tag,
		      uint8_t *const datas[], const size_t sizes[], size_t n, uint32_t starts[])
{
	char name[64];
	uint64_t blocks = 0;
	FILE *fp;
	int id;

	snprintf(name, sizeof(name), "dev%zu", f->n_devices);
	f->devices[f->n_devices] = test_path(f->dir, name);
	fp = fopen(f->devices[f->n_devices], "we");
	assert_non_null(fp);
	f->n_devices++;
	for (size_t i = 0; i < n; i++) {
		uint64_t padded = (sizes[i] + 4095) / 4096 * 4096;
		static const uint8_t zero[4096];

		starts[i] = (uint32_t)blocks;
		assert_int_equal(fwrite(datas[i], 1, sizes[i], fp), sizes[i]);
		assert_int_equal(fwrite(zero, 1, padded - sizes[i], fp), padded - sizes[i]);
		blocks += padded / 4096;
	}
	assert_int_equal(fclose(fp), 0);
	id = erofs_writer_add_device(w, tag, (uint32_t)blocks);
	assert_true(id > 0);
	return id;
}

/* Write the image, fsck.erofs it with its devices and extract it; compare every file. */
static void check_with_fsck(struct fixture *f, const uint8_t *image, size_t len,
			    size_t expect_entries_in_root)
{
	_cleanup_free_ char *meta = test_path(f->dir, "meta");
	_cleanup_free_ char *out = test_path(f->dir, "out");

	test_remove_tree(out);
	test_write_file(meta, image, len);
	assert_int_equal(
		test_fsck_extract(meta, (const char *const *)f->devices, f->n_devices, out), 0);

	for (size_t i = 0; i < f->n_files; i++) {
		_cleanup_free_ char *p = test_path(out, f->files[i].path);
		size_t got_len = 0;
		_cleanup_free_ char *got = test_read_file(p, &got_len);

		if (!got)
			fail_msg("%s was not extracted", f->files[i].path);
		if (got_len != f->files[i].size || memcmp(got, f->files[i].data, got_len))
			fail_msg("%s: %zu bytes extracted, expected %zu, or content differs",
				 f->files[i].path, got_len, f->files[i].size);
	}
	assert_int_equal(test_count_entries(out), (int)expect_entries_in_root);
}

static void test_root_only(void **state)
{
	struct fixture *f = *state;
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = erofs_writer_new(UUID, 20, 0);
	_cleanup_free_ uint8_t *image = NULL;
	struct erofs_sb_info sb;
	size_t len;

	assert_non_null(w);
	assert_int_equal(erofs_writer_build(w, &image, &len, NULL, 0), 0);
	assert_int_equal(len % 4096, 0);
	assert_int_equal(erofs_sb_read(image, len, &sb, NULL, 0), 0);
	assert_int_equal(sb.extra_devices, 0);
	assert_int_equal(sb.blocks, len / 4096);
	assert_memory_equal(sb.uuid, UUID, 16);
	check_with_fsck(f, image, len, 0);
}

/* Small files of every layout (empty, inline tails up to the largest that fits next to the
 * inode, flat blocks, blocks + tail), directories spanning several blocks, names that sort
 * before ".", and large files on three devices, one device holding two files. */
static void test_tree_round_trip(void **state)
{
	struct fixture *f = *state;
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = erofs_writer_new(UUID, 16, 42);
	_cleanup_free_ uint8_t *image = NULL, *image2 = NULL;
	static const size_t small[] = { 0, 1, 100, 4031, 4032, 4033, 4095, 4096, 8197, 100000 };
	const size_t big_sizes[] = { 3 * 65536, 200001, 5000, 1 };
	uint8_t *big[4];
	uint32_t starts[4];
	char name[64], err[256] = "", tag[EROFS_DEVICE_TAG_LEN + 1];
	struct erofs_sb_info sb;
	size_t len, len2;
	int sub, deep, d1, d2, d3, id;

	assert_non_null(w);
	for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
		snprintf(name, sizeof(name), "small-%zu", small[i]);
		add_inline(f, w, EROFS_W_ROOT, "", name, small[i], (unsigned int)i);
	}
	add_inline(f, w, EROFS_W_ROOT, "", "-sorts-before-dot", 7, 99);
	add_inline(f, w, EROFS_W_ROOT, "", "!bang", 9, 98);
	sub = erofs_writer_add_dir(w, EROFS_W_ROOT, "sub", 0755);
	assert_true(sub > 0);
	deep = erofs_writer_add_dir(w, sub, "deep", 0700);
	assert_true(deep > 0);
	/* 400 entries with long names: the directory needs many blocks */
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "file-with-a-rather-long-name-%04d.json", i);
		add_inline(f, w, sub, "sub", name, (size_t)(i * 37 % 3000),
			   (unsigned int)(1000 + i));
	}
	add_inline(f, w, deep, "sub/deep", "config.json", 321, 7);

	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		big[i] = pattern(big_sizes[i], (unsigned int)(500 + i));
	d1 = add_device(f, w, "model-00001-of-00002.safetensors", &big[0], &big_sizes[0], 1,
			&starts[0]);
	d2 = add_device(f, w, "model-00002-of-00002.safetensors", &big[1], &big_sizes[1], 1,
			&starts[1]);
	d3 = add_device(f, w, "packed", &big[2], &big_sizes[2], 2, &starts[2]);
	assert_int_equal(d1, 1);
	assert_int_equal(d3, 3);
	id = erofs_writer_add_file_chunked(w, EROFS_W_ROOT, "model-00001-of-00002.safetensors",
					   0644, big_sizes[0], (unsigned int)d1, starts[0]);
	assert_true(id > 0);
	expect_file(f, "model-00001-of-00002.safetensors", big[0], big_sizes[0]);
	id = erofs_writer_add_file_chunked(w, sub, "model-00002-of-00002.safetensors", 0644,
					   big_sizes[1], (unsigned int)d2, starts[1]);
	assert_true(id > 0);
	expect_file(f, "sub/model-00002-of-00002.safetensors", big[1], big_sizes[1]);
	assert_true(erofs_writer_add_file_chunked(w, deep, "a", 0644, big_sizes[2],
						  (unsigned int)d3, starts[2]) > 0);
	expect_file(f, "sub/deep/a", big[2], big_sizes[2]);
	assert_true(erofs_writer_add_file_chunked(w, deep, "b", 0600, big_sizes[3],
						  (unsigned int)d3, starts[3]) > 0);
	expect_file(f, "sub/deep/b", big[3], big_sizes[3]);
	for (size_t i = 0; i < ARRAY_SIZE(big); i++)
		free(big[i]);

	assert_int_equal(erofs_writer_build(w, &image, &len, err, sizeof(err)), 0);
	/* our reader: superblock, checksum, features, device table */
	assert_int_equal(erofs_sb_read(image, len, &sb, err, sizeof(err)), 0);
	assert_int_equal(sb.extra_devices, 3);
	assert_true(sb.feature_incompat & EROFS_FEATURE_INCOMPAT_CHUNKED_FILE);
	assert_true(sb.feature_incompat & EROFS_FEATURE_INCOMPAT_DEVICE_TABLE);
	assert_true(sb.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM);
	uint32_t blocks = 0;
	assert_int_equal(erofs_sb_get_device_tag(image, len, 1, tag, &blocks), 0);
	assert_string_equal(tag, "model-00002-of-00002.safetensors");
	assert_int_equal(blocks, (200001 + 4095) / 4096);
	assert_int_equal(erofs_sb_get_device_tag(image, len, 2, tag, &blocks), 0);
	assert_string_equal(tag, "packed");
	assert_int_equal(blocks, 2 + 1);
	/* the same input gives the same bytes */
	assert_int_equal(erofs_writer_build(w, &image2, &len2, NULL, 0), 0);
	assert_int_equal(len2, len);
	assert_memory_equal(image2, image, len);
	/* metadata stays small: small files cost about their size, large files 8 bytes a chunk */
	assert_true(len < 2 * 1024 * 1024);

	check_with_fsck(f, image, len, ARRAY_SIZE(small) + 2 + 1 + 1);
}

/* A 64-byte tag (no NUL on disk) and a device table past the first block (40 devices). */
static void test_many_devices(void **state)
{
	struct fixture *f = *state;
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = erofs_writer_new(UUID, 12, 0);
	_cleanup_free_ uint8_t *image = NULL;
	char tag[EROFS_DEVICE_TAG_LEN + 1], name[32];
	struct erofs_sb_info sb;
	size_t len;

	assert_non_null(w);
	for (int i = 0; i < 40; i++) {
		size_t size = 4096 * (size_t)(i % 3) + 1000 + (size_t)i;
		_cleanup_free_ uint8_t *data = pattern(size, (unsigned int)i);
		uint8_t *datas[1] = { data };
		uint32_t start;
		int dev;

		snprintf(tag, sizeof(tag), "%064d", i);
		dev = add_device(f, w, tag, datas, &size, 1, &start);
		assert_int_equal(dev, i + 1);
		snprintf(name, sizeof(name), "f%02d", i);
		assert_true(erofs_writer_add_file_chunked(w, EROFS_W_ROOT, name, 0644, size,
							  (unsigned int)dev, start) > 0);
		expect_file(f, name, data, size);
	}
	assert_int_equal(erofs_writer_build(w, &image, &len, NULL, 0), 0);
	assert_int_equal(erofs_sb_read(image, len, &sb, NULL, 0), 0);
	assert_int_equal(sb.extra_devices, 40);
	assert_int_equal(erofs_sb_get_device_tag(image, len, 39, tag, NULL), 0);
	assert_int_equal(strlen(tag), 64);
	assert_memory_equal(tag, "0000000000000000000000000000000000000000000000000000000000000039",
			    64);
	check_with_fsck(f, image, len, 40);
}

static void test_refusals(void **state)
{
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = erofs_writer_new(UUID, 20, 0);
	_cleanup_free_ uint8_t *image = NULL;
	char long_name[300], long_tag[70], err[256] = "";
	size_t len;
	int file, dev;

	(void)state;
	assert_null(erofs_writer_new(UUID, 11, 0));
	assert_null(erofs_writer_new(UUID, 44, 0));
	assert_non_null(w);
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	memset(long_tag, 't', sizeof(long_tag) - 1);
	long_tag[sizeof(long_tag) - 1] = '\0';

	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, "", 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, ".", 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, "..", 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, "a/b", 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, long_name, 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, 99, "x", 0755), -EINVAL);
	file = erofs_writer_add_file_inline(w, EROFS_W_ROOT, "file", 0644, "abc", 3);
	assert_true(file > 0);
	assert_int_equal(erofs_writer_add_dir(w, file, "x", 0755), -EINVAL);
	assert_int_equal(erofs_writer_add_dir(w, EROFS_W_ROOT, "file", 0755), -EEXIST);

	assert_int_equal(erofs_writer_add_device(w, "", 1), -EINVAL);
	assert_int_equal(erofs_writer_add_device(w, long_tag, 1), -EINVAL);
	assert_int_equal(erofs_writer_add_device(w, "dev", 0), -EINVAL);
	/* no such device, empty file, block addresses past 32 bits */
	assert_int_equal(erofs_writer_add_file_chunked(w, EROFS_W_ROOT, "big", 0644, 10, 1, 0),
			 -EINVAL);
	dev = erofs_writer_add_device(w, "dev", 2);
	assert_int_equal(dev, 1);
	assert_int_equal(erofs_writer_add_file_chunked(w, EROFS_W_ROOT, "big", 0644, 0, 1, 0),
			 -EINVAL);
	assert_int_equal(erofs_writer_add_file_chunked(w, EROFS_W_ROOT, "big", 0644, (3ULL << 20),
						       1, UINT32_MAX - 256),
			 -ERANGE);
	/* a file beyond its device's blocks is refused at build, naming the file */
	assert_true(erofs_writer_add_file_chunked(w, EROFS_W_ROOT, "big", 0644, 3 * 4096, 1, 0) >
		    0);
	assert_int_equal(erofs_writer_build(w, &image, &len, err, sizeof(err)), -EINVAL);
	assert_null(image);
	assert_non_null(strstr(err, "'big'"));
	/* a device named and sized once its content is known (a packed blob): then it builds */
	assert_int_equal(erofs_writer_set_device(w, 0, "x", 3), -EINVAL);
	assert_int_equal(erofs_writer_set_device(w, 2, "x", 3), -EINVAL);
	assert_int_equal(erofs_writer_set_device(w, 1, "", 3), -EINVAL);
	assert_int_equal(erofs_writer_set_device(w, 1, long_tag, 3), -EINVAL);
	assert_int_equal(erofs_writer_set_device(w, 1, "packed", 0), -EINVAL);
	assert_int_equal(erofs_writer_set_device(w, 1, "packed", 3), 0);
	assert_int_equal(erofs_writer_build(w, &image, &len, err, sizeof(err)), 0);
	{
		char tag[EROFS_DEVICE_TAG_LEN + 1];
		uint32_t blocks;

		assert_int_equal(erofs_sb_get_device_tag(image, len, 0, tag, &blocks), 0);
		assert_string_equal(tag, "packed");
		assert_int_equal(blocks, 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tree_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_devices, setup, teardown),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
