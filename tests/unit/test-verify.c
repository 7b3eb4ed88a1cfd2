// SPDX-License-Identifier: GPL-2.0-or-later
/* verify_range/verify_whole stand between the origin and the kernel: every corrupted chunk must
 * be caught (reliability C3), every range that does not line up with the digests refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "verify.h"

#define CHUNK 4096ULL
#define SIZE  (3 * CHUNK + 1000) /* four digest chunks, the last one 1000 bytes */

struct fixture {
	struct catalogue_blob blob;
	uint8_t *data;
};

static void sha256(const void *buf, size_t len, uint8_t *md)
{
	unsigned int md_len = 0;

	assert_int_equal(EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL), 1);
	assert_int_equal(md_len, 32);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct catalogue_blob *b = &f->blob;

	f->data = malloc(SIZE);
	for (size_t i = 0; i < SIZE; i++)
		f->data[i] = (uint8_t)(i * 31 + i / 4096);
	b->size = SIZE;
	b->role = BLOB_ROLE_DATA;
	b->digest_chunk_size = CHUNK;
	b->n_chunk_digests = 4;
	b->chunk_digests = calloc(4, sizeof(*b->chunk_digests));
	for (size_t i = 0; i < 4; i++) {
		uint64_t off = i * CHUNK, len = SIZE - off < CHUNK ? SIZE - off : CHUNK;
		sha256(f->data + off, len, b->chunk_digests[i]);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	catalogue_blob_release(&f->blob);
	free(f->data);
	free(f);
	return 0;
}

static void test_good_ranges(void **state)
{
	struct fixture *f = *state;
	uint64_t bad = 99;

	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, &bad), 0); /* whole blob */
	assert_int_equal(verify_range(&f->blob, 0, f->data, CHUNK, &bad), 0);
	assert_int_equal(verify_range(&f->blob, CHUNK, f->data + CHUNK, 2 * CHUNK, &bad), 0);
	assert_int_equal(bad, 99); /* untouched on success */
	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, NULL), 0);
}

static void test_range_at_end_of_blob(void **state)
{
	struct fixture *f = *state;

	/* the short last chunk alone, and ending at the blob's end from an earlier chunk */
	assert_int_equal(verify_range(&f->blob, 3 * CHUNK, f->data + 3 * CHUNK, 1000, NULL), 0);
	assert_int_equal(verify_range(&f->blob, CHUNK, f->data + CHUNK, SIZE - CHUNK, NULL), 0);
	/* the last chunk padded to a full chunk (as the cache file is) is not the blob */
	assert_int_equal(verify_range(&f->blob, 3 * CHUNK, f->data, CHUNK, NULL), -EINVAL);
	/* nor is the last chunk cut short */
	assert_int_equal(verify_range(&f->blob, 3 * CHUNK, f->data + 3 * CHUNK, 999, NULL),
			 -EINVAL);
}

static void test_flipped_bit_in_each_chunk_caught(void **state)
{
	struct fixture *f = *state;
	/* first byte of the first chunk, middle of a middle chunk, last byte of the blob */
	static const uint64_t where[] = { 0, CHUNK + CHUNK / 2, 2 * CHUNK + 7, SIZE - 1 };
	static const uint64_t chunk_of[] = { 0, 1, 2, 3 };

	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		for (unsigned bit = 0; bit < 8; bit += 7) {
			uint64_t bad = 99;

			f->data[where[i]] ^= (uint8_t)(1u << bit);
			assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, &bad), -EBADMSG);
			if (bad != chunk_of[i])
				fail_msg("flip at byte %llu: expected bad chunk %llu, got %llu",
					 (unsigned long long)where[i],
					 (unsigned long long)chunk_of[i], (unsigned long long)bad);
			/* also caught by a range holding that chunk alone */
			uint64_t off = chunk_of[i] * CHUNK;
			uint64_t len = SIZE - off < CHUNK ? SIZE - off : CHUNK;
			assert_int_equal(verify_range(&f->blob, off, f->data + off, len, &bad),
					 -EBADMSG);
			assert_int_equal(bad, chunk_of[i]);
			f->data[where[i]] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, NULL), 0);
}

