// SPDX-License-Identifier: GPL-2.0-or-later
/* Chunk presence maps: a chunk counts only once marked, marks survive a reopen, and a map that
 * does not match the blob (or holds anything but the "cached" byte) counts as absent. Group
 * commit: a written chunk is readable at once, in the map file only after a commit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/chunkmap.h"
#include "macros.h"
#include "test-helpers.h"

#define MiB (1ULL << 20)

static char *dir;

static int setup(void **state)
{
	dir = test_make_temp_dir();
	return 0;
}

static int teardown(void **state)
{
	test_remove_tree(dir);
	free(dir);
	return 0;
}

static char *map_path(const char *name)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void chunk_count_covers_the_padded_blob(void **state)
{
	assert_int_equal(chunkmap_chunks(10 * MiB, MiB), 10);
	assert_int_equal(chunkmap_chunks(10 * MiB + 1, MiB), 11);
	assert_int_equal(chunkmap_chunks(100, MiB), 1);
	assert_int_equal(chunkmap_chunks(4096, 4096), 1);
	assert_int_equal(chunkmap_chunks(4097, 4096), 2);
	assert_int_equal(chunkmap_chunks(0, MiB), 0);
	assert_int_equal(chunkmap_chunks(MiB, 0), 0);
}

static void header_matches_only_its_own_blob_size_and_unit(void **state)
{
	uint8_t h[CHUNKMAP_HEADER_SIZE];

	chunkmap_header_encode(5 * MiB, MiB, h);
	assert_true(chunkmap_header_matches(h, sizeof(h), 5 * MiB, MiB));
	assert_false(chunkmap_header_matches(h, sizeof(h), 5 * MiB, 2 * MiB));
	assert_false(chunkmap_header_matches(h, sizeof(h), 5 * MiB + 1, MiB));
	assert_false(chunkmap_header_matches(h, sizeof(h) - 1, 5 * MiB, MiB));
	h[0] ^= 1;
	assert_false(chunkmap_header_matches(h, sizeof(h), 5 * MiB, MiB));
	assert_int_equal(chunkmap_byte_offset(0), CHUNKMAP_HEADER_SIZE);
	assert_int_equal(chunkmap_byte_offset(7), CHUNKMAP_HEADER_SIZE + 7);
}

static void new_map_is_empty_and_marks_survive_a_reopen(void **state)
{
	_cleanup_free_ char *p = map_path("a.map");
	struct chunkmap *m = NULL;

	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_size(m), 10);
	assert_int_equal(chunkmap_count(m), 0);
	for (uint64_t i = 0; i < 10; i++)
		assert_false(chunkmap_has(m, i));
	assert_int_equal(chunkmap_mark(m, 3), 0);
	assert_int_equal(chunkmap_mark(m, 9), 0);
	assert_int_equal(chunkmap_mark(m, 10), -EINVAL); /* beyond the blob */
	assert_true(chunkmap_has(m, 3));
	assert_false(chunkmap_has(m, 4));
	assert_false(chunkmap_has(m, 10));
	chunkmap_free(m);

	m = NULL;
	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_count(m), 2);
	assert_true(chunkmap_has(m, 3));
	assert_true(chunkmap_has(m, 9));
	assert_false(chunkmap_has(m, 0));
	chunkmap_free(m);
}

static void map_of_another_unit_starts_afresh(void **state)
{
	_cleanup_free_ char *p = map_path("b.map");
	struct chunkmap *m = NULL;

	assert_int_equal(chunkmap_open(p, 8 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_mark(m, 1), 0);
	chunkmap_free(m);
	/* chunk_size changed: chunk 1 of 2 MiB is not chunk 1 of 1 MiB. */
	m = NULL;
	assert_int_equal(chunkmap_open(p, 8 * MiB, 2 * MiB, &m), 0);
	assert_int_equal(chunkmap_size(m), 4);
	assert_int_equal(chunkmap_count(m), 0);
	chunkmap_free(m);
}

static void stray_bytes_and_a_short_file_count_as_absent(void **state)
{
	_cleanup_free_ char *p = map_path("c.map");
	struct chunkmap *m = NULL;
	uint8_t two = 2;
	int fd;

	assert_int_equal(chunkmap_open(p, 4 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_mark(m, 0), 0);
	assert_int_equal(chunkmap_mark(m, 3), 0);
	chunkmap_free(m);
	fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, &two, 1, (off_t)chunkmap_byte_offset(0)), 1);
	/* A map cut short (the last byte lost): chunk 3 is absent, not garbage. */
	assert_int_equal(ftruncate(fd, (off_t)chunkmap_byte_offset(3)), 0);
	close(fd);
	m = NULL;
	assert_int_equal(chunkmap_open(p, 4 * MiB, MiB, &m), 0);
	assert_false(chunkmap_has(m, 0));
	assert_false(chunkmap_has(m, 3));
	assert_int_equal(chunkmap_count(m), 0);
	chunkmap_free(m);
}

