// SPDX-License-Identifier: GPL-2.0-or-later
/* Retained model versions (core/models.h): a re-published model's old version stays servable
 * by digest while it is in use, survives a restart, and is dropped once unused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "core/models.h"
#include "io.h"
#include "test-helpers.h"

#define M1 "1111111111111111111111111111111111111111111111111111111111111111"
#define D1 "2222222222222222222222222222222222222222222222222222222222222222"
#define M2 "3333333333333333333333333333333333333333333333333333333333333333"
#define D2 "4444444444444444444444444444444444444444444444444444444444444444"
#define D3 "8888888888888888888888888888888888888888888888888888888888888888"
#define CD "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"

struct fixture {
	char *dir, catalogue[1024], state[1024];
	const char *in_use_meta; /* what the in-use hook claims */
};

/* Write entry `text` as NAME.model. The daemon notices a change by the directory's mtime: make
 * it move for certain. */
static void put_entry(struct fixture *f, const char *name, const char *text, int n)
{
	struct timespec times[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	static long tick = 1000;
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.model", f->catalogue, name);
	test_write_file(path, text, (size_t)n);
	times[1].tv_sec = tick++;
	times[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, f->catalogue, times, 0), 0);
}

static void put_model(struct fixture *f, const char *name, const char *meta, const char *data)
{
	char text[2048];
	int n = snprintf(text, sizeof(text),
			 "[model]\nname = %s\nmeta = %s\nchunk_size = 1048576\n"
			 "[blob %s]\nsize = 4096\nrole = meta\n"
			 "[blob %s]\nsize = 4096\nrole = data\ndigest_chunk_size = 4096\n"
			 "[chunks %s]\n" CD "\n",
			 name, meta, meta, data, data);

	put_entry(f, name, text, n);
}

/* A model whose data blob is in place: the file `path` beneath the origin. */
static void put_in_place(struct fixture *f, const char *name, const char *meta, const char *data,
			 const char *path)
{
	char text[2048];
	int n = snprintf(text, sizeof(text),
			 "[model]\nname = %s\nmeta = %s\nchunk_size = 1048576\n"
			 "[blob %s]\nsize = 4096\nrole = meta\n"
			 "[blob %s]\nsize = 8192\nrole = data\ndigest_chunk_size = 4096\n"
			 "path = %s\nfile_size = 5000\n[chunks %s]\n" CD "\n" CD "\n",
			 name, meta, meta, data, path, data);

	put_entry(f, name, text, n);
}

static bool hook(void *userdata, const char *name, const char *meta)
{
	struct fixture *f = userdata;

	(void)name;
	return f->in_use_meta && strcmp(f->in_use_meta, meta) == 0;
}

/* An in-place blob is read from where the catalogue has its bytes now: its own path while an
 * entry lists it there; once its model is re-published over a rewritten file, another model's
 * copy of the same bytes; a retained version's path only when no current entry has a copy. */
static void in_place_blob_located(void **state)
{
	struct fixture *f = *state;
	const struct catalogue_blob *b, *own;
	struct catalogue_blob was;
	struct models *m = NULL;

	put_in_place(f, "m", M1, D1, "share/m/x");
	put_in_place(f, "ft", M2, D1, "share/ft/x");
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	models_set_in_use(m, hook, f);
	own = models_resolve(m, "m", 1, NULL);
	assert_non_null(own);
	b = models_resolve(m, D1, strlen(D1), NULL);
	assert_non_null(b);
	was = *b;
	snprintf(was.path, sizeof(was.path), "share/m/x");
	b = models_locate(m, &was);
	assert_non_null(b);
	assert_string_equal(b->path, "share/m/x"); /* its own path, still listed */
	snprintf(was.path, sizeof(was.path), "share/ft/x");
	assert_string_equal(models_locate(m, &was)->path, "share/ft/x");

	/* m re-published: share/m/x now holds other bytes (D2); v1 stays in use. */
	assert_int_equal(models_retain(m, models_find_version(m, "m", M1)), 0);
	f->in_use_meta = M1;
	put_in_place(f, "m", "5555555555555555555555555555555555555555555555555555555555555555", D2,
		     "share/m/x");
	assert_non_null(models_resolve(m, "m", 1, NULL)); /* re-reads the catalogue */
	snprintf(was.path, sizeof(was.path), "share/m/x");
	b = models_locate(m, &was);
	assert_non_null(b);
	assert_string_equal(b->path, "share/ft/x");
	assert_int_equal(b->file_size, 5000);

	/* ft gone too: only the retained v1 of m lists D1, at its old path. */
	{
		char path[4096];
		snprintf(path, sizeof(path), "%s/ft.model", f->catalogue);
		assert_int_equal(unlink(path), 0);
		put_in_place(f, "other", M2, D2, "share/other/y"); /* moves the mtime */
	}
	assert_non_null(models_resolve(m, "m", 1, NULL));
	snprintf(was.path, sizeof(was.path), "share/ft/x");
	b = models_locate(m, &was);
	assert_non_null(b);
	assert_string_equal(b->path, "share/m/x");

	/* Another size is other bytes; a blob nobody lists has no location. */
	was.size = 4096;
	assert_null(models_locate(m, &was));
	models_free(m);
}

