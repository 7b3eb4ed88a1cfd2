// SPDX-License-Identifier: GPL-2.0-or-later
/* Chunk planning: which whole chunks cover a READ, and how each chunk is clipped and padded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fill.h"
#include "core/loop.h"

#define MiB (1ULL << 20)

static void read_inside_one_chunk_plans_that_chunk(void **state)
{
	uint64_t first, last;

	assert_int_equal(fill_plan(10 * MiB, MiB, 4096, 8192, &first, &last), 0);
	assert_int_equal(first, 0);
	assert_int_equal(last, 0);
}

static void read_across_a_boundary_plans_both_chunks(void **state)
{
	uint64_t first, last;

	assert_int_equal(fill_plan(10 * MiB, MiB, MiB - 4096, 8192, &first, &last), 0);
	assert_int_equal(first, 0);
	assert_int_equal(last, 1);
	assert_int_equal(fill_plan(10 * MiB, MiB, 2 * MiB, 3 * MiB, &first, &last), 0);
	assert_int_equal(first, 2);
	assert_int_equal(last, 4);
}

static void read_of_the_padded_tail_is_allowed_beyond_it_is_not(void **state)
{
	uint64_t first, last, size = 3 * MiB + 100; /* cache file is sized to 3 MiB + 4096 */

	assert_int_equal(fill_plan(size, MiB, 3 * MiB, 4096, &first, &last), 0);
	assert_int_equal(first, 3);
	assert_int_equal(last, 3);
	assert_int_equal(fill_plan(size, MiB, 3 * MiB, 8192, &first, &last), -EINVAL);
	assert_int_equal(fill_plan(size, MiB, 4 * MiB, 4096, &first, &last), -EINVAL);
	assert_int_equal(fill_plan(size, MiB, 0, 0, &first, &last), -EINVAL);
	assert_int_equal(fill_plan(size, MiB, UINT64_MAX - 10, 4096, &first, &last), -EINVAL);
}

static void last_chunk_is_clipped_and_padded_to_a_page(void **state)
{
	uint64_t start, end, data;
	uint64_t size = 3 * MiB + 100;

	assert_true(fill_chunk_extent(size, MiB, 0, &start, &end, &data));
	assert_int_equal(start, 0);
	assert_int_equal(end, MiB);
	assert_int_equal(data, MiB);
	assert_true(fill_chunk_extent(size, MiB, 3, &start, &end, &data));
	assert_int_equal(start, 3 * MiB);
	assert_int_equal(end, 3 * MiB + 4096); /* page-aligned write length */
	assert_int_equal(data, 100);	       /* bytes that exist on the origin */
	assert_false(fill_chunk_extent(size, MiB, 4, &start, &end, &data));
	assert_false(fill_chunk_extent(size, MiB, UINT64_MAX, &start, &end, &data));
}

static void page_multiple_blob_needs_no_padding(void **state)
{
	uint64_t start, end, data;

	assert_true(fill_chunk_extent(8192, MiB, 0, &start, &end, &data));
	assert_int_equal(end, 8192);
	assert_int_equal(data, 8192);
}

static void fetch_unit_is_raised_to_the_digest_chunk(void **state)
{
	struct catalogue_blob b = { .size = 10 * MiB, .digest_chunk_size = 4 * MiB };

	assert_int_equal(fill_unit(MiB, &b), 4 * MiB);
	b.digest_chunk_size = 64 << 10;
	assert_int_equal(fill_unit(MiB, &b), MiB);
	b.digest_chunk_size = 0; /* no digests (small meta blob) */
	assert_int_equal(fill_unit(MiB, &b), MiB);
}

static void readahead_waits_for_a_second_request_and_follows_a_sequential_reader(void **state)
{
	uint64_t from, to;

	/* A first READ is no evidence of a sequential reader, at chunk 0 or elsewhere (a reader
	 * of one small file must cost one chunk). */
	assert_false(fill_readahead_plan(0, UINT64_MAX, 0, 8, 100, &from, &to));
	assert_false(fill_readahead_plan(40, UINT64_MAX, 0, 8, 100, &from, &to));
	/* The second READ follows on (same chunk): sequential, prefetch chunks 1..8. */
	assert_true(fill_readahead_plan(0, 0, 1, 8, 100, &from, &to));
	assert_int_equal(from, 1);
	assert_int_equal(to, 8);
	/* ... or the next chunk. */
	assert_true(fill_readahead_plan(1, 0, 1, 8, 100, &from, &to));
	assert_int_equal(from, 2);
	assert_int_equal(to, 9);
	/* The reader reaches chunk 9 (1..8 were prefetched, so no READs came for them). */
	assert_true(fill_readahead_plan(9, 0, 9, 8, 100, &from, &to));
	assert_int_equal(from, 10);
	assert_int_equal(to, 17);
	/* A READ inside the window (a prefetched chunk still in flight) extends it. */
	assert_true(fill_readahead_plan(11, 9, 18, 8, 100, &from, &to));
	assert_int_equal(from, 18);
	assert_int_equal(to, 19);
}

