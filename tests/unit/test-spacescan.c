// SPDX-License-Identifier: GPL-2.0-or-later
/* The cache scan: the walk of cachefiles' store into a list, and applying that list (made while
 * the loop kept working) to the usage records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/spacescan.h"

static struct space_entry *rec(struct space_entry **list, const char *volume, const char *key,
			       int64_t last_use)
{
	struct space_entry *e =
		space_entry_get(list, volume, strlen(volume), key, strlen(key), last_use);

	assert_non_null(e);
	return e;
}

static struct space_entry *find(struct space_entry *list, const char *volume, const char *key)
{
	return space_entry_find(list, volume, strlen(volume), key, strlen(key));
}

static size_t count(const struct space_entry *list)
{
	size_t n = 0;

	for (; list; list = list->next)
		n++;
	return n;
}

static void free_all(struct space_entry **list)
{
	while (*list) {
		struct space_entry *e = *list;
		*list = e->next;
		space_entry_free(e);
	}
}

static void apply_adds_found_files_and_drops_records_of_gone_ones(void **state)
{
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 1 };
	struct space_entry *e;

	/* records loaded from the usage file: "a" still has its file, "gone" not */
	rec(&list, "erofs,m", "a", 100);
	rec(&list, "erofs,m", "gone", 50);
	space_scan_add(&s, "erofs,m", "a", "/c/Ierofs,m/@1a", 4096, 0, 7, false);
	space_scan_add(&s, "erofs,m", "new", "/c/Ierofs,m/@2b", 8192, 0, 9, false);
	assert_false(s.failed);

	/* one added, one dropped */
	assert_int_equal(space_scan_apply(&list, &s), 2);
	assert_int_equal(count(list), 2);
	assert_null(find(list, "erofs,m", "gone"));
	e = find(list, "erofs,m", "a");
	assert_true(e->present);
	assert_int_equal(e->bytes, 4096);
	assert_int_equal(e->last_use, 100); /* the record's, not the mtime */
	assert_string_equal(e->dir, "/c/Ierofs,m/@1a");
	e = find(list, "erofs,m", "new");
	assert_true(e->present);
	assert_int_equal(e->last_use, 9); /* no record: the file's mtime */
	assert_string_equal(e->dir, "/c/Ierofs,m/@2b");
	/* the same key in another volume is another record */
	assert_null(find(list, "erofs,other", "a"));

	/* applied again: nothing changes */
	assert_int_equal(space_scan_apply(&list, &s), 0);
	assert_int_equal(count(list), 2);
	space_scan_free(&s);
	free_all(&list);
}

static void a_file_removed_while_the_walk_ran_stays_removed(void **state)
{
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 5 };
	struct space_entry *culled, *before;

	culled = rec(&list, "v", "culled", 1);
	before = rec(&list, "v", "before", 1);
	/* the walk (seq 5) saw both; "culled" was removed while it ran (at seq 5), "before" was
	 * removed before it was planned (seq 4) and has a file again since */
	space_scan_add(&s, "v", "culled", "/d", 4096, 0, 1, false);
	space_scan_add(&s, "v", "before", "/d", 4096, 0, 1, false);
	culled->removed_scan = 5;
	before->removed_scan = 4;
	space_scan_apply(&list, &s);
	assert_null(find(list, "v", "culled")); /* absent and unused: dropped */
	assert_non_null(find(list, "v", "before"));
	assert_true(find(list, "v", "before")->present);
	space_scan_free(&s);
	free_all(&list);
}

static void records_in_use_or_used_meanwhile_are_kept(void **state)
{
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 3 };
	struct space_entry *open, *closed, *old;

	open = rec(&list, "v", "open", 1);
	open->in_use = 1;
	closed = rec(&list, "v", "closed", 1); /* opened and closed while the walk ran */
	closed->used_scan = 3;
	old = rec(&list, "v", "old", 1); /* last closed before the walk was planned */
	old->used_scan = 2;
	space_scan_apply(&list, &s);
	assert_non_null(find(list, "v", "open"));
	assert_false(find(list, "v", "open")->present);
	assert_non_null(find(list, "v", "closed"));
	assert_false(find(list, "v", "closed")->present);
	assert_null(find(list, "v", "old"));
	/* the next walk does not find "closed" either: now it goes */
	s.seq = 4;
	space_scan_apply(&list, &s);
	assert_null(find(list, "v", "closed"));
	assert_non_null(find(list, "v", "open"));
	space_scan_free(&s);
	free_all(&list);
}

static void listed_files_and_moved_files(void **state)
{
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 1 };
	struct space_entry *e;

	e = rec(&list, "v", "moved", 1);
	e->dir = strdup("/old");
	space_scan_add(&s, "v", "moved", "/new", 4096, 0, 1, false);
	space_scan_add(&s, "ublk", "digest", NULL, 12288, 8192, 1, true);
	space_scan_apply(&list, &s);
	assert_string_equal(find(list, "v", "moved")->dir, "/new");
	e = find(list, "ublk", "digest");
	assert_true(e->present);
	assert_true(e->listed);
	assert_null(e->dir);
	assert_int_equal(e->bytes, 12288);
	assert_int_equal(e->cached, 8192);
	space_scan_free(&s);
	free_all(&list);
}

