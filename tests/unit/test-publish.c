// SPDX-License-Identifier: GPL-2.0-or-later
/* publish end to end; images are checked with the real fsck.erofs (erofs-utils must be
 * installed: this test fails, it does not skip, without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

#include "erofs.h"
#include "macros.h"
#include "cli/publish.h"
#include "test-erofs-tools.h"
#include "test-helpers.h"
#include "verify.h"

struct fixture {
	char *dir;
	char *src;
	char *origin;
	char *catalogue;
};

static void fill_source(const char *src, uint32_t seed)
{
	size_t len = 3 * 1024 * 1024;
	uint8_t *big = malloc(len);
	uint32_t x = seed;
	char *p, *sub;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = (uint8_t)(x >> 16);
	}
	p = test_path(src, "weights.bin");
	test_write_file(p, big, len);
	free(p);
	free(big);
	p = test_path(src, "config.json");
	test_write_file(p, "{\"layers\": 2}\n", 14);
	free(p);
	sub = test_path(src, "tokenizer");
	mkdir(sub, 0755);
	p = test_path(sub, "vocab.txt");
	test_write_file(p, "a\nb\nc\n", 6);
	free(p);
	free(sub);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (access(FSCK_EROFS_PATH, X_OK) != 0) {
		fprintf(stderr, "%s not found: install erofs-utils (this test needs it)\n",
			FSCK_EROFS_PATH);
		return -1; /* fail, not skip */
	}
	f->dir = test_make_temp_dir();
	f->src = test_path(f->dir, "src");
	f->origin = test_path(f->dir, "origin");
	f->catalogue = test_path(f->dir, "catalogue");
	mkdir(f->src, 0755);
	mkdir(f->origin, 0755);
	mkdir(f->catalogue, 0755);
	fill_source(f->src, 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	test_remove_tree(f->dir);
	free(f->dir);
	free(f->src);
	free(f->origin);
	free(f->catalogue);
	free(f);
	return 0;
}

static struct publish_options options(const struct fixture *f, const char *name)
{
	return (struct publish_options){
		.name = name,
		.source_dir = f->src,
		.origin_dir = f->origin,
		.catalogue_dir = f->catalogue,
		.chunk_size = PUBLISH_DEFAULT_CHUNK_SIZE,
	};
}

/* An in-place publish of source (beneath origin, a private one) at the 1 MiB threshold. */
static struct publish_options in_place_options(const struct fixture *f, const char *name,
					       const char *origin, const char *source)
{
	struct publish_options o = options(f, name);

	o.source_dir = source;
	o.origin_dir = origin;
	o.catalogue_dir = NULL;
	o.in_place = true;
	o.in_place_min = 1024 * 1024;
	return o;
}

/* sha256 computed here, independently of publish_sha256_file(). */
static void sha256_hex(const void *data, size_t len, char *hex)
{
	unsigned char md[32];
	unsigned int md_len;

	assert_int_equal(EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL), 1);
	for (unsigned int i = 0; i < md_len; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static char *blob_path(const struct fixture *f, const char *digest)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/blobs/sha256/%s", f->origin, digest) > 0);
	return p;
}

static void assert_blob(const struct fixture *f, const struct publish_blob_result *b)
{
	char *path = blob_path(f, b->digest), hex[65];
	size_t len;
	char *data = test_read_file(path, &len);

	assert_non_null(data);
	assert_int_equal(len, b->size);
	sha256_hex(data, len, hex);
	assert_string_equal(hex, b->digest);
	free(data);
	free(path);
}

/* The blob's chunk digests in the model are the sha256 of each chunk of its content, computed
 * here independently; and the daemon's verification accepts the blob as published. */
static void assert_chunk_digests(const struct fixture *f, const struct catalogue_blob *b,
				 uint64_t chunk_size)
{
	char *path = blob_path(f, b->digest);
	size_t len;
	uint8_t *data = (uint8_t *)test_read_file(path, &len);

	assert_non_null(data);
	assert_int_equal(b->digest_chunk_size, chunk_size);
	assert_int_equal(b->n_chunk_digests, (len + chunk_size - 1) / chunk_size);
	for (size_t i = 0; i < b->n_chunk_digests; i++) {
		size_t off = i * chunk_size, n = len - off < chunk_size ? len - off : chunk_size;
		unsigned char md[32];
		unsigned int md_len;

		assert_int_equal(EVP_Digest(data + off, n, md, &md_len, EVP_sha256(), NULL), 1);
		assert_memory_equal(md, b->chunk_digests[i], 32);
	}
	assert_int_equal(verify_range(b, 0, data, len, NULL), 0);
	assert_int_equal(verify_whole(b->digest, data, len), 0);
	free(data);
	free(path);
}

