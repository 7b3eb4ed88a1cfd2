// SPDX-License-Identifier: GPL-2.0-or-later
/* CRC-32C and the superblock helpers, on a real image made by mkfs.erofs (erofs-utils must
 * be installed: this test fails, it does not skip, without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "erofs.h"
#include "test-erofs-tools.h"
#include "test-helpers.h"

#define TAG "54ddb0ed7e78cda509e2ed1564558104310b62020b6d9bf74b1a2b921bc9db7b"

static uint32_t crc32c_standard(const void *buf, size_t len)
{
	return erofs_crc32c(~0u, buf, len) ^ ~0u;
}

static void test_crc32c_vectors(void **state)
{
	uint8_t buf[32];

	/* check value of CRC-32C (iSCSI) */
	assert_int_equal(crc32c_standard("123456789", 9), 0xE3069283);
	/* the raw register, as EROFS stores it: no final inversion */
	assert_int_equal(erofs_crc32c(~0u, "123456789", 9), 0x1CF96D7C);
	assert_int_equal(erofs_crc32c(~0u, "", 0), 0xFFFFFFFF);
	assert_int_equal(erofs_crc32c(0, "", 0), 0);
	/* RFC 3720 B.4 */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(crc32c_standard(buf, sizeof(buf)), 0x8A9136AA);
	memset(buf, 0xff, sizeof(buf));
	assert_int_equal(crc32c_standard(buf, sizeof(buf)), 0x62A8AB43);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(crc32c_standard(buf, sizeof(buf)), 0x46DD794E);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	assert_int_equal(crc32c_standard(buf, sizeof(buf)), 0x113FDB5C);
}

static void test_crc32c_incremental(void **state)
{
	const char *s = "The quick brown fox jumps over the lazy dog";
	size_t len = strlen(s);
	uint32_t whole = erofs_crc32c(~0u, s, len);

	for (size_t split = 0; split <= len; split++)
		assert_int_equal(erofs_crc32c(erofs_crc32c(~0u, s, split), s + split, len - split),
				 whole);
	assert_int_equal(whole ^ ~0u, 0x22620404);
}

struct image {
	char *dir;
	char *meta;
	char *data;
	uint8_t *buf; /* the metadata blob */
	size_t len;
};

static int make_image(void **state)
{
	struct image *img = calloc(1, sizeof(*img));
	char *src, *file, *sub;
	char big[20000];

	if (access(MKFS_EROFS_PATH, X_OK) != 0) {
		fprintf(stderr, "%s not found: install erofs-utils (this test needs it)\n",
			MKFS_EROFS_PATH);
		return -1; /* group setup failure: the tests fail, they are not skipped */
	}
	img->dir = test_make_temp_dir();
	src = test_path(img->dir, "src");
	mkdir(src, 0755);
	file = test_path(src, "file");
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7);
	test_write_file(file, big, sizeof(big));
	sub = test_path(src, "small");
	test_write_file(sub, "hello\n", 6);
	img->meta = test_path(img->dir, "meta");
	img->data = test_path(img->dir, "data");

	char blobdev[512];
	snprintf(blobdev, sizeof(blobdev), "--blobdev=%s", img->data);
	char *argv[] = { MKFS_EROFS_PATH,    "--quiet", "-T0", "--all-root", blobdev,
			 "--chunksize=4096", img->meta, src,   NULL };
	int r = test_run(argv);
	free(src);
	free(file);
	free(sub);
	if (r != 0) {
		fprintf(stderr, "mkfs.erofs failed (%d)\n", r);
		return -1;
	}
	img->buf = (uint8_t *)test_read_file(img->meta, &img->len);
	*state = img;
	return img->buf ? 0 : -1;
}

static int remove_image(void **state)
{
	struct image *img = *state;

	if (!img)
		return 0;
	test_remove_tree(img->dir);
	free(img->dir);
	free(img->meta);
	free(img->data);
	free(img->buf);
	free(img);
	return 0;
}