/* An in-place blob of digest `data` at `path`, as a sink holds it. */
static struct catalogue_blob in_place_blob(const char *data, const char *path)
{
	struct catalogue_blob b = { .size = 8192 };

	snprintf(b.digest, sizeof(b.digest), "%s", data);
	snprintf(b.path, sizeof(b.path), "%s", path);
	return b;
}

static const char *located_path(struct models *m, const char *data, const char *path)
{
	struct catalogue_blob b = in_place_blob(data, path);
	const struct catalogue_blob *x = models_locate(m, &b);

	return x ? x->path : NULL;
}

/* models_locate answers from an index of digests: it follows every change of the catalogue and
 * of the retained versions, finds each of many digests whatever their order, and finds nothing
 * for a digest nobody lists (below, between and above the listed ones). */
static void locate_index_follows_changes(void **state)
{
	struct fixture *f = *state;
	struct models *m = NULL;
	char meta[65], data[65], name[16], path[64];

	for (unsigned i = 1; i <= 20; i++) { /* digests not in listing order */
		for (int j = 0; j < 32; j++) {
			snprintf(data + 2 * j, 3, "%02x", (i * 151) & 0xff);
			snprintf(meta + 2 * j, 3, "%02x", j < 31 ? 0xee : i);
		}
		snprintf(name, sizeof(name), "n%u", i);
		snprintf(path, sizeof(path), "share/n%u/x", i);
		put_in_place(f, name, meta, data, path);
	}
	/* Another model lists its data blob without a path: never a location. */
	put_model(f, "plain", "6666666666666666666666666666666666666666666666666666666666666666",
		  D2);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	models_set_in_use(m, hook, f);
	for (unsigned i = 1; i <= 20; i++) {
		for (int j = 0; j < 32; j++)
			snprintf(data + 2 * j, 3, "%02x", (i * 151) & 0xff);
		snprintf(path, sizeof(path), "share/n%u/x", i);
		assert_non_null(located_path(m, data, "share/elsewhere"));
		assert_string_equal(located_path(m, data, "share/elsewhere"), path);
	}
	assert_null(located_path(m,
				 "0000000000000000000000000000000000000000000000000000000000000000",
				 "share/n1/x"));
	assert_null(located_path(m,
				 "9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a",
				 "share/n1/x"));
	assert_null(located_path(m,
				 "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
				 "share/n1/x"));
	assert_null(located_path(m, D2, "share/n1/x"));

	/* Published while running: found once the catalogue is re-read, not before. */
	put_in_place(f, "new", M1, D1, "share/new/x");
	assert_null(located_path(m, D1, "share/new/x"));
	assert_non_null(models_resolve(m, "new", 3, NULL));
	assert_non_null(located_path(m, D1, "share/new/x"));
	assert_string_equal(located_path(m, D1, "share/new/x"), "share/new/x");

	/* Retained, then re-published over other bytes: the old digest is found in the retained
	 * version only, the new one in the catalogue. */
	assert_int_equal(models_retain(m, models_find_version(m, "new", M1)), 0);
	f->in_use_meta = M1;
	put_in_place(f, "new", M2, D3, "share/new/y");
	assert_non_null(models_resolve(m, "new", 3, NULL));
	assert_non_null(located_path(m, D1, "share/gone"));
	assert_string_equal(located_path(m, D1, "share/gone"), "share/new/x");
	assert_non_null(located_path(m, D3, "share/gone"));
	assert_string_equal(located_path(m, D3, "share/gone"), "share/new/y");

	/* A restart reads the retained version back: still found. */
	models_free(m);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	models_set_in_use(m, hook, f);
	models_prune_versions(m);
	assert_non_null(located_path(m, D1, "share/gone"));
	assert_string_equal(located_path(m, D1, "share/gone"), "share/new/x");

	/* Dropped once unused: gone from the index, the rest still there. */
	f->in_use_meta = NULL;
	models_prune_versions(m);
	assert_null(located_path(m, D1, "share/new/x"));
	assert_null(located_path(m, D2, "share/gone"));
	assert_string_equal(located_path(m, D3, "share/gone"), "share/new/y");
	for (int j = 0; j < 32; j++)
		snprintf(data + 2 * j, 3, "%02x", (7 * 151) & 0xff);
	assert_string_equal(located_path(m, data, "share/n7/x"), "share/n7/x");
	models_free(m);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = test_make_temp_dir();
	snprintf(f->catalogue, sizeof(f->catalogue), "%s/catalogue", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
	assert_int_equal(mkdir_parents(f->catalogue), 0);
	assert_int_equal(mkdir_parents(f->state), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_remove_tree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static const struct catalogue_model *resolve_model(struct models *m, const char *key)
{
	const struct catalogue_model *model = NULL;

	return models_resolve(m, key, strlen(key), &model) ? model : NULL;
}

static void republished_version_retained_while_in_use(void **state)
{
	struct fixture *f = *state;
	const struct catalogue_model *model;
	struct models *m = NULL;
	char path[4096];
	struct stat st;

	put_model(f, "m", M1, D1);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	models_set_in_use(m, hook, f);
	model = resolve_model(m, "m");
	assert_non_null(model);
	assert_string_equal(model->meta, M1);
	assert_int_equal(models_retain(m, model), 0);
	assert_int_equal(models_retain(m, model), 0); /* once is enough */
	snprintf(path, sizeof(path), "%s/versions/" M1 "/m.model", f->state);
	assert_int_equal(stat(path, &st), 0);

	/* v2 published while v1 is in use: the name is v2, v1's blobs still resolve. */
	f->in_use_meta = M1;
	put_model(f, "m", M2, D2);
	model = resolve_model(m, "m");
	assert_non_null(model);
	assert_string_equal(model->meta, M2);
	model = resolve_model(m, D1);
	assert_non_null(model);
	assert_string_equal(model->meta, M1);
	assert_non_null(resolve_model(m, M1));
	assert_non_null(resolve_model(m, D2));
	model = models_find_version(m, "m", M1);
	assert_non_null(model);
	assert_string_equal(models_meta_blob(model)->digest, M1);
	model = models_find_version(m, "m", M2);
	assert_non_null(model);
	assert_string_equal(model->meta, M2);
	assert_null(models_find_version(m, "m", D2));
	assert_null(models_find_version(m, "other", M1));

	/* A restart finds the retained version on disk. */
	models_free(m);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	models_set_in_use(m, hook, f);
	models_prune_versions(m);
	model = resolve_model(m, D1);
	assert_non_null(model);
	assert_string_equal(model->meta, M1);

	/* No longer in use: dropped, with its verified metadata copy; the current one stays. */
	snprintf(path, sizeof(path), "%s/meta", f->state);
	assert_int_equal(mkdir_parents(path), 0);
	snprintf(path, sizeof(path), "%s/meta/" M1, f->state);
	test_write_file(path, "x", 1);
	f->in_use_meta = NULL;
	models_prune_versions(m);
	assert_null(resolve_model(m, D1));
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/versions/" M1, f->state);
	assert_int_equal(stat(path, &st), -1);
	assert_non_null(resolve_model(m, D2));
	models_free(m);
}

static void current_version_never_dropped(void **state)
{
	struct fixture *f = *state;
	struct models *m = NULL;
	char path[4096];
	struct stat st;

	put_model(f, "m", M1, D1);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	assert_int_equal(models_retain(m, resolve_model(m, "m")), 0);
	models_prune_versions(m);
	snprintf(path, sizeof(path), "%s/versions/" M1 "/m.model", f->state);
	assert_int_equal(stat(path, &st), 0);
	/* Replaced, unused: the catalogue change itself drops it. */
	put_model(f, "m", M2, D2);
	assert_non_null(resolve_model(m, "m"));
	assert_int_equal(stat(path, &st), -1);
	assert_null(resolve_model(m, D1));
	models_free(m);
}

static void damaged_versions_ignored(void **state)
{
	struct fixture *f = *state;
	struct models *m = NULL;
	char path[4096];

	/* A file whose metadata is not its directory's name, a directory not named by a
	 * digest, an unparsable entry: none is served. */
	snprintf(path, sizeof(path), "%s/versions/" M2, f->state);
	assert_int_equal(mkdir_parents(path), 0);
	put_model(f, "m", M1, D1);
	snprintf(path, sizeof(path), "%s/m.model", f->catalogue);
	{
		size_t len;
		char *text = test_read_file(path, &len), dst[4096];
		snprintf(dst, sizeof(dst), "%s/versions/" M2 "/m.model", f->state);
		test_write_file(dst, text, len);
		snprintf(dst, sizeof(dst), "%s/versions/notadigest", f->state);
		assert_int_equal(mkdir_parents(dst), 0);
		snprintf(dst, sizeof(dst), "%s/versions/notadigest/m.model", f->state);
		test_write_file(dst, text, len);
		free(text);
	}
	snprintf(path, sizeof(path), "%s/versions/" M1, f->state);
	assert_int_equal(mkdir_parents(path), 0);
	snprintf(path, sizeof(path), "%s/versions/" M1 "/x.model", f->state);
	test_write_file(path, "[model\n", 7);
	put_model(f, "m", M2, D2);
	assert_int_equal(models_new(f->catalogue, f->state, &m), 0);
	assert_null(resolve_model(m, D1));
	assert_null(models_find_version(m, "m", M1));
	models_free(m);
}

static void no_state_dir_no_versions(void **state)
{
	struct fixture *f = *state;
	struct models *m = NULL;

	put_model(f, "m", M1, D1);
	assert_int_equal(models_new(f->catalogue, NULL, &m), 0);
	assert_int_equal(models_retain(m, resolve_model(m, "m")), 0);
	put_model(f, "m", M2, D2);
	assert_null(resolve_model(m, D1));
	models_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(republished_version_retained_while_in_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(current_version_never_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(in_place_blob_located, setup, teardown),
		cmocka_unit_test_setup_teardown(locate_index_follows_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(damaged_versions_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(no_state_dir_no_versions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