/* One pass gives the whole digest and the chunk digests, whatever the size against the chunk
 * size and the 1 MiB read buffer (chunks smaller than a read, and spanning reads). */
static void test_sha256_file_chunks(void **state)
{
	static const struct {
		size_t size;
		uint64_t chunk;
	} cases[] = {
		{ 0, 4096 },
		{ 1, 4096 },
		{ 4095, 4096 },
		{ 4096, 4096 },
		{ 4097, 4096 },
		{ 3 * 4096, 4096 },
		{ 3 << 20, 4096 },
		{ (5 << 20) + 3, 2 << 20 },
		{ (1 << 20) + 1, 1 << 20 },
	};
	char *dir = test_make_temp_dir(), *path = test_path(dir, "f");
	uint8_t *data = malloc((5 << 20) + 3);

	(void)state;
	for (size_t i = 0; i < (5 << 20) + 3; i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint8_t(*digests)[CATALOGUE_DIGEST_SIZE] = NULL;
		size_t n = 99, size = cases[c].size;
		uint64_t chunk = cases[c].chunk, got_size = 0;
		char hex[65], expect[65];

		test_write_file(path, data, size);
		assert_int_equal(
			publish_sha256_file_chunks(path, chunk, hex, &got_size, &digests, &n), 0);
		sha256_hex(data, size, expect);
		assert_string_equal(hex, expect);
		assert_int_equal(got_size, size);
		if (n != (size + chunk - 1) / chunk)
			fail_msg("size %zu chunk %llu: expected %zu digests, got %zu", size,
				 (unsigned long long)chunk, (size_t)((size + chunk - 1) / chunk),
				 n);
		for (size_t i = 0; i < n; i++) {
			size_t off = i * chunk, len = size - off < chunk ? size - off : chunk;

			sha256_hex(data + off, len, expect);
			for (size_t k = 0; k < 32; k++)
				sprintf(hex + 2 * k, "%02x", digests[i][k]);
			assert_string_equal(hex, expect);
		}
		free(digests);
	}
	assert_int_equal(publish_sha256_file_chunks(path, 0, (char[65]){ 0 }, NULL,
						    &(uint8_t(*)[CATALOGUE_DIGEST_SIZE]){ NULL },
						    &(size_t){ 0 }),
			 -EINVAL);
	free(data);
	free(path);
	test_remove_tree(dir);
	free(dir);
}

/* No ".publish-*" temporary directory left: origin holds blobs/, models/ and the origin lock
 * (.lock, see cli/gc.h) at most. */
static void assert_no_leftovers(const struct fixture *f)
{
	DIR *d = opendir(f->origin);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (streq(e->d_name, ".") || streq(e->d_name, "..") || streq(e->d_name, "blobs") ||
		    streq(e->d_name, "models") || streq(e->d_name, ".lock"))
			continue;
		fail_msg("left behind in origin: %s", e->d_name);
	}
	closedir(d);
}

static int count_blobs(const struct fixture *f)
{
	char *p = test_path(f->origin, "blobs/sha256");
	int n = test_count_entries(p);

	free(p);
	return n < 0 ? 0 : n;
}

static uint8_t *random_bytes(size_t len, uint32_t seed)
{
	uint8_t *b = malloc(len);
	uint32_t x = seed;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (uint8_t)(x >> 16);
	}
	return b;
}

static void write_random(const char *dir, const char *name, size_t len, uint32_t seed)
{
	char *p = test_path(dir, name);
	uint8_t *b = random_bytes(len, seed);

	test_write_file(p, b, len);
	free(b);
	free(p);
}

/* The file's content zero-padded to a block, as the blob's digests cover it. */
static uint8_t *padded_content(const char *path, size_t *padded)
{
	size_t len;
	char *data = test_read_file(path, &len);
	uint8_t *out;

	assert_non_null(data);
	*padded = (len + 4095) / 4096 * 4096;
	out = calloc(1, *padded);
	memcpy(out, data, len);
	free(data);
	return out;
}

/* fsck.erofs --extract of the image of model m (its blobs in origin's store, or given padded
 * in place) into out; every file of files[] under src must read back identical. */