static uint8_t *copy_of(const struct image *img)
{
	uint8_t *b = malloc(img->len);

	memcpy(b, img->buf, img->len);
	return b;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void test_read_mkfs_superblock(void **state)
{
	struct image *img = *state;
	struct erofs_sb_info sb;
	char err[256] = "";

	assert_int_equal(erofs_sb_read(img->buf, img->len, &sb, err, sizeof(err)), 0);
	assert_int_equal(sb.blkszbits, 12);
	assert_int_equal(sb.extra_devices, 1);
	assert_true(sb.devt_slotoff * 128 >= 1024 + 128);
	assert_true(sb.feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM);
	assert_true(sb.feature_incompat & EROFS_FEATURE_INCOMPAT_CHUNKED_FILE);
	assert_true(sb.feature_incompat & EROFS_FEATURE_INCOMPAT_DEVICE_TABLE);
	/* our crc reproduces the checksum mkfs.erofs wrote */
	assert_int_equal(erofs_sb_compute_checksum(img->buf), sb.checksum);
}

static void test_mkfs_leaves_tag_empty(void **state)
{
	struct image *img = *state;
	char tag[EROFS_DEVICE_TAG_LEN + 1];
	uint32_t blocks = 1;

	assert_int_equal(erofs_sb_get_device_tag(img->buf, img->len, 0, tag, &blocks), 0);
	assert_string_equal(tag, ""); /* erofs-utils 1.5; if this changes, publish still works */
}

static void test_set_device_tag(void **state)
{
	struct image *img = *state;
	uint8_t *b = copy_of(img);
	struct erofs_sb_info before, after;
	char tag[EROFS_DEVICE_TAG_LEN + 1], err[256] = "";
	uint32_t blocks = 0;

	assert_int_equal(erofs_sb_read(b, img->len, &before, NULL, 0), 0);
	assert_int_equal(erofs_sb_set_device(b, img->len, 0, TAG, 6, err, sizeof(err)), 0);
	assert_int_equal(erofs_sb_get_device_tag(b, img->len, 0, tag, &blocks), 0);
	assert_string_equal(tag, TAG);
	assert_int_equal(blocks, 6);
	/* the checksum was recomputed: the image still validates, with a new checksum */
	assert_int_equal(erofs_sb_read(b, img->len, &after, err, sizeof(err)), 0);
	assert_int_not_equal(after.checksum, before.checksum);
	assert_int_equal(after.checksum, erofs_sb_compute_checksum(b));
	/* nothing but the slot and the checksum changed */
	size_t slot = (size_t)before.devt_slotoff * 128;
	for (size_t i = 0; i < img->len; i++) {
		if ((i >= 1028 && i < 1032) || (i >= slot && i < slot + 68))
			continue;
		if (b[i] != img->buf[i])
			fail_msg("byte %zu changed", i);
	}
	/* blocks == 0 keeps the slot's block count */
	assert_int_equal(erofs_sb_set_device(b, img->len, 0, TAG, 0, NULL, 0), 0);
	assert_int_equal(erofs_sb_get_device_tag(b, img->len, 0, tag, &blocks), 0);
	assert_int_equal(blocks, 6);
	/* slot 1 does not exist */
	assert_int_equal(erofs_sb_set_device(b, img->len, 1, TAG, 0, err, sizeof(err)), -ERANGE);
	assert_non_null(strstr(err, "slot 1"));
	assert_int_equal(erofs_sb_get_device_tag(b, img->len, 1, tag, NULL), -ERANGE);
	free(b);
}

static void test_corrupt_images_refused(void **state)
{
	struct image *img = *state;
	uint8_t *b;
	char err[256];

	/* a flipped byte covered by the checksum */
	b = copy_of(img);
	b[1024 + 64] ^= 1; /* volume_name */
	assert_int_equal(erofs_sb_read(b, img->len, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "checksum"));
	/* and a patch must not "repair" a corrupt image */
	assert_int_equal(erofs_sb_set_device(b, img->len, 0, TAG, 0, err, sizeof(err)), -EINVAL);
	free(b);

	b = copy_of(img);
	b[1024] = 0;
	assert_int_equal(erofs_sb_read(b, img->len, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "magic"));
	free(b);

	b = copy_of(img);
	b[1024 + 12] = 9; /* 512-byte blocks, as with --tar=i */
	assert_int_equal(erofs_sb_read(b, img->len, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "4096-byte blocks"));
	assert_non_null(strstr(err, "blobcachectl publish")); /* the fix, named */
	free(b);

	/* device table outside the image, with a valid checksum */
	b = copy_of(img);
	b[1024 + 88] = 0xff;
	b[1024 + 89] = 0x7f;
	put_le32(b + 1028, erofs_sb_compute_checksum(b));
	assert_int_equal(erofs_sb_read(b, img->len, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "device table"));
	/* device table overlapping the superblock */
	b[1024 + 88] = 8;
	b[1024 + 89] = 0;
	put_le32(b + 1028, erofs_sb_compute_checksum(b));
	assert_int_equal(erofs_sb_read(b, img->len, NULL, err, sizeof(err)), -EINVAL);
	free(b);

	/* truncated */
	assert_int_equal(erofs_sb_read(img->buf, 2048, NULL, err, sizeof(err)), -EINVAL);
	assert_int_equal(erofs_sb_read(img->buf, 0, NULL, NULL, 0), -EINVAL);
}

static void test_file_helpers(void **state)
{
	struct image *img = *state;
	struct erofs_sb_info sb;
	char err[256] = "", tag[EROFS_DEVICE_TAG_LEN + 1];
	size_t len;
	uint8_t *b;

	assert_int_equal(erofs_file_set_device(img->meta, 0, TAG, 3, err, sizeof(err)), 0);
	assert_int_equal(erofs_file_read_sb(img->meta, &sb, err, sizeof(err)), 0);
	b = (uint8_t *)test_read_file(img->meta, &len);
	assert_int_equal(len, img->len); /* the file keeps its size */
	assert_int_equal(erofs_sb_get_device_tag(b, len, 0, tag, NULL), 0);
	assert_string_equal(tag, TAG);
	free(b);
	assert_int_equal(erofs_file_read_sb("/nonexistent/meta", &sb, err, sizeof(err)), -ENOENT);
	/* the data blob is no EROFS image */
	assert_int_equal(erofs_file_read_sb(img->data, &sb, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest crc_tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_crc32c_incremental),
	};
	const struct CMUnitTest image_tests[] = {
		cmocka_unit_test(test_read_mkfs_superblock),
		cmocka_unit_test(test_mkfs_leaves_tag_empty),
		cmocka_unit_test(test_set_device_tag),
		cmocka_unit_test(test_corrupt_images_refused),
		cmocka_unit_test(test_file_helpers),
	};
	int failed = cmocka_run_group_tests_name("crc32c", crc_tests, NULL, NULL);

	failed += cmocka_run_group_tests_name("superblock", image_tests, make_image, remove_image);
	return failed ? 1 : 0;
}