static void test_first_mismatch_reported(void **state)
{
	struct fixture *f = *state;
	uint64_t bad = 99;

	f->data[CHUNK + 1] ^= 1;
	f->data[3 * CHUNK + 1] ^= 1;
	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, &bad), -EBADMSG);
	assert_int_equal(bad, 1);
	f->data[CHUNK + 1] ^= 1;
	f->data[3 * CHUNK + 1] ^= 1;
}

static void test_misaligned_ranges_refused(void **state)
{
	struct fixture *f = *state;
	uint64_t bad = 99;

	assert_int_equal(verify_range(&f->blob, 1, f->data + 1, CHUNK, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, CHUNK / 2, f->data, CHUNK, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, f->data, CHUNK - 1, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, f->data, CHUNK + 1, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, f->data, 0, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, NULL, CHUNK, &bad), -EINVAL);
	/* beyond the blob */
	assert_int_equal(verify_range(&f->blob, 4 * CHUNK, f->data, CHUNK, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE + 1, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 3 * CHUNK, f->data, CHUNK, &bad), -EINVAL);
	assert_int_equal(verify_range(&f->blob, UINT64_MAX - CHUNK + 1, f->data, CHUNK, &bad),
			 -EINVAL);
	assert_int_equal(bad, 99);
	assert_int_equal(verify_range(NULL, 0, f->data, CHUNK, &bad), -EINVAL);
}

static void test_digests_not_covering_range_refused(void **state)
{
	struct fixture *f = *state;

	f->blob.n_chunk_digests = 3; /* inconsistent blob: never read past the array */
	assert_int_equal(verify_range(&f->blob, 0, f->data, SIZE, NULL), -EINVAL);
	assert_int_equal(verify_range(&f->blob, 0, f->data, 3 * CHUNK, NULL), 0);
	f->blob.n_chunk_digests = 4;
}

static void test_blob_without_digests(void **state)
{
	struct fixture *f = *state;
	struct catalogue_blob none = { .size = SIZE, .role = BLOB_ROLE_META };

	assert_int_equal(verify_range(&none, 0, f->data, SIZE, NULL), -ENODATA);
	none.digest_chunk_size = CHUNK; /* size but no digests */
	assert_int_equal(verify_range(&none, 0, f->data, SIZE, NULL), -ENODATA);
}

static void test_blob_copy_is_deep(void **state)
{
	struct fixture *f = *state;
	struct catalogue_blob copy;

	assert_int_equal(catalogue_blob_copy(&copy, &f->blob), 0);
	assert_ptr_not_equal(copy.chunk_digests, f->blob.chunk_digests);
	assert_int_equal(copy.n_chunk_digests, 4);
	assert_memory_equal(copy.chunk_digests, f->blob.chunk_digests, 4 * 32);
	/* the catalogue's copy can go away (reload) and the copy still verifies */
	memset(f->blob.chunk_digests, 0, 4 * 32);
	assert_int_equal(verify_range(&copy, 0, f->data, SIZE, NULL), 0);
	catalogue_blob_release(&copy);
	assert_null(copy.chunk_digests);
	assert_int_equal(copy.n_chunk_digests, 0);
	catalogue_blob_release(&copy); /* twice is fine */
	catalogue_blob_release(NULL);
}

static void test_whole(void **state)
{
	/* sha256("abc") and sha256("") */
	static const char abc[] =
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char empty[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	char flipped[] = "abc";

	(void)state;
	assert_int_equal(verify_whole(abc, "abc", 3), 0);
	assert_int_equal(verify_whole(empty, NULL, 0), 0);
	flipped[1] ^= 0x10;
	assert_int_equal(verify_whole(abc, flipped, 3), -EBADMSG);
	assert_int_equal(verify_whole(abc, "abc", 2), -EBADMSG);
	assert_int_equal(verify_whole(empty, "abc", 3), -EBADMSG);
	/* not a digest: upper case, short, NULL */
	assert_int_equal(
		verify_whole("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
			     "abc", 3),
		-EINVAL);
	assert_int_equal(verify_whole("ba7816bf", "abc", 3), -EINVAL);
	assert_int_equal(verify_whole(NULL, "abc", 3), -EINVAL);
	assert_int_equal(verify_whole(abc, NULL, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_at_end_of_blob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_bit_in_each_chunk_caught, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_first_mismatch_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misaligned_ranges_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_digests_not_covering_range_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_blob_without_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blob_copy_is_deep, setup, teardown),
		cmocka_unit_test(test_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