static void assert_extracts(const char *origin, const struct catalogue_model *m, const char *out,
			    const char *src, const char *const *files, size_t n_files)
{
	char *argv[600], *meta = NULL, extract[600];
	size_t k = 0;

	assert_true(m->n_blobs < 500);
	argv[k++] = FSCK_EROFS_PATH;
	for (size_t i = 1; i < m->n_blobs; i++)
		assert_true(asprintf(&argv[k++], "--device=%s/blobs/sha256/%s", origin,
				     m->blobs[i].digest) > 0);
	snprintf(extract, sizeof(extract), "--extract=%s", out);
	argv[k++] = extract;
	argv[k++] = "--no-preserve";
	assert_true(asprintf(&meta, "%s/blobs/sha256/%s", origin, m->meta) > 0);
	argv[k++] = meta;
	argv[k] = NULL;
	assert_int_equal(test_run(argv), 0);
	for (size_t i = 1; i < m->n_blobs; i++)
		free(argv[i]);
	free(meta);
	for (size_t i = 0; i < n_files; i++) {
		char *a = test_path(src, files[i]), *b = test_path(out, files[i]);
		size_t la, lb;
		char *da = test_read_file(a, &la), *db = test_read_file(b, &lb);

		if (!da || !db || la != lb || memcmp(da, db, la))
			fail_msg("%s does not read back identical", files[i]);
		free(da);
		free(db);
		free(a);
		free(b);
	}
}

static const char *const fixture_files[] = { "config.json", "tokenizer/vocab.txt", "weights.bin" };

/* The layout: the large file is a blob of its own named by its content, the two small files
 * share a packed blob, block by block; the metadata blob's device table names both; fsck.erofs
 * finds the image clean and extracts every file identical. */
static void test_publish(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "model1");
	struct publish_result res;
	struct catalogue_model m;
	char *entry, *copy, *meta_path, *text1, *text2, *w, err[512], hex[65];
	char *out = test_path(f->dir, "out1");
	char tag[EROFS_DEVICE_TAG_LEN + 1];
	size_t len, wlen;
	uint8_t *meta;
	uint32_t blocks;

	assert_int_equal(publish_model(&o, &res), 0);
	assert_false(res.meta.existed);
	assert_false(res.entry_unchanged);
	assert_blob(f, &res.meta);
	assert_int_equal(res.meta.size % 4096, 0);
	assert_int_equal(res.stats.large_files, 1);
	assert_int_equal(res.stats.small_files, 2);
	assert_int_equal(res.stats.devices, 1);
	assert_int_equal(res.stats.blobs_written, 2);
	assert_int_equal(res.stats.blobs_existed, 0);
	assert_int_equal(count_blobs(f), 3);
	/* everything written: the blobs and the entry */
	assert_true(res.stats.origin_bytes > res.meta.size + 3 * 1024 * 1024 + 2 * 4096);

	/* the model entry parses and describes the blobs: meta, packed (the first file in the
	 * walk is config.json), the large file */
	entry = test_path(f->origin, "models/model1.model");
	assert_int_equal(catalogue_load_model_file(entry, &m, err, sizeof(err)), 0);
	assert_string_equal(m.name, "model1");
	assert_string_equal(m.meta, res.meta.digest);
	assert_int_equal(m.chunk_size, 1048576);
	assert_int_equal(m.n_blobs, 3);
	assert_string_equal(m.blobs[0].digest, res.meta.digest);
	assert_int_equal(m.blobs[0].size, res.meta.size);
	assert_int_equal(m.blobs[0].role, BLOB_ROLE_META);
	assert_int_equal(m.blobs[1].role, BLOB_ROLE_DATA);
	assert_int_equal(m.blobs[1].size, 2 * 4096);
	assert_int_equal(m.blobs[2].role, BLOB_ROLE_DATA);
	assert_int_equal(m.blobs[2].size, 3 * 1024 * 1024);
	assert_string_equal(m.blobs[2].path, "");
	/* the large file's blob is named by its content */
	w = test_path(f->src, "weights.bin");
	text1 = test_read_file(w, &wlen);
	sha256_hex(text1, wlen, hex);
	assert_string_equal(m.blobs[2].digest, hex);
	free(text1);
	free(w);
	for (size_t i = 0; i < 3; i++) {
		struct publish_blob_result b = { .size = m.blobs[i].size };

		memcpy(b.digest, m.blobs[i].digest, sizeof(b.digest));
		assert_blob(f, &b);
		/* chunk digests of every blob at the EROFS chunk size */
		assert_chunk_digests(f, &m.blobs[i], 1048576);
	}
	assert_int_equal(res.meta.n_chunk_digests, m.blobs[0].n_chunk_digests);
	assert_int_equal(m.blobs[2].n_chunk_digests, 3);
	/* the same entry in the daemon's catalogue */
	copy = test_path(f->catalogue, "model1.model");
	text1 = test_read_file(entry, NULL);
	text2 = test_read_file(copy, NULL);
	assert_non_null(text2);
	assert_string_equal(text1, text2);

	/* device i is data blob i, its block count its size; the checksum is valid */
	meta_path = blob_path(f, res.meta.digest);
	meta = (uint8_t *)test_read_file(meta_path, &len);
	assert_int_equal(erofs_sb_read(meta, len, NULL, err, sizeof(err)), 0);
	for (unsigned int i = 0; i < 2; i++) {
		assert_int_equal(erofs_sb_get_device_tag(meta, len, i, tag, &blocks), 0);
		assert_string_equal(tag, m.blobs[i + 1].digest);
		assert_int_equal(blocks, m.blobs[i + 1].size / 4096);
	}
	assert_extracts(f->origin, &m, out, f->src, fixture_files, ARRAY_SIZE(fixture_files));
	catalogue_model_free(&m);

	assert_no_leftovers(f);
	free(meta);
	free(meta_path);
	free(text1);
	free(text2);
	free(copy);
	free(entry);
	free(out);
	publish_result_free(&res);
}

