// SPDX-License-Identifier: GPL-2.0-or-later
/* The space policy: LRU order, watermarks, purge selection, pins, the usage file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/spacepolicy.h"

#define MIB (1ULL << 20)

static size_t owner0[] = { 0 }, owner1[] = { 1 }, owner2[] = { 2 }, owner01[] = { 0, 1 };

static struct space_file file(const char *key, uint64_t bytes, int64_t last_use, size_t *owners,
			      size_t n_owners)
{
	struct space_file f = {
		.volume = (char *)"erofs,v",
		.key = (char *)key,
		.bytes = bytes,
		.last_use = last_use,
		.present = true,
		.owners = owners,
		.n_owners = n_owners,
	};
	return f;
}

static void watermark_arithmetic(void **state)
{
	assert_false(space_over_high(90, 100, 90));
	assert_true(space_over_high(91, 100, 90));
	assert_false(space_over_high(1, 0, 90)); /* unknown volume size: do nothing */
	assert_int_equal(space_bytes_over_low(91, 100, 80), 11);
	assert_int_equal(space_bytes_over_low(70, 100, 80), 0);
	/* a 100 TB volume does not overflow */
	assert_true(space_over_high(95ULL << 40, 100ULL << 40, 90));
	assert_int_equal(space_bytes_over_low(95ULL << 40, 100ULL << 40, 80), 15ULL << 40);
}

static void below_high_nothing_is_culled(void **state)
{
	struct space_file f[] = { file("a", 10 * MIB, 1, NULL, 0) };
	size_t order[1];

	assert_int_equal(space_plan_cull(f, 1, 90 * MIB, 100 * MIB, 90, 50, order), 0);
}

static void above_high_culls_lru_first_down_to_low(void **state)
{
	/* used 95 of 100, high 90, low 70: 25 MiB to free; LRU: c (t=1), a (t=2), d (t=3) */
	struct space_file f[] = {
		file("a", 10 * MIB, 2, NULL, 0),
		file("b", 10 * MIB, 9, NULL, 0),
		file("c", 10 * MIB, 1, NULL, 0),
		file("d", 10 * MIB, 3, NULL, 0),
	};
	size_t order[4];
	size_t n = space_plan_cull(f, 4, 95 * MIB, 100 * MIB, 90, 70, order);

	assert_int_equal(n, 3);
	assert_string_equal(f[order[0]].key, "c");
	assert_string_equal(f[order[1]].key, "a");
	assert_string_equal(f[order[2]].key, "d");
}

static void pinned_in_use_and_absent_files_are_never_culled(void **state)
{
	struct space_file f[] = {
		file("pinned", 50 * MIB, 1, NULL, 0),
		file("inuse", 50 * MIB, 2, NULL, 0),
		file("gone", 50 * MIB, 3, NULL, 0),
		file("ok", 5 * MIB, 4, NULL, 0),
	};
	size_t order[4];
	size_t n;

	f[0].pinned = true;
	f[1].in_use = 1;
	f[2].present = false;
	n = space_plan_cull(f, 4, 99 * MIB, 100 * MIB, 90, 10, order);
	assert_int_equal(n, 1); /* only "ok", even though low is not reached */
	assert_string_equal(f[order[0]].key, "ok");
}

static void pins_propagate_to_shared_files(void **state)
{
	struct space_model m[] = { { .name = "pinned", .pinned = true }, { .name = "other" } };
	struct space_file f[] = {
		file("shared", MIB, 1, owner01, 2),
		file("own", MIB, 2, owner1, 1),
	};

	space_propagate(f, 2, m, 2);
	assert_true(f[0].pinned);
	assert_false(f[1].pinned);
	assert_int_equal(m[1].last_use, 2);
	assert_int_equal(m[0].last_use, 1);
}

static void in_use_file_makes_its_models_busy(void **state)
{
	struct space_model m[] = { { .name = "a" }, { .name = "b" }, { .name = "c", .in_use = 1 } };
	struct space_file f[] = { file("x", MIB, 1, owner01, 2), file("y", MIB, 1, owner2, 1) };

	f[0].in_use = 1;
	space_propagate(f, 2, m, 3);
	assert_true(m[0].busy);
	assert_true(m[1].busy);
	assert_true(m[2].busy); /* a warm in progress */
}

