// SPDX-License-Identifier: GPL-2.0-or-later
/* The catalogue parser reads untrusted files: every malformed input must be refused with
 * "origin:line: ..." pointing at the offending line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "catalogue.h"
#include "macros.h"
#include "test-helpers.h"

#define META  "1111111111111111111111111111111111111111111111111111111111111111"
#define DATA  "2222222222222222222222222222222222222222222222222222222222222222"
#define DATA2 "3333333333333333333333333333333333333333333333333333333333333333"
#define META2 "4444444444444444444444444444444444444444444444444444444444444444"

/* chunk digests */
#define CA "a000000000000000000000000000000000000000000000000000000000000001"
#define CB "b000000000000000000000000000000000000000000000000000000000000002"
#define CC "c000000000000000000000000000000000000000000000000000000000000003"
#define CD "d000000000000000000000000000000000000000000000000000000000000004"
#define CE "e000000000000000000000000000000000000000000000000000000000000005"

#define MODEL_SECTION(name, meta)                                                                  \
	"[model]\nname = " name "\nmeta = " meta "\nchunk_size = 1048576\n"
#define BLOB(digest, size, role) "[blob " digest "]\nsize = " size "\nrole = " role "\n"
/* a data blob of at most 4096 bytes with its one chunk digest */
#define DATA_BLOB1(digest, size, chunk)                                                            \
	BLOB(digest, size, "data") "digest_chunk_size = 4096\n[chunks " digest "]\n" chunk "\n"

static const char good[] = "# comment\n"
			   "[model]\n"
			   "name = model123 ; the fsid\n"
			   "meta = " META "\n"
			   "chunk_size = 1048576\n"
			   "\n"
			   "[blob " META "]\n"
			   "size = 4096\n"
			   "role = meta\n"
			   "\n"
			   "digest_chunk_size = 1048576\n"
			   "\n"
			   "[blob " DATA "]\n"
			   "size = 3149824\n"
			   "role = data\n"
			   "digest_chunk_size = 1048576\n"
			   "\n"
			   "[chunks " META "]\n"
			   "# comments and blank lines are allowed\n" CE "\n"
			   "\n"
			   "[chunks " DATA "]\n" CA "\n" CB "\n" CC "\r\n" CD "  \n";

/* the binary form of CA..CE: first and last byte */
static void assert_chunk_digest(const uint8_t *d, uint8_t first, uint8_t last)
{
	assert_int_equal(d[0], first);
	for (size_t i = 1; i < 31; i++)
		assert_int_equal(d[i], 0);
	assert_int_equal(d[31], last);
}