static ino_t blob_inode(const struct fixture *f, const char *digest)
{
	char *p = blob_path(f, digest);
	struct stat st;

	assert_int_equal(stat(p, &st), 0);
	free(p);
	return st.st_ino;
}

/* Two models with a common large file (under another name, in another directory): the same
 * blob digest in both entries, the blob written by the first publish only (the second finds it
 * and keeps it: same inode); their other blobs differ. The same file published in place has the
 * same digest too. Both images extract identical. */
static void test_shared_files(void **state)
{
	struct fixture *f = *state;
	char *src2 = test_path(f->dir, "src-shared"), *deep = test_path(src2, "shards");
	char *out = test_path(f->dir, "out-shared"), *w1 = test_path(f->src, "weights.bin");
	char *w2 = test_path(deep, "model-00001.bin"), *origin2 = test_path(f->dir, "origin-sh");
	char *ip = test_path(origin2, "m"), *ipw = test_path(ip, "w.bin");
	static const char *const files2[] = { "README", "shards/model-00001.bin",
					      "shards/model-00002.bin" };
	struct publish_options o1 = options(f, "base"), o2 = options(f, "finetune");
	struct publish_options o3 = in_place_options(f, "inplace-sh", origin2, ip);
	struct publish_result r1, r2, r3;
	const char *shared;
	size_t len;
	char *data;
	ino_t ino;
	int blobs;

	mkdir(src2, 0755);
	mkdir(deep, 0755);
	data = test_read_file(w1, &len);
	test_write_file(w2, data, len);
	write_random(deep, "model-00002.bin", 2 * 1024 * 1024 + 5, 21);
	write_random(src2, "README", 300, 22);
	o2.source_dir = src2;

	assert_int_equal(publish_model(&o1, &r1), 0);
	shared = r1.model.blobs[2].digest;
	ino = blob_inode(f, shared);
	blobs = count_blobs(f);
	assert_int_equal(publish_model(&o2, &r2), 0);
	/* finetune: meta, packed (README), the shared file, its own file */
	assert_int_equal(r2.model.n_blobs, 4);
	assert_string_equal(r2.model.blobs[2].digest, shared);
	assert_string_not_equal(r2.model.blobs[1].digest, r1.model.blobs[1].digest);
	assert_string_not_equal(r2.model.blobs[3].digest, shared);
	assert_int_equal(r2.stats.blobs_existed, 1);
	assert_int_equal(r2.stats.blobs_written, 2);
	assert_int_equal(blob_inode(f, shared), ino); /* kept, not rewritten */
	assert_int_equal(count_blobs(f), blobs + 3);  /* meta, packed, its own file */
	/* written: everything but the shared 3 MiB */
	assert_true(r2.stats.origin_bytes < r2.stats.large_bytes + r2.stats.small_bytes);
	assert_true(r2.stats.origin_bytes >= 2 * 1024 * 1024 + 8192);
	assert_extracts(f->origin, &r2.model, out, src2, files2, ARRAY_SIZE(files2));

	/* in place: the file beneath the origin is the same blob (by digest, not stored) */
	mkdir(origin2, 0755);
	mkdir(ip, 0755);
	test_write_file(ipw, data, len);
	assert_int_equal(publish_model(&o3, &r3), 0);
	assert_int_equal(r3.model.n_blobs, 2);
	assert_string_equal(r3.model.blobs[1].digest, shared);
	assert_string_equal(r3.model.blobs[1].path, "m/w.bin");

	free(data);
	publish_result_free(&r1);
	publish_result_free(&r2);
	publish_result_free(&r3);
	free(ipw);
	free(ip);
	free(origin2);
	free(w2);
	free(w1);
	free(out);
	free(deep);
	free(src2);
}