static void garbage_file_is_replaced_by_an_empty_map(void **state)
{
	_cleanup_free_ char *p = map_path("d.map");
	struct chunkmap *m = NULL;
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char junk[200];

	memset(junk, 1, sizeof(junk));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	assert_int_equal(chunkmap_open(p, 4 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_count(m), 0);
	chunkmap_free(m);
	assert_int_equal(chunkmap_open(p, 0, MiB, &m), -EINVAL);
}

static void cached_bytes_count_marked_chunks_capped_at_the_padded_blob(void **state)
{
	uint8_t buf[CHUNKMAP_HEADER_SIZE + 16];
	uint64_t size = 0;

	/* 3 MiB + 100 bytes in 1 MiB chunks: 4 chunks, the last one 4096 bytes of the file. */
	chunkmap_header_encode(3 * MiB + 100, MiB, buf);
	memset(buf + CHUNKMAP_HEADER_SIZE, 0, 16);
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE + 4, &size), 0);
	assert_int_equal(size, 3 * MiB + 100);
	buf[CHUNKMAP_HEADER_SIZE + 1] = 1;
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE + 4, &size), MiB);
	buf[CHUNKMAP_HEADER_SIZE + 0] = 1;
	buf[CHUNKMAP_HEADER_SIZE + 2] = 1;
	buf[CHUNKMAP_HEADER_SIZE + 3] = 1;
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE + 4, &size),
			 3 * MiB + 4096);
	/* Bytes past the last chunk and stray values are not chunks. */
	buf[CHUNKMAP_HEADER_SIZE + 4] = 1;
	buf[CHUNKMAP_HEADER_SIZE + 1] = 2;
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE + 8, &size),
			 2 * MiB + 4096);
	/* A map cut short counts what it has. */
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE + 1, &size), MiB);
}

static void cached_bytes_of_what_is_not_a_map_are_zero(void **state)
{
	uint8_t buf[CHUNKMAP_HEADER_SIZE + 4];
	uint64_t size = 1, n_chunks = 99;

	memset(buf, 1, sizeof(buf));
	assert_int_equal(chunkmap_cached_bytes(buf, sizeof(buf), &size), 0);
	assert_int_equal(size, 0);
	chunkmap_header_encode(4 * MiB, MiB, buf);
	assert_int_equal(chunkmap_cached_bytes(buf, CHUNKMAP_HEADER_SIZE - 1, &size), 0);
	memcpy(buf + 24, &n_chunks, 8); /* a chunk count that does not fit the blob */
	assert_int_equal(chunkmap_cached_bytes(buf, sizeof(buf), &size), 0);
}

static void file_cached_reads_a_map_as_chunkmap_open_wrote_it(void **state)
{
	_cleanup_free_ char *p = map_path("e.map");
	_cleanup_free_ char *missing = map_path("missing.map");
	struct chunkmap *m = NULL;
	uint64_t cached = 1;

	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, 0);
	assert_int_equal(chunkmap_mark(m, 2), 0);
	assert_int_equal(chunkmap_mark(m, 5), 0);
	/* While the map is open (a device serves the blob) the file already says so. */
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, 2 * MiB);
	chunkmap_free(m);
	assert_int_equal(chunkmap_file_cached(missing, &cached), -ENOENT);
}