static void purge_selects_exactly_the_models_past_their_age(void **state)
{
	/* now 1000, age 100: old (t=800) goes, recent (t=950) stays, pinned old stays,
	 * busy old stays, a blob shared by old and recent stays. */
	struct space_model m[] = {
		{ .name = "old" },
		{ .name = "recent" },
		{ .name = "pinned", .pinned = true },
		{ .name = "busy" },
	};
	static size_t o3[] = { 3 }, o2[] = { 2 };
	struct space_file f[] = {
		file("old-meta", MIB, 800, owner0, 1),	  file("shared", MIB, 800, owner01, 2),
		file("recent-meta", MIB, 950, owner1, 1), file("pinned-meta", MIB, 10, o2, 1),
		file("busy-meta", MIB, 10, o3, 1),	  file("orphan-old", MIB, 10, NULL, 0),
		file("orphan-new", MIB, 990, NULL, 0),
	};
	size_t order[7];
	size_t n;

	f[4].in_use = 1;
	space_propagate(f, 7, m, 4);
	assert_true(space_model_purgeable(&m[0], 1000, 100));
	assert_false(space_model_purgeable(&m[1], 1000, 100));
	assert_false(space_model_purgeable(&m[2], 1000, 100));
	assert_false(space_model_purgeable(&m[3], 1000, 100));
	n = space_plan_purge(f, 7, m, 4, 1000, 100, order);
	assert_int_equal(n, 2);
	assert_string_equal(f[order[0]].key, "orphan-old");
	assert_string_equal(f[order[1]].key, "old-meta");
}

static void a_model_never_used_is_not_purged(void **state)
{
	struct space_model m = { .name = "new" };

	assert_false(space_model_purgeable(&m, 1000, 1));
}

static void state_round_trip(void **state)
{
	struct space_state st = { 0 }, back = { 0 };
	unsigned bad, first;
	char *text, *again;

	assert_int_equal(space_state_add_record(&st, "erofs,m1", "m1", 1700000000123LL), 0);
	assert_int_equal(space_state_add_record(&st, "erofs,dom", "abcd", 42), 0);
	assert_int_equal(space_state_add_pin(&st, "m1"), 0);
	assert_int_equal(space_state_add_pin(&st, "m1"), 0); /* once */
	text = space_state_format(&st);
	assert_non_null(text);
	assert_int_equal(space_state_parse(text, &back, &bad, &first), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(back.n_records, 2);
	assert_int_equal(back.n_pins, 1);
	assert_string_equal(back.pins[0], "m1");
	assert_string_equal(back.records[0].volume, "erofs,m1");
	assert_int_equal(back.records[0].last_use, 1700000000123LL);
	assert_string_equal(back.records[1].key, "abcd");
	again = space_state_format(&back);
	assert_string_equal(text, again);
	free(text);
	free(again);
	space_state_free(&st);
	space_state_free(&back);
}

static void corrupt_lines_are_skipped_and_counted(void **state)
{
	const char *text = "# header\n"
			   "use 5 erofs,a a\n"
			   "use notanumber erofs,b b\n"
			   "garbage\n"
			   "\n"
			   "pin\n"
			   "use 7 erofs,c c extra\n"
			   "use -3 erofs,d d\n"
			   "use 9 erofs,e ../etc\n"
			   "pin good\n"
			   "use 6 erofs,f f"; /* no final newline: still a line */
	struct space_state st = { 0 };
	unsigned bad, first;

	assert_int_equal(space_state_parse(text, &st, &bad, &first), 0);
	assert_int_equal(bad, 6);
	assert_int_equal(first, 3);
	assert_int_equal(st.n_records, 2);
	assert_string_equal(st.records[0].key, "a");
	assert_string_equal(st.records[1].key, "f");
	assert_int_equal(st.n_pins, 1);
	assert_string_equal(st.pins[0], "good");
	space_state_free(&st);
}

static void binary_garbage_does_not_crash(void **state)
{
	char text[512];
	struct space_state st = { 0 };
	unsigned bad, first;

	for (size_t i = 0; i < sizeof(text) - 1; i++)
		text[i] = (char)((i * 7919 + 13) % 255 + 1);
	text[sizeof(text) - 1] = '\0';
	assert_int_equal(space_state_parse(text, &st, &bad, &first), 0);
	assert_true(bad > 0);
	space_state_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(watermark_arithmetic),
		cmocka_unit_test(below_high_nothing_is_culled),
		cmocka_unit_test(above_high_culls_lru_first_down_to_low),
		cmocka_unit_test(pinned_in_use_and_absent_files_are_never_culled),
		cmocka_unit_test(pins_propagate_to_shared_files),
		cmocka_unit_test(in_use_file_makes_its_models_busy),
		cmocka_unit_test(purge_selects_exactly_the_models_past_their_age),
		cmocka_unit_test(a_model_never_used_is_not_purged),
		cmocka_unit_test(state_round_trip),
		cmocka_unit_test(corrupt_lines_are_skipped_and_counted),
		cmocka_unit_test(binary_garbage_does_not_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