/* --blob-min: at 16T every file is packed (one data blob); at 4096 the 14-byte config stays
 * packed and the 3 MiB file is a blob of its own, the same as by default. */
static void test_blob_min(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "packed-all");
	struct publish_result res, def;
	char *out = test_path(f->dir, "out-packed");

	o.catalogue_dir = NULL;
	o.blob_min = PUBLISH_BLOB_MIN_MAX;
	assert_int_equal(publish_model(&o, &res), 0);
	assert_int_equal(res.model.n_blobs, 2);
	assert_int_equal(res.stats.large_files, 0);
	assert_int_equal(res.stats.small_files, 3);
	assert_int_equal(res.model.blobs[1].size, 2 * 4096 + 3 * 1024 * 1024);
	assert_extracts(f->origin, &res.model, out, f->src, fixture_files,
			ARRAY_SIZE(fixture_files));
	publish_result_free(&res);

	o = options(f, "blob-min-4k");
	o.catalogue_dir = NULL;
	o.blob_min = 4096;
	assert_int_equal(publish_model(&o, &res), 0);
	o = options(f, "blob-min-default");
	o.catalogue_dir = NULL;
	assert_int_equal(publish_model(&o, &def), 0);
	assert_int_equal(res.model.n_blobs, 3);
	for (size_t i = 1; i < 3; i++)
		assert_string_equal(res.model.blobs[i].digest, def.model.blobs[i].digest);
	assert_int_equal(def.stats.blobs_written, 0); /* the same data blobs */
	publish_result_free(&res);
	publish_result_free(&def);
	free(out);
}

/* The digest chunk size follows --chunk-size. */
static void test_publish_chunk_digests_follow_chunk_size(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "small-chunks");
	struct publish_result res;

	o.chunk_size = 65536;
	assert_int_equal(publish_model(&o, &res), 0);
	assert_int_equal(res.model.n_blobs, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_chunk_digests(f, &res.model.blobs[i], 65536);
		assert_int_equal(res.model.blobs[i].n_chunk_digests,
				 (res.model.blobs[i].size + 65535) / 65536);
	}
	publish_result_free(&res);
}

static void test_republish_identical(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "model2");
	struct publish_result first, second, third;
	char *other_origin = test_path(f->dir, "origin2");
	char *p;

	assert_int_equal(publish_model(&o, &first), 0);
	/* again: same blobs, found in place, entry unchanged */
	assert_int_equal(publish_model(&o, &second), 0);
	assert_string_equal(second.meta.digest, first.meta.digest);
	assert_int_equal(second.model.n_blobs, first.model.n_blobs);
	for (size_t i = 0; i < first.model.n_blobs; i++)
		assert_string_equal(second.model.blobs[i].digest, first.model.blobs[i].digest);
	assert_true(second.meta.existed);
	assert_int_equal(second.stats.blobs_existed, 2);
	assert_int_equal(second.stats.blobs_written, 0);
	assert_true(second.entry_unchanged);

	/* new mtimes and a fresh origin: still identical blobs (fixed times, name-derived UUID) */
	p = test_path(f->src, "config.json");
	assert_int_equal(utime(p, &(struct utimbuf){ .actime = 12345, .modtime = 67890 }), 0);
	free(p);
	mkdir(other_origin, 0755);
	o.origin_dir = other_origin;
	o.catalogue_dir = NULL;
	assert_int_equal(publish_model(&o, &third), 0);
	assert_string_equal(third.meta.digest, first.meta.digest);
	for (size_t i = 0; i < first.model.n_blobs; i++)
		assert_string_equal(third.model.blobs[i].digest, first.model.blobs[i].digest);
	assert_false(third.meta.existed);
	assert_int_equal(third.stats.blobs_written, 2);

	publish_result_free(&first);
	publish_result_free(&second);
	publish_result_free(&third);
	free(other_origin);
}