/* A data file to fdatasync: the cache file of the group commit. */
static int data_file(const char *name)
{
	_cleanup_free_ char *p = map_path(name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	return fd;
}

static void written_chunks_are_readable_at_once_and_persisted_only_by_a_commit(void **state)
{
	_cleanup_free_ char *p = map_path("g.map");
	_cleanup_close_ int fd = data_file("g");
	struct chunkmap *m = NULL, *m2 = NULL;
	uint64_t since = 0, cached = 1;

	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_pending(m, &since), 0);
	assert_int_equal(chunkmap_written(m, 5, 1000), 1);
	assert_int_equal(chunkmap_written(m, 6, 1200), 2);
	assert_int_equal(chunkmap_written(m, 2, 1300), 3);
	assert_int_equal(chunkmap_written(m, 6, 1400), 3); /* again: counted once */
	assert_int_equal(chunkmap_written(m, 10, 1400), -EINVAL);
	assert_int_equal(chunkmap_pending(m, &since), 3);
	assert_int_equal(since, 1000); /* the oldest */
	assert_true(chunkmap_has(m, 5));
	assert_true(chunkmap_has(m, 6));
	assert_true(chunkmap_has(m, 2));
	assert_int_equal(chunkmap_count(m), 3);
	/* Not durable yet: the map file does not claim them (a kill -9 now refetches them). */
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, 0);
	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m2), 0);
	assert_int_equal(chunkmap_count(m2), 0);
	chunkmap_free(m2);

	assert_int_equal(chunkmap_commit(m, fd), 0);
	assert_int_equal(chunkmap_pending(m, NULL), 0);
	assert_int_equal(chunkmap_commit(m, fd), 0); /* nothing waits: nothing to do */
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, 3 * MiB);
	/* Written again once durable: nothing new waits. */
	assert_int_equal(chunkmap_written(m, 5, 2000), 0);
	assert_int_equal(chunkmap_written(m, 7, 2100), 1);
	assert_int_equal(chunkmap_pending(m, &since), 1);
	assert_int_equal(since, 2100);
	chunkmap_free(m);

	m = NULL;
	assert_int_equal(chunkmap_open(p, 10 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_count(m), 3); /* 7 never committed */
	assert_true(chunkmap_has(m, 2) && chunkmap_has(m, 5) && chunkmap_has(m, 6));
	assert_false(chunkmap_has(m, 7));
	chunkmap_free(m);
}

static void a_full_batch_says_enospc_until_committed(void **state)
{
	_cleanup_free_ char *p = map_path("h.map");
	_cleanup_close_ int fd = data_file("h");
	uint64_t n = CHUNKMAP_PENDING_MAX + 10, cached = 0, extra = 0;
	struct chunkmap *m = NULL;

	assert_int_equal(chunkmap_open(p, n * MiB, MiB, &m), 0);
	/* Out of order, with gaps: every one is committed all the same. */
	for (uint64_t i = 0; i < CHUNKMAP_PENDING_MAX; i++)
		assert_int_equal(chunkmap_written(m, (i * 7) % n, 1), (int)i + 1);
	while (chunkmap_has(m, extra))
		extra++;
	assert_int_equal(chunkmap_written(m, extra, 1), -ENOSPC);
	assert_false(chunkmap_has(m, extra)); /* refused: not readable either */
	assert_int_equal(chunkmap_commit(m, fd), 0);
	assert_int_equal(chunkmap_written(m, extra, 1), 1);
	assert_int_equal(chunkmap_commit(m, fd), 0);
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, (CHUNKMAP_PENDING_MAX + 1) * MiB);
	chunkmap_free(m);
}

static void a_failed_fdatasync_leaves_the_batch_absent(void **state)
{
	_cleanup_free_ char *p = map_path("i.map");
	struct chunkmap *m = NULL;
	uint64_t cached = 1;

	assert_int_equal(chunkmap_open(p, 4 * MiB, MiB, &m), 0);
	assert_int_equal(chunkmap_written(m, 1, 1), 1);
	assert_int_equal(chunkmap_written(m, 3, 1), 2);
	/* The data's durability is unknown: neither readable nor in the map; fetched again. */
	assert_int_equal(chunkmap_commit(m, -1), -EBADF);
	assert_false(chunkmap_has(m, 1));
	assert_false(chunkmap_has(m, 3));
	assert_int_equal(chunkmap_pending(m, NULL), 0);
	assert_int_equal(chunkmap_file_cached(p, &cached), 0);
	assert_int_equal(cached, 0);
	/* Written again, it waits afresh. */
	assert_int_equal(chunkmap_written(m, 1, 2), 1);
	chunkmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(chunk_count_covers_the_padded_blob),
		cmocka_unit_test(header_matches_only_its_own_blob_size_and_unit),
		cmocka_unit_test(new_map_is_empty_and_marks_survive_a_reopen),
		cmocka_unit_test(map_of_another_unit_starts_afresh),
		cmocka_unit_test(stray_bytes_and_a_short_file_count_as_absent),
		cmocka_unit_test(garbage_file_is_replaced_by_an_empty_map),
		cmocka_unit_test(cached_bytes_count_marked_chunks_capped_at_the_padded_blob),
		cmocka_unit_test(cached_bytes_of_what_is_not_a_map_are_zero),
		cmocka_unit_test(file_cached_reads_a_map_as_chunkmap_open_wrote_it),
		cmocka_unit_test(
			written_chunks_are_readable_at_once_and_persisted_only_by_a_commit),
		cmocka_unit_test(a_full_batch_says_enospc_until_committed),
		cmocka_unit_test(a_failed_fdatasync_leaves_the_batch_absent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