static void a_failed_scan_changes_nothing(void **state)
{
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 1, .failed = true };

	rec(&list, "v", "a", 1)->present = true;
	rec(&list, "v", "b", 1);
	assert_int_equal(space_scan_apply(&list, &s), 0);
	assert_int_equal(count(list), 2);
	assert_true(find(list, "v", "a")->present);
	/* a failed scan takes no more items */
	space_scan_add(&s, "v", "c", "/d", 1, 0, 1, false);
	assert_int_equal(s.n_items, 0);
	space_scan_free(&s);
	free_all(&list);
}

static void prune_after_a_cull_keeps_what_is_used(void **state)
{
	struct space_entry *list = NULL;
	struct space_entry *e;

	/* after the checks: the cull marked "culled" absent; "kept" present; "open" in use */
	rec(&list, "v", "culled", 1)->present = false;
	rec(&list, "v", "kept", 1)->present = true;
	e = rec(&list, "v", "open", 1);
	e->in_use = 2;
	assert_int_equal(space_entries_prune(&list, 7), 1);
	assert_null(find(list, "v", "culled"));
	assert_non_null(find(list, "v", "kept"));
	assert_non_null(find(list, "v", "open"));
	free_all(&list);
}

/* A store on disk: Ivol/@xx/D<key> files, and things the walk must skip. */
static void walk_of_a_store_and_an_open_object(void **state)
{
	char root[] = "/tmp/test-spacescan.XXXXXX", path[PATH_MAX], store[64];
	struct space_entry *list = NULL;
	struct space_scan s = { .seq = 1 };
	struct space_entry *e, *obj;
	char buf[8192];
	int fd, objfd;

	assert_non_null(mkdtemp(root));
	snprintf(store, sizeof(store), "%s/cache", root);
	assert_int_equal(mkdir(store, 0700), 0);
	snprintf(path, sizeof(path), "%s/Ierofs,m", store);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Ierofs,m/@4a", store);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Ierofs,m/@4a/Dkey1", store);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	fsync(fd);
	close(fd);
	snprintf(path, sizeof(path), "%s/Ierofs,m/@4a/Eother", store); /* not D */
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/Ierofs,m/@4a/Ddir", store); /* not a file */
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Ierofs,m/notfanout", store);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Ierofs,m/notfanout/Dhidden", store);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(path, sizeof(path), "%s/Xnotavolume", store);
	assert_int_equal(mkdir(path, 0700), 0);

	/* an open object whose file is not linked: measured through its fd */
	snprintf(path, sizeof(path), "%s/unlinked", root);
	objfd = open(path, O_CREAT | O_RDWR, 0600);
	assert_true(objfd >= 0);
	assert_int_equal(pwrite(objfd, buf, 4096, 0), 4096);
	unlink(path);
	obj = rec(&list, "erofs,m", "tmp", 1);
	obj->in_use = 1;
	obj->fd = objfd;

	space_scan_add_open(&s, list);
	assert_int_equal(s.n_open, 1);
	close(objfd);  /* the scan has its own */
	obj->fd = 999; /* still "open" for the record: the apply only looks at fd >= 0 */
	space_scan_store(&s, store);
	space_scan_measure_open(&s);
	assert_false(s.failed);
	assert_int_equal(s.n_items, 1);
	assert_string_equal(s.items[0].volume, "erofs,m");
	assert_string_equal(s.items[0].key, "key1");
	snprintf(path, sizeof(path), "%s/Ierofs,m/@4a", store);
	assert_string_equal(s.items[0].dir, path);
	assert_true(s.items[0].bytes >= sizeof(buf));
	assert_true(s.open[0].measured);

	space_scan_apply(&list, &s);
	e = find(list, "erofs,m", "key1");
	assert_non_null(e);
	assert_true(e->present);
	assert_int_equal(find(list, "erofs,m", "tmp")->bytes, 4096);
	assert_false(find(list, "erofs,m", "tmp")->present);
	space_scan_free(&s);
	free_all(&list);

	snprintf(path, sizeof(path), "rm -rf '%s'", root);
	assert_int_equal(system(path), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(apply_adds_found_files_and_drops_records_of_gone_ones),
		cmocka_unit_test(a_file_removed_while_the_walk_ran_stays_removed),
		cmocka_unit_test(records_in_use_or_used_meanwhile_are_kept),
		cmocka_unit_test(listed_files_and_moved_files),
		cmocka_unit_test(a_failed_scan_changes_nothing),
		cmocka_unit_test(prune_after_a_cull_keeps_what_is_used),
		cmocka_unit_test(walk_of_a_store_and_an_open_object),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