static void test_changed_content_needs_force(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "model3");
	struct publish_result first, res;
	char *p, *before, *after;
	int blobs;

	assert_int_equal(publish_model(&o, &first), 0);
	p = test_path(f->src, "config.json");
	test_write_file(p, "{\"layers\": 3}\n", 14);
	free(p);
	p = test_path(f->origin, "models/model3.model");
	before = test_read_file(p, NULL);
	blobs = count_blobs(f);

	assert_int_equal(publish_model(&o, &res), -EEXIST);
	after = test_read_file(p, NULL);
	assert_string_equal(after, before);
	assert_int_equal(count_blobs(f), blobs); /* refused before touching the store */
	assert_no_leftovers(f);
	free(after);

	o.force = true;
	assert_int_equal(publish_model(&o, &res), 0);
	assert_string_not_equal(res.meta.digest, first.meta.digest);
	/* only the packed blob changed: the 3 MiB file's blob is kept */
	assert_string_not_equal(res.model.blobs[1].digest, first.model.blobs[1].digest);
	assert_string_equal(res.model.blobs[2].digest, first.model.blobs[2].digest);
	assert_int_equal(res.stats.blobs_existed, 1);
	assert_int_equal(res.stats.blobs_written, 1);
	after = test_read_file(p, NULL);
	assert_non_null(strstr(after, res.meta.digest));
	free(after);
	free(before);
	free(p);
	publish_result_free(&first);
	publish_result_free(&res);

	/* restore the fixture for the other tests */
	p = test_path(f->src, "config.json");
	test_write_file(p, "{\"layers\": 2}\n", 14);
	free(p);
}

static void test_bad_names_refused(void **state)
{
	static const char *bad[] = {
		"",
		"../x",
		".hidden",
		"a/b",
		"-rf",
		"with space",
		"m123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	};
	struct fixture *f = *state;
	struct publish_result res;
	int blobs = count_blobs(f);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct publish_options o = options(f, bad[i]);
		assert_int_equal(publish_model(&o, &res), -EINVAL);
	}
	assert_int_equal(count_blobs(f), blobs);
	assert_no_leftovers(f);
}

static void test_bad_arguments_refused(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "model4");
	struct publish_result res;
	char *file = test_path(f->src, "config.json");
	char *missing = test_path(f->dir, "missing");
	int blobs = count_blobs(f);

	o.chunk_size = 1000;
	assert_int_equal(publish_model(&o, &res), -EINVAL);
	o.chunk_size = 2048;
	assert_int_equal(publish_model(&o, &res), -EINVAL);
	o = options(f, "model4");
	o.source_dir = file;
	assert_int_equal(publish_model(&o, &res), -ENOTDIR);
	o.source_dir = missing;
	assert_int_equal(publish_model(&o, &res), -ENOENT);
	o = options(f, "model4");
	o.origin_dir = missing;
	assert_int_equal(publish_model(&o, &res), -ENOENT);
	o.origin_dir = file;
	assert_int_equal(publish_model(&o, &res), -ENOTDIR);
	o = options(f, "model4");
	o.catalogue_dir = missing;
	assert_int_equal(publish_model(&o, &res), -ENOENT);
	o = options(f, "model4");
	o.blob_min = PUBLISH_BLOB_MIN_MAX + 1;
	assert_int_equal(publish_model(&o, &res), -EINVAL);

	assert_int_equal(count_blobs(f), blobs);
	assert_no_leftovers(f);
	free(file);
	free(missing);
}

static void test_failure_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct publish_options o = options(f, "model5");
	struct publish_result res;
	char *empty = test_path(f->dir, "empty");
	char *entry = test_path(f->origin, "models/model5.model");
	int blobs = count_blobs(f);

	/* a source without file data */
	mkdir(empty, 0755);
	o.source_dir = empty;
	assert_int_equal(publish_model(&o, &res), -ENODATA);
	/* a special file: refused after the walk began */
	{
		char *fifo = test_path(empty, "zz-fifo");

		write_random(empty, "big", 2 * 1024 * 1024, 3);
		write_random(empty, "small", 10, 4);
		assert_int_equal(mkfifo(fifo, 0644), 0);
		assert_int_equal(publish_model(&o, &res), -EINVAL);
		unlink(fifo);
		free(fifo);
	}

	assert_int_equal(count_blobs(f), blobs);
	assert_int_equal(access(entry, F_OK), -1);
	assert_no_leftovers(f);
	free(empty);
	free(entry);
}