static void readahead_stops_at_the_blob_end_and_ignores_random_access(void **state)
{
	uint64_t from, to;

	assert_true(fill_readahead_plan(95, 94, 95, 8, 100, &from, &to));
	assert_int_equal(from, 96);
	assert_int_equal(to, 99);
	assert_false(fill_readahead_plan(99, 98, 100, 8, 100, &from, &to));
	/* A jump backwards or far ahead is not sequential. */
	assert_false(fill_readahead_plan(3, 50, 60, 8, 100, &from, &to));
	assert_false(fill_readahead_plan(70, 50, 60, 8, 100, &from, &to));
	/* Off. */
	assert_false(fill_readahead_plan(0, UINT64_MAX, 0, 0, 100, &from, &to));
}

/* Presence in a sparse cache file (SEEK_DATA, then SEEK_HOLE): whole chunks written are
 * present; holes, and a chunk written in part, are not, in whatever order they are asked. */
static void presence_follows_the_holes_of_the_cache_file(void **state)
{
	static const struct fill_options opts = {
		.chunk_size = MiB,
		.request_timeout_ms = 1000,
		.max_inflight = 4,
		.threads = 1,
	};
	struct catalogue_blob blob = { .size = 8 * MiB, .role = BLOB_ROLE_DATA };
	char path[] = "/var/tmp/test-fill-plan.XXXXXX";
	struct fill_sink *s = NULL;
	struct fill *f = NULL;
	struct loop *loop = NULL;
	char *buf = calloc(1, MiB);
	int fd = mkstemp(path);

	assert_non_null(buf);
	assert_true(fd >= 0);
	unlink(path);
	memset(buf, 'x', MiB);
	memset(blob.digest, 'a', DIGEST_HEX_LEN);
	assert_int_equal(ftruncate(fd, (off_t)blob.size), 0);
	/* Chunks 0, 3 and 4 whole, half of chunk 6; holes elsewhere. */
	assert_int_equal(pwrite(fd, buf, MiB, 0), (ssize_t)MiB);
	assert_int_equal(pwrite(fd, buf, MiB, 3 * MiB), (ssize_t)MiB);
	assert_int_equal(pwrite(fd, buf, MiB, 4 * MiB), (ssize_t)MiB);
	assert_int_equal(pwrite(fd, buf, MiB / 2, 6 * MiB), (ssize_t)(MiB / 2));
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(fill_new(loop, NULL, &opts, &f), 0);
	assert_int_equal(fill_sink_new(f, &blob, fd, &s), 0);

	assert_false(fill_range_cached(s, MiB, 4096)); /* learns that chunks 1 and 2 are holes */
	assert_false(fill_range_cached(s, 2 * MiB, MiB));
	assert_true(fill_range_cached(s, 3 * MiB, 2 * MiB));
	assert_true(fill_range_cached(s, 0, MiB));
	assert_false(fill_range_cached(s, 0, 2 * MiB));
	assert_false(fill_range_cached(s, 6 * MiB, 4096)); /* written in part */
	assert_false(fill_range_cached(s, 7 * MiB, MiB));  /* learns that 5 and 7 are holes */
	assert_false(fill_range_cached(s, 5 * MiB, 4096));
	assert_true(fill_range_cached(s, 4 * MiB + 4096, 4096));

	fill_sink_unref(s);
	fill_free(f);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(read_inside_one_chunk_plans_that_chunk),
		cmocka_unit_test(read_across_a_boundary_plans_both_chunks),
		cmocka_unit_test(read_of_the_padded_tail_is_allowed_beyond_it_is_not),
		cmocka_unit_test(last_chunk_is_clipped_and_padded_to_a_page),
		cmocka_unit_test(page_multiple_blob_needs_no_padding),
		cmocka_unit_test(fetch_unit_is_raised_to_the_digest_chunk),
		cmocka_unit_test(
			readahead_waits_for_a_second_request_and_follows_a_sequential_reader),
		cmocka_unit_test(readahead_stops_at_the_blob_end_and_ignores_random_access),
		cmocka_unit_test(presence_follows_the_holes_of_the_cache_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