static void test_parse_good(void **state)
{
	struct catalogue_model m;
	char err[256] = "";

	assert_int_equal(catalogue_parse_model(good, "t", &m, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(m.name, "model123");
	assert_string_equal(m.meta, META);
	assert_int_equal(m.chunk_size, 1048576);
	assert_int_equal(m.n_blobs, 2);
	assert_string_equal(m.blobs[0].digest, META);
	assert_int_equal(m.blobs[0].size, 4096);
	assert_int_equal(m.blobs[0].role, BLOB_ROLE_META);
	assert_string_equal(m.blobs[1].digest, DATA);
	assert_int_equal(m.blobs[1].size, 3149824);
	assert_int_equal(m.blobs[1].role, BLOB_ROLE_DATA);
	assert_int_equal(m.blobs[0].digest_chunk_size, 1048576);
	assert_int_equal(m.blobs[0].n_chunk_digests, 1);
	assert_chunk_digest(m.blobs[0].chunk_digests[0], 0xe0, 0x05);
	assert_int_equal(m.blobs[1].digest_chunk_size, 1048576);
	assert_int_equal(m.blobs[1].n_chunk_digests, 4); /* 3 full chunks + 4096 bytes */
	assert_chunk_digest(m.blobs[1].chunk_digests[0], 0xa0, 0x01);
	assert_chunk_digest(m.blobs[1].chunk_digests[1], 0xb0, 0x02);
	assert_chunk_digest(m.blobs[1].chunk_digests[2], 0xc0, 0x03);
	assert_chunk_digest(m.blobs[1].chunk_digests[3], 0xd0, 0x04);
	catalogue_model_free(&m);
}

/* An in-place blob (publish --in-place): path and file_size parse, format back, and are
 * refused when inconsistent. */
#define INPLACE_HEAD MODEL_SECTION("m", META) BLOB(META, "4096", "meta")
#define INPLACE_BLOB(keys)                                                                         \
	BLOB(DATA, "8192", "data")                                                                 \
	"digest_chunk_size = 4096\n" keys "[chunks " DATA "]\n" CA "\n" CB "\n"

static void test_parse_in_place_blob(void **state)
{
	static const char text[] =
		INPLACE_HEAD INPLACE_BLOB("path = llama/model 1.safetensors\nfile_size = 5000\n");
	static const char *const bad[] = {
		INPLACE_HEAD INPLACE_BLOB("path = a/b\n"),		   /* no size */
		INPLACE_HEAD INPLACE_BLOB("file_size = 5000\n"),	   /* no path */
		INPLACE_HEAD INPLACE_BLOB("path = a\nfile_size = 4096\n"), /* 8192 != 4096 */
		INPLACE_HEAD INPLACE_BLOB("path = a\nfile_size = 9000\n"), /* > size */
		INPLACE_HEAD INPLACE_BLOB("path = /etc/passwd\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a/../../b\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a//b\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a/./b\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a/\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = ..\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a\\b\nfile_size = 5000\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a\nfile_size = 0\n"),
		INPLACE_HEAD INPLACE_BLOB("path = a\npath = b\nfile_size = 5000\n"),
	};
	struct catalogue_model m, again;
	_cleanup_free_ char *formatted = NULL;
	char err[256] = "";

	assert_int_equal(catalogue_parse_model(text, "t", &m, err, sizeof(err)), 0);
	assert_string_equal(m.blobs[1].path, "llama/model 1.safetensors");
	assert_int_equal(m.blobs[1].file_size, 5000);
	assert_string_equal(m.blobs[0].path, "");
	formatted = catalogue_format_model(&m);
	assert_non_null(formatted);
	assert_int_equal(catalogue_parse_model(formatted, "f", &again, err, sizeof(err)), 0);
	assert_string_equal(again.blobs[1].path, "llama/model 1.safetensors");
	assert_int_equal(again.blobs[1].file_size, 5000);
	catalogue_model_free(&again);
	catalogue_model_free(&m);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		if (catalogue_parse_model(bad[i], "t", &m, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(strstr(err, "t:"));
	}
	assert_true(catalogue_path_is_valid("models--org--name/blobs/abc"));
	assert_false(catalogue_path_is_valid(" a"));
	assert_false(catalogue_path_is_valid("a;b"));
	assert_false(catalogue_path_is_valid("a#b"));
	assert_false(catalogue_path_is_valid("a\tb"));
	assert_false(catalogue_path_is_valid(""));
}

/* The meta blob may go without chunk digests (it is also checked whole against its name). */
static void test_parse_meta_without_chunk_digests(void **state)
{
	static const char text[] =
		MODEL_SECTION("a", META) BLOB(META, "4096", "meta") DATA_BLOB1(DATA, "4096", CA);
	struct catalogue_model m;
	char err[256] = "";

	assert_int_equal(catalogue_parse_model(text, "t", &m, err, sizeof(err)), 0);
	assert_int_equal(m.blobs[0].digest_chunk_size, 0);
	assert_int_equal(m.blobs[0].n_chunk_digests, 0);
	assert_null(m.blobs[0].chunk_digests);
	assert_int_equal(m.blobs[1].n_chunk_digests, 1);
	catalogue_model_free(&m);
}

struct bad_case {
	const char *what;
	const char *text;
	const char *where; /* expected error prefix "t:LINE:" */
	const char *says;  /* expected fragment of the message */
};

static const struct bad_case bad_cases[] = {
	{ "empty file", "", "t:1:", "no [model] section" },
	{ "only comments", "# x\n; y\n", "t:2:", "no [model] section" },
	{ "key before any section", "name = a\n" MODEL_SECTION("a", META) BLOB(META, "1", "meta"),
	  "t:1:", "outside any section" },
	{ "unknown section", MODEL_SECTION("a", META) BLOB(META, "1", "meta") "[extra]\nx = 1\n",
	  "t:8:", "unknown section [extra]" },
	{ "duplicate [model]", MODEL_SECTION("a", META) "[model]\nname = b\n",
	  "t:5:", "duplicate section [model] (first at line 1)" },
	{ "duplicate key", "[model]\nname = a\nname = b\n",
	  "t:3:", "duplicate key 'name' in [model] (first at line 2)" },
	{ "duplicate blob key", MODEL_SECTION("a", META) "[blob " META "]\nsize = 1\nsize = 2\n",
	  "t:7:", "duplicate key 'size'" },
	{ "unknown model key", "[model]\nname = a\ncolour = red\n",
	  "t:3:", "unknown key 'colour'" },
	{ "unknown blob key", MODEL_SECTION("a", META) "[blob " META "]\nsize = 1\nmode = x\n",
	  "t:7:", "unknown key 'mode'" },
	{ "blob section not a digest", MODEL_SECTION("a", META) "[blob 1234]\n",
	  "t:5:", "not a sha256 digest" },
	{ "blob section upper-case digest",
	  MODEL_SECTION(
		  "a",
		  META) "[blob ABCDEF1111111111111111111111111111111111111111111111111111111111]\n",
	  "t:5:", "not a sha256 digest" },
	{ "blob section without digest", MODEL_SECTION("a", META) "[blob]\n",
	  "t:5:", "unknown section [blob]" },
	{ "duplicate blob section",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") BLOB(META, "1", "meta"),
	  "t:8:", "duplicate section [blob 111111111111...] (first at line 5)" },
	{ "meta not a digest", "[model]\nname = a\nmeta = xyz\n", "t:3:", "not a sha256 digest" },
	{ "invalid model name", "[model]\nname = ../etc\n", "t:2:", "invalid model name '../etc'" },
	{ "empty model name", "[model]\nname =\n", "t:2:", "invalid model name ''" },
	{ "model name like a digest", "[model]\nname = " DATA "\n",
	  "t:2:", "looks like a blob digest" },
	{ "chunk_size not a power of two", "[model]\nname = a\nchunk_size = 12345\n",
	  "t:3:", "chunk_size = '12345' is not valid" },
	{ "chunk_size too small", "[model]\nname = a\nchunk_size = 2048\n", "t:3:", "chunk_size" },
	{ "chunk_size with suffix", "[model]\nname = a\nchunk_size = 1M\n", "t:3:", "chunk_size" },
	{ "chunk_size overflow", "[model]\nname = a\nchunk_size = 99999999999999999999999\n",
	  "t:3:", "chunk_size" },
	{ "chunk_size negative", "[model]\nname = a\nchunk_size = -4096\n", "t:3:", "chunk_size" },
	{ "size zero", MODEL_SECTION("a", META) "[blob " META "]\nsize = 0\n",
	  "t:6:", "size = '0' is not valid" },
	{ "size junk", MODEL_SECTION("a", META) "[blob " META "]\nsize = 12abc\n",
	  "t:6:", "size = '12abc'" },
	{ "size overflow",
	  MODEL_SECTION("a", META) "[blob " META "]\nsize = 18446744073709551616\n",
	  "t:6:", "size =" },
	{ "bad role", MODEL_SECTION("a", META) "[blob " META "]\nsize = 1\nrole = both\n",
	  "t:7:", "role = 'both' is not valid" },
	{ "model lacks name",
	  "[model]\nmeta = " META "\nchunk_size = 4096\n" BLOB(META, "1", "meta"),
	  "t:1:", "no 'name' key" },
	{ "model lacks meta", "[model]\nname = a\nchunk_size = 4096\n" BLOB(META, "1", "meta"),
	  "t:1:", "no 'meta' key" },
	{ "model lacks chunk_size", "[model]\nname = a\nmeta = " META "\n" BLOB(META, "1", "meta"),
	  "t:1:", "no 'chunk_size' key" },
	{ "model lacks keys at end of file", "# c\n[model]\nname = a\n", "t:2:", "no 'meta' key" },
	{ "empty blob section",
	  MODEL_SECTION("a", META) "[blob " META "]\n" BLOB(DATA, "1", "data"),
	  "t:5:", "has no 'size' key" },
	{ "blob lacks role", MODEL_SECTION("a", META) "[blob " META "]\nsize = 1\n",
	  "t:5:", "has no 'role' key" },
	{ "meta blob not listed", MODEL_SECTION("a", META) BLOB(DATA, "1", "data"),
	  "t:3:", "meta blob 111111111111... is not listed" },
	{ "meta blob with role data", MODEL_SECTION("a", META) BLOB(META, "1", "data"),
	  "t:7:", "has role = data" },
	{ "second meta blob",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") BLOB(DATA, "1", "meta"),
	  "t:10:", "has role = meta but" },
	{ "syntax error", MODEL_SECTION("a", META) "garbage\n" BLOB(META, "1", "meta"),
	  "t:5:", "syntax error" },
	{ "syntax error before a later error", "[model]\nname = a\njunk\nname = b\n",
	  "t:3:", "syntax error" },
	{ "syntax error inside a section missing keys", "[model]\nname = a\njunk\n",
	  "t:3:", "syntax error" },
	{ "section without ]", "[model\nname = a\n", "t:1:", "without ']'" },
	{ "text after section header", "[model] extra\nname = a\n", "t:1:", "text after section" },
	{ "indented continuation", "[model]\nname = a\n  b\n", "t:3:", "indented line" },
	{ "indented key", "[model]\n  name = a\n", "t:2:", "indented line" },
	{ "over-long line",
	  "[model]\n# "
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	  "xxxxx"
	  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	  "t:2:", "line longer than" },
	/* chunk digests (the meta blob is lines 5-7, the data blob from line 8) */
	{ "data blob without chunk digests",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") BLOB(DATA, "1", "data"),
	  "t:8:", "has no chunk digests (written by an older blobcachectl); republish" },
	{ "data blob with digest_chunk_size but no [chunks]",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta")
		  BLOB(DATA, "1", "data") "digest_chunk_size = 4096\n",
	  "t:11:", "no [chunks " DATA "] section" },
	{ "[chunks] before its [blob]",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") "[chunks " DATA "]\n" CA "\n" BLOB(
		  DATA, "1", "data") "digest_chunk_size = 4096\n",
	  "t:8:", "without a [blob 222222222222...] section before it" },
	{ "[chunks] not a digest", MODEL_SECTION("a", META) "[chunks 12]\n",
	  "t:5:", "section [chunks 12]: not a sha256 digest" },
	{ "[chunks] of a blob without digest_chunk_size",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") "[chunks " META "]\n" CA "\n",
	  "t:8:", "has no digest_chunk_size" },
	{ "duplicate [chunks]",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(DATA, "1", CA) "[chunks " DATA
										     "]\n" CA "\n",
	  "t:14:", "duplicate section [chunks 222222222222...] (first at line 12)" },
	{ "too few chunk digests",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta")
		  BLOB(DATA, "8193", "data") "digest_chunk_size = 4096\n[chunks " DATA "]\n" CA
					     "\n" CB "\n",
	  "t:12:",
	  "lists 2 digests but the blob needs 3 (ceil(size 8193 / digest_chunk_size 4096))" },
	{ "too few chunk digests before the next section",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta")
		  BLOB(DATA, "8192", "data") "digest_chunk_size = 4096\n[chunks " DATA "]\n" CA
					     "\n[blob " DATA2 "]\n",
	  "t:12:", "lists 1 digests but the blob needs 2" },
	{ "too many chunk digests",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta")
		  BLOB(DATA, "8192", "data") "digest_chunk_size = 4096\n[chunks " DATA "]\n" CA
					     "\n" CB "\n" CC "\n",
	  "t:15:", "more digests than the 2 the blob needs" },
	{ "chunk count the file cannot hold",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta")
		  BLOB(DATA, "18446744073709551615",
		       "data") "digest_chunk_size = 4096\n[chunks " DATA "]\n" CA "\n",
	  "t:12:", "must list 4503599627370496 digests" },
	{ "upper-case chunk digest",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(
		  DATA, "1", "A000000000000000000000000000000000000000000000000000000000000001"),
	  "t:13:", "is not a chunk digest" },
	{ "short chunk digest",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(DATA, "1", "a0"),
	  "t:13:", "'a0' in [chunks 222222222222...] is not a chunk digest" },
	{ "chunk digest with trailing text",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(DATA, "1", CA " ; x"),
	  "t:13:", "is not a chunk digest" },
	{ "key in [chunks]",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(DATA, "1", "size = 1"),
	  "t:13:", "'size = 1' in [chunks" },
	{ "indented chunk digest",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") DATA_BLOB1(DATA, "1", " " CA),
	  "t:13:", "indented line" },
	{ "digest_chunk_size not a power of two",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") "digest_chunk_size = 5000\n",
	  "t:8:", "digest_chunk_size = '5000' is not valid" },
	{ "digest_chunk_size too small",
	  MODEL_SECTION("a", META) BLOB(META, "1", "meta") "digest_chunk_size = 512\n",
	  "t:8:", "digest_chunk_size = '512'" },
	{ "duplicate digest_chunk_size",
	  MODEL_SECTION("a", META)
		  BLOB(META, "1", "meta") "digest_chunk_size = 4096\ndigest_chunk_size = 4096\n",
	  "t:9:", "duplicate key 'digest_chunk_size'" },
	{ "control bytes are not echoed", "[model]\nname = a\x01\x1b[2J\n",
	  "t:2:", "invalid model name 'a??[2J'" },
};

static void test_parse_malformed(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct catalogue_model m = { .n_blobs = 99 };
		char err[512] = "";
		int r = catalogue_parse_model(c->text, "t", &m, err, sizeof(err));

		print_message("case '%s': %s\n", c->what, err);
		assert_int_equal(r, -EINVAL);
		if (strncmp(err, c->where, strlen(c->where)) != 0 || err[strlen(c->where)] != ' ')
			fail_msg("case '%s': expected error at '%s', got '%s'", c->what, c->where,
				 err);
		if (!strstr(err, c->says))
			fail_msg("case '%s': expected '%s' in '%s'", c->what, c->says, err);
		/* nothing owned is left in the output on failure */
		assert_null(m.blobs);
		assert_int_equal(m.n_blobs, 0);
	}
}

/* A 1 GiB blob at 1 MiB chunks (1024 digests) and a 100 GiB one (102,400) in one entry: parsed
 * exactly, round trip exact, within the file size limit. */
static void test_parse_large_entry(void **state)
{
	const size_t n_small = 1024, n_big = 102400;
	struct catalogue_model m = { .chunk_size = 1048576, .n_blobs = 2 }, back;
	char *text, *text2, err[256];
	struct timespec t0, t1, t2;

	strcpy(m.name, "big");
	strcpy(m.meta, META);
	m.blobs = calloc(2, sizeof(*m.blobs));
	assert_non_null(m.blobs);
	strcpy(m.blobs[0].digest, META);
	m.blobs[0].role = BLOB_ROLE_META;
	m.blobs[0].size = (uint64_t)n_small << 20;
	m.blobs[0].n_chunk_digests = n_small;
	strcpy(m.blobs[1].digest, DATA);
	m.blobs[1].role = BLOB_ROLE_DATA;
	m.blobs[1].size = ((uint64_t)n_big << 20) - 4096; /* last chunk short */
	m.blobs[1].n_chunk_digests = n_big;
	for (size_t b = 0; b < 2; b++) {
		m.blobs[b].digest_chunk_size = 1048576;
		m.blobs[b].chunk_digests = calloc(m.blobs[b].n_chunk_digests, 32);
		assert_non_null(m.blobs[b].chunk_digests);
		for (size_t i = 0; i < m.blobs[b].n_chunk_digests; i++)
			for (size_t k = 0; k < 32; k++)
				m.blobs[b].chunk_digests[i][k] = (uint8_t)(i * 7 + k * 13 + b);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	text = catalogue_format_model(&m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_non_null(text);
	assert_true(strlen(text) < CATALOGUE_FILE_MAX);
	assert_int_equal(catalogue_parse_model(text, "big", &back, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	print_message("%zu + %zu chunk digests: %zu bytes, format %.1f ms, parse %.1f ms\n",
		      n_small, n_big, strlen(text),
		      (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
		      (t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) / 1e6);
	for (size_t b = 0; b < 2; b++) {
		assert_int_equal(back.blobs[b].n_chunk_digests, m.blobs[b].n_chunk_digests);
		assert_memory_equal(back.blobs[b].chunk_digests, m.blobs[b].chunk_digests,
				    m.blobs[b].n_chunk_digests * 32);
	}
	text2 = catalogue_format_model(&back);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	catalogue_model_free(&back);
	catalogue_model_free(&m);
}

static void test_parse_err_may_be_null(void **state)
{
	struct catalogue_model m;

	assert_int_equal(catalogue_parse_model("[model]\n", "t", &m, NULL, 0), -EINVAL);
	assert_int_equal(catalogue_parse_model(good, NULL, &m, NULL, 0), 0);
	catalogue_model_free(&m);
}

static void test_format_parse_round_trip(void **state)
{
	struct catalogue_model m, again;
	char *text, *text2;
	char err[256];

	assert_int_equal(catalogue_parse_model(good, "t", &m, err, sizeof(err)), 0);
	text = catalogue_format_model(&m);
	assert_non_null(text);
	assert_int_equal(catalogue_parse_model(text, "formatted", &again, err, sizeof(err)), 0);
	assert_string_equal(again.name, m.name);
	assert_string_equal(again.meta, m.meta);
	assert_int_equal(again.chunk_size, m.chunk_size);
	assert_int_equal(again.n_blobs, m.n_blobs);
	for (size_t i = 0; i < m.n_blobs; i++) {
		assert_string_equal(again.blobs[i].digest, m.blobs[i].digest);
		assert_int_equal(again.blobs[i].size, m.blobs[i].size);
		assert_int_equal(again.blobs[i].role, m.blobs[i].role);
		assert_int_equal(again.blobs[i].digest_chunk_size, m.blobs[i].digest_chunk_size);
		assert_int_equal(again.blobs[i].n_chunk_digests, m.blobs[i].n_chunk_digests);
		assert_memory_equal(again.blobs[i].chunk_digests, m.blobs[i].chunk_digests,
				    m.blobs[i].n_chunk_digests * 32);
	}
	text2 = catalogue_format_model(&again);
	assert_string_equal(text, text2); /* formatting is canonical */
	free(text);
	free(text2);
	catalogue_model_free(&m);
	catalogue_model_free(&again);
}

/* A catalogue of two models built by parsing. */
static void test_index_write_and_parse(void **state)
{
	char dir[] = "/tmp/test-index.XXXXXX", path[128], *text = NULL, **names = NULL, err[128];
	size_t len = 0, n = 0;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	/* Only *.model files with valid names, sorted. */
	const char *files[] = { "zeta.model", "alpha.model", "not-a-model.txt", ".hidden.model" };
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	assert_int_equal(catalogue_write_index(dir), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, CATALOGUE_INDEX_NAME);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	assert_string_equal(text, CATALOGUE_INDEX_HEADER "\nalpha\nzeta\n");
	assert_int_equal(catalogue_parse_index(text, strlen(text), &names, &n, err, sizeof(err)),
			 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "alpha");
	assert_string_equal(names[1], "zeta");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(text);
	for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, CATALOGUE_INDEX_NAME);
	unlink(path);
	rmdir(dir);
}

static void test_index_refused(void **state)
{
	char **names = NULL, err[128];
	size_t n = 0;
	const char *bad_header = "models\nm\n", *bad_name = CATALOGUE_INDEX_HEADER "\nm\n../etc\n";

	assert_int_equal(
		catalogue_parse_index(bad_header, strlen(bad_header), &names, &n, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "line 1"));
	assert_int_equal(
		catalogue_parse_index(bad_name, strlen(bad_name), &names, &n, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "line 3"));
	assert_null(names);
	assert_int_equal(catalogue_parse_index("", 0, &names, &n, err, sizeof(err)), -EINVAL);
}

static void make_catalogue(struct catalogue *c)
{
	static const char second[] = MODEL_SECTION("other", META2) BLOB(META2, "8192", "meta")
		DATA_BLOB1(DATA2, "4096", CA);
	char err[256];

	c->n_models = 2;
	c->models = calloc(2, sizeof(*c->models));
	assert_non_null(c->models);
	assert_int_equal(catalogue_parse_model(good, "good", &c->models[0], err, sizeof(err)), 0);
	assert_int_equal(catalogue_parse_model(second, "second", &c->models[1], err, sizeof(err)),
			 0);
}

static void test_resolve(void **state)
{
	struct catalogue c;
	const struct catalogue_model *m = NULL;
	const struct catalogue_blob *b;

	make_catalogue(&c);

	b = catalogue_resolve(&c, "model123", 8, &m);
	assert_non_null(b);
	assert_string_equal(b->digest, META);
	assert_int_equal(b->role, BLOB_ROLE_META);
	assert_string_equal(m->name, "model123");

	m = NULL;
	b = catalogue_resolve(&c, DATA2, 64, &m);
	assert_non_null(b);
	assert_int_equal(b->size, 4096);
	assert_string_equal(m->name, "other");

	b = catalogue_resolve(&c, "other", 5, NULL);
	assert_non_null(b);
	assert_string_equal(b->digest, META2);

	/* unknown */
	assert_null(catalogue_resolve(&c, "nosuch", 6, NULL));
	assert_null(catalogue_resolve(&c, "model12", 7, NULL));
	assert_null(catalogue_resolve(&c, "model1234", 9, NULL));
	assert_null(catalogue_resolve(
		&c, "5555555555555555555555555555555555555555555555555555555555555555", 64, NULL));
	assert_null(catalogue_resolve(&c, "", 0, NULL));
	assert_null(catalogue_resolve(&c, "../model123", 11, NULL));
	assert_null(catalogue_resolve(NULL, "model123", 8, NULL));
	catalogue_free(&c);
}

static void test_resolve_key_not_nul_terminated(void **state)
{
	struct catalogue c;
	const struct catalogue_blob *b;
	char *key;

	make_catalogue(&c);
	/* exact-size heap buffers: under ASan/valgrind any read past len is caught */
	key = malloc(8);
	memcpy(key, "model123", 8);
	b = catalogue_resolve(&c, key, 8, NULL);
	assert_non_null(b);
	assert_string_equal(b->digest, META);
	free(key);

	key = malloc(64);
	memcpy(key, DATA, 64);
	b = catalogue_resolve(&c, key, 64, NULL);
	assert_non_null(b);
	assert_string_equal(b->digest, DATA);
	free(key);

	/* only len bytes count */
	b = catalogue_resolve(&c, "otherXYZ", 5, NULL);
	assert_non_null(b);
	assert_string_equal(b->digest, META2);
	catalogue_free(&c);
}

static void test_resolve_key_with_nul(void **state)
{
	struct catalogue c;
	char digest_nul[65];

	make_catalogue(&c);
	assert_null(catalogue_resolve(&c, "model123\0", 9, NULL));
	assert_null(catalogue_resolve(&c,
				      "model\0"
				      "123",
				      9, NULL));
	assert_null(catalogue_resolve(&c, "\0model123", 9, NULL));
	memcpy(digest_nul, DATA, 65);
	digest_nul[63] = '\0';
	assert_null(catalogue_resolve(&c, digest_nul, 64, NULL));
	catalogue_free(&c);
}

static void test_find_model(void **state)
{
	struct catalogue c;

	make_catalogue(&c);
	assert_non_null(catalogue_find_model(&c, "other"));
	assert_string_equal(catalogue_find_model(&c, "model123")->meta, META);
	assert_null(catalogue_find_model(&c, "model"));
	assert_null(catalogue_find_model(&c, NULL));
	catalogue_free(&c);
}

static void put(const char *dir, const char *name, const void *text, size_t len)
{
	char *p = test_path(dir, name);

	test_write_file(p, text, len);
	free(p);
}

#define PUT(dir, name, text) put(dir, name, text, strlen(text))

static void test_load_dir(void **state)
{
	char *dir = test_make_temp_dir();
	static const char zmodel[] = MODEL_SECTION("zeta", META2) BLOB(META2, "8192", "meta");
	static const char conflict[] = MODEL_SECTION("conflict", DATA2) BLOB(DATA2, "1", "meta")
		DATA_BLOB1(DATA, "999", CA); /* DATA is 3149824 bytes in model123 */
	/* the same size as in model123 and the same digest_chunk_size, other chunk digests */
	static const char other_digests[] =
		MODEL_SECTION("other-digests", META2) BLOB(META2, "8192", "meta")
			BLOB(DATA, "3149824", "data") "digest_chunk_size = 1048576\n"
						      "[chunks " DATA "]\n" CA "\n" CB "\n" CC
						      "\n" CE "\n";
	/* other digest_chunk_size: no conflict */
	static const char other_chunk_size[] =
		MODEL_SECTION("other-chunk-size", META2) BLOB(META2, "8192", "meta")
			BLOB(DATA, "3149824", "data") "digest_chunk_size = 2097152\n"
						      "[chunks " DATA "]\n" CA "\n" CB "\n";
	static const char with_nul[] = "[model]\nname = nul\0\n";
	struct catalogue c;
	char *sub;

	PUT(dir, "model123.model", good);
	PUT(dir, "zeta.model", zmodel);
	PUT(dir, "broken.model", "[model]\nname = broken\nthis is not ini\n");
	PUT(dir, "renamed.model", good); /* says name = model123 */
	PUT(dir, "conflict.model", conflict);
	PUT(dir, "other-digests.model", other_digests);
	PUT(dir, "other-chunk-size.model", other_chunk_size);
	put(dir, "nul.model", with_nul, sizeof(with_nul) - 1);
	PUT(dir, ".hidden.model", good);
	PUT(dir, "notes.txt", "not a model");
	PUT(dir, "model123.model.bak", good);
	sub = test_path(dir, "dir.model");
	assert_int_equal(mkdir(sub, 0755), 0);

	assert_int_equal(catalogue_load_dir(dir, &c), 0);
	/* lexical order; conflict (loaded before model123) wins DATA's size, so model123 and
	 * the others that list DATA with its real size are skipped: "conflict" < "model123" <
	 * "other-chunk-size" < "other-digests" < "zeta" */
	assert_int_equal(c.n_models, 2);
	assert_string_equal(c.models[0].name, "conflict");
	assert_string_equal(c.models[1].name, "zeta");
	catalogue_free(&c);

	/* without the conflicting file model123 loads, renamed.model still does not */
	char *p = test_path(dir, "conflict.model");
	unlink(p);
	free(p);
	/* model123 loads; other-digests disagrees with its chunk digests and is skipped */
	assert_int_equal(catalogue_load_dir(dir, &c), 0);
	assert_int_equal(c.n_models, 3);
	assert_string_equal(c.models[0].name, "model123");
	assert_string_equal(c.models[1].name, "other-chunk-size");
	assert_string_equal(c.models[2].name, "zeta");
	assert_non_null(catalogue_resolve(&c, "zeta", 4, NULL));
	catalogue_free(&c);

	free(sub);
	test_remove_tree(dir);
	free(dir);
}

static void test_load_dir_missing(void **state)
{
	struct catalogue c;

	assert_int_equal(catalogue_load_dir("/nonexistent/blobcache-catalogue", &c), -ENOENT);
	assert_int_equal(c.n_models, 0);
	assert_null(c.models);
}

static void test_write_model_atomic(void **state)
{
	char *dir = test_make_temp_dir();
	char *path = test_path(dir, "model123.model");
	char *keep = test_path(dir, "old-inode");
	struct catalogue_model m, loaded;
	char *text, *expected, err[256];

	assert_int_equal(catalogue_parse_model(good, "t", &m, err, sizeof(err)), 0);
	PUT(dir, "model123.model", "old content\n");
	assert_int_equal(link(path, keep), 0);

	assert_int_equal(catalogue_write_model(dir, &m), 0);
	text = test_read_file(path, NULL);
	expected = catalogue_format_model(&m);
	assert_string_equal(text, expected);
	/* replaced by rename, not rewritten in place: the old inode still has the old text */
	free(text);
	text = test_read_file(keep, NULL);
	assert_string_equal(text, "old content\n");
	/* no temporary file left: the entry and the hard link only */
	assert_int_equal(test_count_entries(dir), 2);
	assert_int_equal(catalogue_load_model_file(path, &loaded, err, sizeof(err)), 0);
	assert_string_equal(loaded.meta, META);
	catalogue_model_free(&loaded);

	/* an invalid model is refused and nothing is written */
	strcpy(m.name, "../evil");
	assert_int_equal(catalogue_write_model(dir, &m), -EINVAL);
	strcpy(m.name, "fresh");
	m.chunk_size = 1000;
	assert_int_equal(catalogue_write_model(dir, &m), -EINVAL);
	assert_int_equal(test_count_entries(dir), 2);
	assert_true(catalogue_write_model("/nonexistent/blobcache", &m) < 0);

	free(text);
	free(expected);
	free(path);
	free(keep);
	catalogue_model_free(&m);
	test_remove_tree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_index_write_and_parse),
		cmocka_unit_test(test_index_refused),
		cmocka_unit_test(test_parse_meta_without_chunk_digests),
		cmocka_unit_test(test_parse_large_entry),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_err_may_be_null),
		cmocka_unit_test(test_format_parse_round_trip),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_resolve_key_not_nul_terminated),
		cmocka_unit_test(test_resolve_key_with_nul),
		cmocka_unit_test(test_find_model),
		cmocka_unit_test(test_parse_in_place_blob),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_load_dir_missing),
		cmocka_unit_test(test_write_model_atomic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