/* ---- --in-place ---- */

/* A model beneath the origin: large files (one a duplicate, one reached through a symlink to
 * elsewhere beneath the origin, as in a Hugging Face snapshot) stay in place, small ones are
 * packed; only the metadata blob and the entry are written. fsck.erofs, given each in-place
 * file padded to a block as its device, finds the image clean and extracts every file
 * byte-identical. */
static void test_publish_in_place(void **state)
{
	struct fixture *f = *state;
	char *origin = test_path(f->dir, "origin-ip"), *hf = test_path(origin, "hf");
	char *model = test_path(origin, "share/m"), *sub = test_path(model, "sub");
	char *share = test_path(origin, "share"), *entry, *out = test_path(f->dir, "ip-out");
	struct publish_options o = in_place_options(f, "inplace1", origin, model);
	struct publish_result res;
	struct catalogue_model m;
	char err[512], tag[EROFS_DEVICE_TAG_LEN + 1], *devices[3];
	/* device order: the walk's, depth first in byte order of names */
	static const char *const expect_paths[] = { "share/m/big1.safetensors", "hf/blob-x",
						    "share/m/sub/big3.safetensors" };
	static const char *const files[] = {
		"big1.safetensors",	"big2.safetensors", "config.json", "link.bin",
		"sub/big3.safetensors", "sub/tiny.txt",	    "sub/empty"
	};
	size_t len;
	uint8_t *meta;

	mkdir(origin, 0755);
	mkdir(hf, 0755);
	mkdir(share, 0755);
	mkdir(model, 0755);
	mkdir(sub, 0755);
	write_random(model, "big1.safetensors", 3 * 1024 * 1024 + 123, 7);
	write_random(model, "big2.safetensors", 3 * 1024 * 1024 + 123, 7); /* same content */
	write_random(sub, "big3.safetensors", 2 * 1024 * 1024, 8);
	write_random(hf, "blob-x", 1536 * 1024 + 1, 9);
	write_random(model, "config.json", 700, 10);
	write_random(sub, "tiny.txt", 5000, 11);
	write_random(sub, "empty", 0, 12);
	{
		char *link = test_path(model, "link.bin");
		assert_int_equal(symlink("../../hf/blob-x", link), 0);
		free(link);
	}
	assert_int_equal(publish_model(&o, &res), 0);
	assert_int_equal(res.stats.large_files, 4);
	assert_int_equal(res.stats.devices, 3);
	assert_int_equal(res.stats.small_files, 3);
	assert_int_equal(res.stats.small_bytes, 5700);
	/* the metadata blob and the entry: nothing else is written */
	{
		char *blobs = test_path(origin, "blobs/sha256");
		assert_int_equal(test_count_entries(blobs), 1);
		free(blobs);
	}
	assert_true(res.stats.origin_bytes > res.meta.size);
	assert_true(res.stats.origin_bytes < 64 * 1024);

	entry = test_path(origin, "models/inplace1.model");
	assert_int_equal(catalogue_load_model_file(entry, &m, err, sizeof(err)), 0);
	assert_int_equal(m.n_blobs, 4);
	assert_string_equal(m.blobs[0].path, "");
	{
		char *mp = NULL;
		assert_true(asprintf(&mp, "%s/blobs/sha256/%s", origin, res.meta.digest) > 0);
		meta = (uint8_t *)test_read_file(mp, &len);
		free(mp);
	}
	assert_non_null(meta);
	for (size_t i = 1; i < 4; i++) {
		const struct catalogue_blob *b = &m.blobs[i];
		char *p = test_path(origin, expect_paths[i - 1]);
		size_t padded;
		uint8_t *content = padded_content(p, &padded);
		uint32_t blocks;

		assert_string_equal(b->path, expect_paths[i - 1]);
		assert_int_equal(b->role, BLOB_ROLE_DATA);
		assert_int_equal(b->size, padded);
		{
			struct stat st;
			assert_int_equal(stat(p, &st), 0);
			assert_int_equal(b->file_size, (uint64_t)st.st_size);
		}
		/* the digests cover the padded content; device i is this blob */
		assert_int_equal(verify_whole(b->digest, content, padded), 0);
		assert_int_equal(verify_range(b, 0, content, padded, NULL), 0);
		assert_int_equal(
			erofs_sb_get_device_tag(meta, len, (unsigned int)i - 1, tag, &blocks), 0);
		assert_string_equal(tag, b->digest);
		assert_int_equal(blocks, padded / 4096);
		/* fsck's device: the padded file */
		assert_true(asprintf(&devices[i - 1], "%s/pad-%zu", f->dir, i) > 0);
		test_write_file(devices[i - 1], content, padded);
		free(content);
		free(p);
	}
	catalogue_model_free(&m);

	{
		char *mp = NULL;

		assert_true(asprintf(&mp, "%s/blobs/sha256/%s", origin, res.meta.digest) > 0);
		assert_int_equal(test_fsck_extract(mp, (const char *const *)devices, 3, out), 0);
		free(mp);
		for (size_t i = 0; i < 3; i++)
			free(devices[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *a = test_path(model, files[i]), *b = test_path(out, files[i]);
		size_t la, lb;
		char *da = test_read_file(a, &la), *db = test_read_file(b, &lb);

		if (!da || !db || la != lb || memcmp(da, db, la))
			fail_msg("%s does not read back identical", files[i]);
		free(da);
		free(db);
		free(a);
		free(b);
	}
	free(meta);
	free(entry);
	free(out);
	free(share);
	free(sub);
	free(model);
	free(hf);
	free(origin);
	publish_result_free(&res);
}

/* A source outside the origin, a symlink leading out of it, a bad threshold: refused, and
 * nothing is written. */
static void test_in_place_refusals(void **state)
{
	struct fixture *f = *state;
	char *origin = test_path(f->dir, "origin-ref"), *model = test_path(origin, "m");
	char *link = test_path(model, "escape"), *models = test_path(origin, "models");
	struct publish_options o = in_place_options(f, "refused", origin, model);
	struct publish_result res;

	mkdir(origin, 0755);
	mkdir(model, 0755);
	write_random(model, "big.bin", 2 * 1024 * 1024, 1);
	o.source_dir = f->src; /* not beneath the origin */
	assert_int_equal(publish_model(&o, &res), -EXDEV);
	o.source_dir = origin; /* the origin itself */
	assert_int_equal(publish_model(&o, &res), -EXDEV);
	o.source_dir = model;
	assert_int_equal(symlink(f->src, link), 0); /* a directory outside */
	assert_int_equal(publish_model(&o, &res), -EXDEV);
	unlink(link);
	assert_int_equal(symlink("../m/big.bin", link), 0); /* fine: stays beneath */
	o.in_place_min = 0;
	assert_int_equal(publish_model(&o, &res), -EINVAL);
	o.in_place_min = PUBLISH_IN_PLACE_SMALL_MAX + 1;
	assert_int_equal(publish_model(&o, &res), -EINVAL);
	assert_int_equal(test_count_entries(models), -1); /* nothing was written */
	o.in_place_min = 1024 * 1024;
	assert_int_equal(publish_model(&o, &res), 0);
	assert_int_equal(res.stats.devices, 1); /* the link and the file share the blob */
	publish_result_free(&res);
	free(models);
	free(link);
	free(model);
	free(origin);
}

static void test_uuid_from_name(void **state)
{
	char a[37], b[37], c[37];

	publish_model_uuid("model1", a);
	publish_model_uuid("model1", b);
	publish_model_uuid("model2", c);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(strlen(a), 36);
	assert_int_equal(a[8], '-');
	assert_int_equal(a[14], '8'); /* version 8 */
	assert_non_null(strchr("89ab", a[19]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uuid_from_name),
		cmocka_unit_test(test_sha256_file_chunks),
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_shared_files),
		cmocka_unit_test(test_blob_min),
		cmocka_unit_test(test_publish_chunk_digests_follow_chunk_size),
		cmocka_unit_test(test_republish_identical),
		cmocka_unit_test(test_changed_content_needs_force),
		cmocka_unit_test(test_bad_names_refused),
		cmocka_unit_test(test_bad_arguments_refused),
		cmocka_unit_test(test_failure_leaves_nothing),
		cmocka_unit_test(test_publish_in_place),
		cmocka_unit_test(test_in_place_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
