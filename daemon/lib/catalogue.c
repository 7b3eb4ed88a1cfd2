// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Catalogue files are parsed with inih, fed by our own line reader instead of
 * ini_parse_string() because the reader sees every raw line: it counts lines (the handler of
 * the distro's inih gets no line number), parses section headers itself (inih truncates
 * section names to 49 bytes, shorter than "blob <64 hex>") and rejects what inih would
 * silently accept (over-long lines split in two, indented continuation lines). The reader also
 * decodes the bare digest lines of [chunks] sections itself (inih has no syntax for them, and
 * 10,000s of them must parse fast) and hands inih an empty line in their place, so that inih's
 * line count stays right.
 */
#include "catalogue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "macros.h"

#define CATALOGUE_SUFFIX      ".model"
#define SECTION_TEXT_MAX      128
#define CHUNK_SIZE_MIN	      4096ULL
#define CHUNK_SIZE_MAX	      (4096ULL << 31) /* EROFS: chunk blkbits is a 5-bit field */
#define BLOB_SECTION_PREFIX   "blob"
#define CHUNKS_SECTION_PREFIX "chunks"

enum section_kind {
	SECTION_NONE,
	SECTION_MODEL,
	SECTION_BLOB,
	SECTION_CHUNKS,
};

struct blob_lines {
	int header;
	int size;
	int role;
	int digest_chunk_size;
	int path;
	int file_size;
	int chunks; /* line of the [chunks] header, 0 if none */
	size_t chunks_expected;
};

struct parse_ctx {
	const char *origin;
	const char *pos; /* next unread byte of the text */
	const char *end; /* its terminating NUL */
	int line;	 /* lines handed to inih so far */

	bool at_eof;	  /* every line has been handed to inih */
	int err_line;	  /* 0 while no error */
	int err_detected; /* line being read when the error was found (EOF: last + 1) */
	char *err;
	size_t err_len;

	enum section_kind section;
	int section_line;
	size_t blob_index;  /* current blob, if section == SECTION_BLOB or SECTION_CHUNKS */
	size_t chunks_seen; /* digest lines of the current [chunks] section */

	/* line of each [model] key, 0 if not seen */
	int model_line, name_line, meta_line, chunk_size_line;

	struct catalogue_model model;
	struct blob_lines *blob_lines; /* parallel to model.blobs */
	size_t blobs_alloc;
};

/* Copy untrusted text for a message: printable ASCII only, bounded. */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	if (s[i] && size > 4)
		memcpy(buf + size - 4, "...", 4);
	return buf;
}

_printf_(3, 4) static int parse_error(struct parse_ctx *c, int line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (c->err_line) /* keep the first error */
		return -EINVAL;
	c->err_line = line > 0 ? line : 1;
	c->err_detected = c->line + (c->at_eof ? 1 : 0);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->err_len)
		snprintf(c->err, c->err_len, "%s:%d: %s", c->origin, c->err_line, msg);
	return -EINVAL;
}

/* A decimal number: digits only, no sign, no suffix, no overflow. */
static int parse_decimal_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static bool is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == '\f' || ch == '\v';
}

static int check_section_complete(struct parse_ctx *c)
{
	const struct catalogue_blob *b;
	const struct blob_lines *bl;

	switch (c->section) {
	case SECTION_NONE:
		return 0;
	case SECTION_MODEL:
		if (!c->name_line)
			return parse_error(c, c->section_line,
					   "[model] has no 'name' key; add name = <model name>");
		if (!c->meta_line)
			return parse_error(c, c->section_line,
					   "[model] has no 'meta' key; add meta = <sha256 of the "
					   "metadata blob>");
		if (!c->chunk_size_line)
			return parse_error(c, c->section_line,
					   "[model] has no 'chunk_size' key; add chunk_size = "
					   "<EROFS chunk size in bytes>");
		return 0;
	case SECTION_BLOB:
		b = &c->model.blobs[c->blob_index];
		bl = &c->blob_lines[c->blob_index];
		if (!bl->size)
			return parse_error(c, bl->header,
					   "[blob %.12s...] has no 'size' key; add size = <bytes>",
					   b->digest);
		if (!bl->role)
			return parse_error(c, bl->header,
					   "[blob %.12s...] has no 'role' key; add role = meta or "
					   "role = data",
					   b->digest);
		return 0;
	case SECTION_CHUNKS:
		b = &c->model.blobs[c->blob_index];
		bl = &c->blob_lines[c->blob_index];
		if (c->chunks_seen != bl->chunks_expected)
			return parse_error(
				c, bl->chunks,
				"[chunks %.12s...] lists %zu digests but the blob needs "
				"%zu (ceil(size %llu / digest_chunk_size %llu)); republish "
				"the model",
				b->digest, c->chunks_seen, bl->chunks_expected,
				(unsigned long long)b->size,
				(unsigned long long)b->digest_chunk_size);
		c->model.blobs[c->blob_index].n_chunk_digests = c->chunks_seen;
		return 0;
	}
	return 0;
}

static int find_blob(const struct parse_ctx *c, const char *digest, size_t *index)
{
	for (size_t i = 0; i < c->model.n_blobs; i++)
		if (streq(c->model.blobs[i].digest, digest)) {
			*index = i;
			return 0;
		}
	return -ENOENT;
}

/* [chunks <digest>]: the blob's section came before, so the count of digests is known. */
static int begin_chunks_section(struct parse_ctx *c, const char *digest)
{
	struct catalogue_blob *b;
	struct blob_lines *bl;
	uint64_t n;
	size_t i;

	if (find_blob(c, digest, &i) < 0)
		return parse_error(c, c->line,
				   "[chunks %.12s...] without a [blob %.12s...] section before it; "
				   "put the blob's section first",
				   digest, digest);
	b = &c->model.blobs[i];
	bl = &c->blob_lines[i];
	if (bl->chunks)
		return parse_error(c, c->line,
				   "duplicate section [chunks %.12s...] (first at line %d); keep "
				   "one",
				   digest, bl->chunks);
	if (!bl->digest_chunk_size)
		return parse_error(c, c->line,
				   "[chunks %.12s...] but [blob %.12s...] (line %d) has no "
				   "digest_chunk_size; add digest_chunk_size = <bytes>",
				   digest, digest, bl->header);
	n = b->size / b->digest_chunk_size + (b->size % b->digest_chunk_size != 0);
	/* Every digest takes a line of >= 64 bytes: refuse before allocating for a count that
	 * the rest of the text cannot hold. */
	if (n > (uint64_t)(c->end - c->pos) / DIGEST_HEX_LEN + 1)
		return parse_error(c, c->line,
				   "[chunks %.12s...] must list %llu digests (ceil(size %llu / "
				   "digest_chunk_size %llu)) but the file is too short to hold "
				   "them; republish the model",
				   digest, (unsigned long long)n, (unsigned long long)b->size,
				   (unsigned long long)b->digest_chunk_size);
	b->chunk_digests = calloc((size_t)n, sizeof(*b->chunk_digests));
	if (!b->chunk_digests)
		return -ENOMEM;
	bl->chunks = c->line;
	bl->chunks_expected = (size_t)n;
	c->blob_index = i;
	c->chunks_seen = 0;
	c->section = SECTION_CHUNKS;
	return 0;
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* One line of a [chunks] section that is not blank, a comment or a section header: exactly
 * 64 lower-case hex digits, then only blanks. */
static int chunk_digest_line(struct parse_ctx *c, const char *s)
{
	struct catalogue_blob *b = &c->model.blobs[c->blob_index];
	const struct blob_lines *bl = &c->blob_lines[c->blob_index];
	uint8_t bin[CATALOGUE_DIGEST_SIZE];
	char shown[80];

	for (size_t i = 0; i < CATALOGUE_DIGEST_SIZE; i++) {
		int hi = hex_value(s[2 * i]), lo = hi < 0 ? -1 : hex_value(s[2 * i + 1]);
		if (lo < 0)
			goto bad;
		bin[i] = (uint8_t)(hi << 4 | lo);
	}
	for (const char *p = s + DIGEST_HEX_LEN; *p; p++)
		if (!is_blank(*p))
			goto bad;
	if (c->chunks_seen == bl->chunks_expected)
		return parse_error(
			c, c->line,
			"[chunks %.12s...] has more digests than the %zu the blob needs "
			"(ceil(size %llu / digest_chunk_size %llu)); republish the model",
			b->digest, bl->chunks_expected, (unsigned long long)b->size,
			(unsigned long long)b->digest_chunk_size);
	memcpy(b->chunk_digests[c->chunks_seen++], bin, sizeof(bin));
	return 0;
bad:
	printable(s, shown, sizeof(shown));
	for (size_t n = strlen(shown); n > 0 && (shown[n - 1] == '?' || shown[n - 1] == ' '); n--)
		shown[n - 1] = '\0'; /* the line's end: \n, \r, blanks */
	return parse_error(c, c->line,
			   "'%s' in [chunks %.12s...] is not a chunk digest; expected 64 "
			   "lower-case hex digits alone on the line",
			   shown, b->digest);
}

static int begin_blob_section(struct parse_ctx *c, const char *digest)
{
	struct catalogue_model *m = &c->model;

	for (size_t i = 0; i < m->n_blobs; i++)
		if (streq(m->blobs[i].digest, digest))
			return parse_error(c, c->line,
					   "duplicate section [blob %.12s...] (first at line %d); "
					   "merge the two",
					   digest, c->blob_lines[i].header);
	if (m->n_blobs == c->blobs_alloc) {
		size_t n = c->blobs_alloc ? c->blobs_alloc * 2 : 4;
		struct catalogue_blob *nb = reallocarray(m->blobs, n, sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		m->blobs = nb;
		struct blob_lines *nl = reallocarray(c->blob_lines, n, sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		c->blob_lines = nl;
		c->blobs_alloc = n;
	}
	c->blob_index = m->n_blobs++;
	memset(&m->blobs[c->blob_index], 0, sizeof(m->blobs[0]));
	memcpy(m->blobs[c->blob_index].digest, digest, DIGEST_HEX_LEN);
	c->blob_lines[c->blob_index] = (struct blob_lines){ .header = c->line };
	c->section = SECTION_BLOB;
	return 0;
}

/* A line starting with '[' (after blanks); `s` points at the '['. */
static int begin_section(struct parse_ctx *c, const char *s)
{
	char name[SECTION_TEXT_MAX], shown[80];
	const char *end = strchr(s, ']');
	const char *rest;
	size_t len;
	int r;

	if (!end)
		return parse_error(c, c->line,
				   "section header without ']'; write [model] or "
				   "[blob <sha256 hex>]");
	for (rest = end + 1; is_blank(*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#')
		return parse_error(c, c->line,
				   "text after section header; put it on a line of its own");
	len = (size_t)(end - s - 1);
	if (len >= sizeof(name))
		return parse_error(
			c, c->line,
			"section name too long; expected [model] or [blob <sha256 hex>]");
	memcpy(name, s + 1, len);
	name[len] = '\0';

	r = check_section_complete(c);
	if (r < 0)
		return r;

	if (streq(name, "model")) {
		if (c->model_line)
			return parse_error(c, c->line,
					   "duplicate section [model] (first at line %d); a file "
					   "describes one model, merge the two",
					   c->model_line);
		c->model_line = c->line;
		c->section = SECTION_MODEL;
		c->section_line = c->line;
		return 0;
	}
	for (size_t k = 0; k < 2; k++) {
		const char *prefix = k == 0 ? BLOB_SECTION_PREFIX : CHUNKS_SECTION_PREFIX;
		size_t plen = strlen(prefix);
		const char *digest = name + plen;

		if (strncmp(name, prefix, plen) != 0 || (*digest != ' ' && *digest != '\t'))
			continue;
		while (*digest == ' ' || *digest == '\t')
			digest++;
		if (!name_is_digest(digest, strlen(digest)))
			return parse_error(c, c->line,
					   "section [%s %s]: not a sha256 digest; expected 64 "
					   "lower-case hex digits",
					   prefix, printable(digest, shown, sizeof(shown)));
		c->section_line = c->line;
		return k == 0 ? begin_blob_section(c, digest) : begin_chunks_section(c, digest);
	}
	return parse_error(c, c->line,
			   "unknown section [%s]; expected [model], [blob <sha256 hex>] or "
			   "[chunks <sha256 hex>]",
			   printable(name, shown, sizeof(shown)));
}

/* fgets-like reader over the text, one line per call. */
static char *catalogue_reader(char *str, int num, void *stream)
{
	struct parse_ctx *c = stream;
	const char *nl, *s;
	size_t n;

	if (c->err_line)
		return NULL; /* stop at the first error */
	if (!*c->pos) {
		c->at_eof = true;
		check_section_complete(c);
		c->section = SECTION_NONE;
		return NULL;
	}
	nl = strchr(c->pos, '\n');
	n = nl ? (size_t)(nl - c->pos) + 1 : strlen(c->pos);
	c->line++;
	if (num < 2 || n > (size_t)num - 1) {
		parse_error(c, c->line, "line longer than %d bytes; shorten it", num - 2);
		return NULL;
	}
	memcpy(str, c->pos, n);
	str[n] = '\0';
	c->pos += n;

	for (s = str; *s == ' ' || *s == '\t'; s++)
		;
	if (s != str && !is_blank(*s) && *s != '\0' && *s != ';' && *s != '#') {
		parse_error(c, c->line,
			    "indented line (continuation lines are not supported); remove the "
			    "leading whitespace");
		return NULL;
	}
	if (*s == '[') {
		if (begin_section(c, s) < 0) {
			if (!c->err_line)
				parse_error(c, c->line, "out of memory");
			return NULL;
		}
	} else if (c->section == SECTION_CHUNKS && !is_blank(*s) && *s && *s != ';' && *s != '#') {
		if (chunk_digest_line(c, s) < 0)
			return NULL;
		strcpy(str, "\n"); /* decoded: inih sees an empty line */
	}
	return str;
}

static int model_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct catalogue_model *m = &c->model;
	char shown[80];
	int *line;

	if (streq(key, "name"))
		line = &c->name_line;
	else if (streq(key, "meta"))
		line = &c->meta_line;
	else if (streq(key, "chunk_size"))
		line = &c->chunk_size_line;
	else
		return parse_error(c, c->line,
				   "unknown key '%s' in [model]; expected name, meta or chunk_size",
				   printable(key, shown, sizeof(shown)));
	if (*line)
		return parse_error(c, c->line,
				   "duplicate key '%s' in [model] (first at line %d); keep one",
				   key, *line);
	*line = c->line;

	if (streq(key, "name")) {
		if (!name_is_valid_model(value, strlen(value)))
			return parse_error(c, c->line,
					   "invalid model name '%s'; use 1-%d characters of "
					   "A-Z a-z 0-9 . _ -, starting with a letter or digit",
					   printable(value, shown, sizeof(shown)), MODEL_NAME_MAX);
		if (name_is_digest(value, strlen(value)))
			return parse_error(c, c->line,
					   "model name '%s' looks like a blob digest, which makes "
					   "cookie keys ambiguous; choose another name",
					   value);
		strcpy(m->name, value);
	} else if (streq(key, "meta")) {
		if (!name_is_digest(value, strlen(value)))
			return parse_error(
				c, c->line,
				"meta = '%s' is not a sha256 digest; expected 64 lower-case "
				"hex digits",
				printable(value, shown, sizeof(shown)));
		strcpy(m->meta, value);
	} else {
		uint64_t v;
		if (parse_decimal_u64(value, &v) < 0 || v < CHUNK_SIZE_MIN || v > CHUNK_SIZE_MAX ||
		    (v & (v - 1)))
			return parse_error(
				c, c->line,
				"chunk_size = '%s' is not valid; expected a power of two "
				"between 4096 and %llu, in bytes (e.g. 1048576)",
				printable(value, shown, sizeof(shown)),
				(unsigned long long)CHUNK_SIZE_MAX);
		m->chunk_size = v;
	}
	return 0;
}

static int blob_key(struct parse_ctx *c, const char *key, const char *value)
{
	struct catalogue_blob *b = &c->model.blobs[c->blob_index];
	struct blob_lines *bl = &c->blob_lines[c->blob_index];
	char shown[80];
	int *line;

	if (streq(key, "size"))
		line = &bl->size;
	else if (streq(key, "role"))
		line = &bl->role;
	else if (streq(key, "digest_chunk_size"))
		line = &bl->digest_chunk_size;
	else if (streq(key, "path"))
		line = &bl->path;
	else if (streq(key, "file_size"))
		line = &bl->file_size;
	else
		return parse_error(c, c->line,
				   "unknown key '%s' in [blob %.12s...]; expected size, role, "
				   "digest_chunk_size, path or file_size",
				   printable(key, shown, sizeof(shown)), b->digest);
	if (*line)
		return parse_error(c, c->line,
				   "duplicate key '%s' in [blob %.12s...] (first at line %d); "
				   "keep one",
				   key, b->digest, *line);
	*line = c->line;

	if (streq(key, "size")) {
		if (parse_decimal_u64(value, &b->size) < 0 || b->size == 0)
			return parse_error(c, c->line,
					   "size = '%s' is not valid; expected the blob's size in "
					   "bytes, a decimal number > 0",
					   printable(value, shown, sizeof(shown)));
	} else if (streq(key, "digest_chunk_size")) {
		uint64_t v;
		if (parse_decimal_u64(value, &v) < 0 || v < CHUNK_SIZE_MIN || v > CHUNK_SIZE_MAX ||
		    (v & (v - 1)))
			return parse_error(
				c, c->line,
				"digest_chunk_size = '%s' is not valid; expected a power of two "
				"between 4096 and %llu, in bytes (e.g. 1048576)",
				printable(value, shown, sizeof(shown)),
				(unsigned long long)CHUNK_SIZE_MAX);
		b->digest_chunk_size = v;
	} else if (streq(key, "path")) {
		if (!catalogue_path_is_valid(value))
			return parse_error(c, c->line,
					   "path = '%s' is not valid; expected a relative path "
					   "beneath the origin root, without . or .. components",
					   printable(value, shown, sizeof(shown)));
		snprintf(b->path, sizeof(b->path), "%s", value);
	} else if (streq(key, "file_size")) {
		if (parse_decimal_u64(value, &b->file_size) < 0 || b->file_size == 0)
			return parse_error(
				c, c->line,
				"file_size = '%s' is not valid; expected the file's size "
				"in bytes, a decimal number > 0",
				printable(value, shown, sizeof(shown)));
	} else if (streq(value, "meta")) {
		b->role = BLOB_ROLE_META;
	} else if (streq(value, "data")) {
		b->role = BLOB_ROLE_DATA;
	} else {
		return parse_error(c, c->line, "role = '%s' is not valid; expected meta or data",
				   printable(value, shown, sizeof(shown)));
	}
	return 0;
}

/* inih convention: non-zero on success. */
static int catalogue_handler(void *user, const char *section_unused, const char *key,
			     const char *value)
{
	struct parse_ctx *c = user;
	char shown[80];
	int r;

	switch (c->section) {
	case SECTION_MODEL:
		r = model_key(c, key, value);
		break;
	case SECTION_BLOB:
		r = blob_key(c, key, value);
		break;
	default:
		r = parse_error(c, c->line,
				"key '%s' outside any section; put it under [model] or "
				"[blob <sha256 hex>]",
				printable(key, shown, sizeof(shown)));
		break;
	}
	return r == 0;
}

/* Whole-file rules, once every section parsed. */
static int check_model(struct parse_ctx *c)
{
	const struct catalogue_model *m = &c->model;
	bool meta_listed = false;

	if (!c->model_line)
		return parse_error(
			c, c->line,
			"no [model] section; add [model] with name, meta and chunk_size");
	for (size_t i = 0; i < m->n_blobs; i++) {
		const struct catalogue_blob *b = &m->blobs[i];
		bool is_meta = streq(b->digest, m->meta);

		if (is_meta && b->role != BLOB_ROLE_META)
			return parse_error(c, c->blob_lines[i].role,
					   "blob %.12s... is the model's meta blob but has role = "
					   "data; set role = meta",
					   b->digest);
		if (!is_meta && b->role == BLOB_ROLE_META)
			return parse_error(c, c->blob_lines[i].role,
					   "blob %.12s... has role = meta but [model] meta names "
					   "%.12s...; a model has one meta blob, set role = data",
					   b->digest, m->meta);
		meta_listed |= is_meta;
	}
	if (!meta_listed)
		return parse_error(c, c->meta_line,
				   "meta blob %.12s... is not listed; add a [blob %s] section with "
				   "size and role = meta",
				   m->meta, m->meta);
	for (size_t i = 0; i < m->n_blobs; i++) {
		const struct catalogue_blob *b = &m->blobs[i];
		const struct blob_lines *bl = &c->blob_lines[i];

		if (bl->digest_chunk_size && !bl->chunks)
			return parse_error(c, bl->digest_chunk_size,
					   "blob %.12s... has digest_chunk_size but no [chunks %s] "
					   "section; republish the model",
					   b->digest, b->digest);
		if (!bl->path != !bl->file_size)
			return parse_error(c, bl->path ? bl->path : bl->file_size,
					   "blob %.12s... has %s without %s; an in-place blob has "
					   "both, republish the model",
					   b->digest, bl->path ? "path" : "file_size",
					   bl->path ? "file_size" : "path");
		if (bl->path && (b->role != BLOB_ROLE_DATA || b->size % 4096 ||
				 b->file_size > b->size || b->size - b->file_size >= 4096))
			return parse_error(c, bl->path,
					   "in-place blob %.12s... must be a data blob whose size "
					   "(%llu) is its file_size (%llu) rounded up to 4096; "
					   "republish the model",
					   b->digest, (unsigned long long)b->size,
					   (unsigned long long)b->file_size);
		/* Data from the origin is served only once proven by its chunk digest. */
		if (b->role == BLOB_ROLE_DATA && !bl->chunks)
			return parse_error(
				c, bl->header,
				"data blob %.12s... has no chunk digests (written by an "
				"older blobcachectl); republish the model with this version: "
				"blobcachectl publish --force ...",
				b->digest);
	}
	return 0;
}

int catalogue_parse_model(const char *text, const char *origin, struct catalogue_model *out,
			  char *err, size_t err_len)
{
	struct parse_ctx c = {
		.origin = origin ? origin : "catalogue",
		.pos = text ? text : "",
		.err = err,
		.err_len = err_len,
	};
	int r;

	if (err && err_len)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	c.end = c.pos + strlen(c.pos);

	r = ini_parse_stream(catalogue_reader, &c, catalogue_handler, &c);
	if (r == -2) {
		r = -ENOMEM;
		goto fail;
	}
	/* inih reports the first line it could not parse (or whose handler failed); an error
	 * of ours found only later (e.g. a section's missing key, at its end) yields to it. */
	c.at_eof = true;
	if (r > 0 && (!c.err_line || r < c.err_detected)) {
		c.err_line = 0;
		parse_error(&c, r,
			    "syntax error; expected [section], key = value, or a comment "
			    "starting with # or ;");
	}
	if (c.err_line || check_model(&c) < 0) {
		r = -EINVAL;
		goto fail;
	}
	free(c.blob_lines);
	*out = c.model;
	return 0;
fail:
	free(c.blob_lines);
	catalogue_model_free(&c.model);
	return r;
}

char *catalogue_format_model(const struct catalogue_model *m)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *f;
	bool ok;

	f = open_memstream(&buf, &size);
	if (!f)
		return NULL;
	fprintf(f,
		"# blobcache model entry (written by blobcachectl publish)\n"
		"[model]\n"
		"name = %s\n"
		"meta = %s\n"
		"chunk_size = %llu\n",
		m->name, m->meta, (unsigned long long)m->chunk_size);
	for (size_t i = 0; i < m->n_blobs; i++) {
		const struct catalogue_blob *b = &m->blobs[i];

		fprintf(f, "\n[blob %s]\nsize = %llu\nrole = %s\n", b->digest,
			(unsigned long long)b->size, b->role == BLOB_ROLE_META ? "meta" : "data");
		if (b->digest_chunk_size)
			fprintf(f, "digest_chunk_size = %llu\n",
				(unsigned long long)b->digest_chunk_size);
		if (b->path[0])
			fprintf(f, "path = %s\nfile_size = %llu\n", b->path,
				(unsigned long long)b->file_size);
	}
	/* Digests after all blob sections: the small part of the file stays readable at the top. */
	for (size_t i = 0; i < m->n_blobs; i++) {
		const struct catalogue_blob *b = &m->blobs[i];

		if (!b->chunk_digests || !b->n_chunk_digests)
			continue;
		fprintf(f, "\n[chunks %s]\n", b->digest);
		for (size_t j = 0; j < b->n_chunk_digests; j++) {
			static const char digits[] = "0123456789abcdef";
			char line[DIGEST_HEX_LEN + 1];

			for (size_t k = 0; k < CATALOGUE_DIGEST_SIZE; k++) {
				line[2 * k] = digits[b->chunk_digests[j][k] >> 4];
				line[2 * k + 1] = digits[b->chunk_digests[j][k] & 0xf];
			}
			line[DIGEST_HEX_LEN] = '\n';
			fwrite(line, 1, sizeof(line), f);
		}
	}
	ok = !ferror(f);
	if (fclose(f) != 0 || !ok)
		return NULL;
	return TAKE_PTR(buf);
}

static int read_small_file(int dirfd, const char *name, char **out)
{
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t got = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	if (st.st_size > CATALOGUE_FILE_MAX)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break; /* shrank meanwhile: parse what is there */
		got += (size_t)n;
	}
	if (memchr(buf, '\0', got))
		return -EILSEQ;
	buf[got] = '\0';
	*out = TAKE_PTR(buf);
	return 0;
}

int catalogue_load_model_file(const char *path, struct catalogue_model *out, char *err,
			      size_t err_len)
{
	_cleanup_free_ char *text = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = read_small_file(AT_FDCWD, path, &text);
	if (r < 0) {
		if (err && err_len)
			snprintf(err, err_len, "%s: %s", path,
				 r == -EILSEQ	? "contains a NUL byte, not a catalogue file"
				 : r == -EFBIG	? "larger than 64 MiB, not a catalogue file"
				 : r == -EBADFD ? "not a regular file"
						: strerror(-r));
		return r;
	}
	return catalogue_parse_model(text, path, out, err, err_len);
}

static int model_file_filter(const struct dirent *d)
{
	size_t len = strlen(d->d_name), sl = strlen(CATALOGUE_SUFFIX);

	return d->d_name[0] != '.' && len > sl && streq(d->d_name + len - sl, CATALOGUE_SUFFIX);
}

static int compare_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name); /* lexical, not locale order */
}

bool catalogue_path_is_valid(const char *path)
{
	size_t len = strnlen(path, CATALOGUE_PATH_MAX);
	const char *comp = path;

	if (len == 0 || len >= CATALOGUE_PATH_MAX || path[0] == ' ' || path[len - 1] == ' ')
		return false;
	for (const char *p = path;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - comp);

			if (n == 0 || (n == 1 && comp[0] == '.') ||
			    (n == 2 && comp[0] == '.' && comp[1] == '.'))
				return false;
			if (*p == '\0')
				return true;
			comp = p + 1;
			continue;
		}
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ';' || *p == '#' || *p == '\\')
			return false;
	}
}

static bool blobs_disagree(const struct catalogue_blob *a, const struct catalogue_blob *b)
{
	if (a->size != b->size)
		return true;
	/* Chunk digests of the same chunk size are a function of the content too. */
	return a->digest_chunk_size && a->digest_chunk_size == b->digest_chunk_size &&
	       a->n_chunk_digests == b->n_chunk_digests &&
	       memcmp(a->chunk_digests, b->chunk_digests,
		      a->n_chunk_digests * sizeof(*a->chunk_digests)) != 0;
}

/* A blob name is the digest of its content, so two models cannot disagree on its size (or its
 * chunk digests). Returns the blob of `m` in conflict, with the loaded one in *loaded. */
static const struct catalogue_blob *find_size_conflict(const struct catalogue *c,
						       const struct catalogue_model *m,
						       const struct catalogue_blob **loaded,
						       const struct catalogue_model **loaded_model)
{
	for (size_t i = 0; i < m->n_blobs; i++) {
		const struct catalogue_blob *b =
			catalogue_resolve(c, m->blobs[i].digest, DIGEST_HEX_LEN, loaded_model);
		if (b && blobs_disagree(b, &m->blobs[i])) {
			*loaded = b;
			return &m->blobs[i];
		}
	}
	return NULL;
}

static int load_one(int dirfd, const char *dir, const char *file, struct catalogue *out)
{
	_cleanup_free_ char *text = NULL, *origin = NULL;
	struct catalogue_model m = { 0 };
	const struct catalogue_model *other = NULL;
	const struct catalogue_blob *conflict, *loaded = NULL;
	struct catalogue_model *models;
	char err[512];
	size_t stem_len = strlen(file) - strlen(CATALOGUE_SUFFIX);
	int r;

	if (asprintf(&origin, "%s/%s", dir, file) < 0) {
		origin = NULL;
		return -ENOMEM;
	}
	r = read_small_file(dirfd, file, &text);
	switch (r) {
	case 0:
		break;
	case -ENOMEM:
		return r;
	case -EILSEQ:
		log_error("%s: contains a NUL byte, not a catalogue file; skipped", origin);
		out->n_skipped++;
		return 0;
	case -EFBIG:
		log_error("%s: larger than %d bytes, not a catalogue file; skipped", origin,
			  CATALOGUE_FILE_MAX);
		out->n_skipped++;
		return 0;
	case -EBADFD:
		log_error("%s: not a regular file; skipped", origin);
		out->n_skipped++;
		return 0;
	default:
		log_error_errno(r, "%s: cannot read, skipped", origin);
		out->n_skipped++;
		return 0;
	}

	r = catalogue_parse_model(text, origin, &m, err, sizeof(err));
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		log_error("%s; model skipped", err);
		out->n_skipped++;
		return 0;
	}
	if (strlen(m.name) != stem_len || strncmp(m.name, file, stem_len) != 0) {
		log_error("%s: model name '%s' differs from the file name; rename the file to "
			  "%s%s or fix name =; model skipped",
			  origin, m.name, m.name, CATALOGUE_SUFFIX);
		catalogue_model_free(&m);
		out->n_skipped++;
		return 0;
	}
	conflict = find_size_conflict(out, &m, &loaded, &other);
	if (conflict) {
		log_error("%s: blob %s has size %llu here but %llu in model '%s'%s; one of the "
			  "entries is corrupt, republish it; model skipped",
			  origin, conflict->digest, (unsigned long long)conflict->size,
			  (unsigned long long)loaded->size, other->name,
			  conflict->size == loaded->size ? " (same size, other chunk digests)"
							 : "");
		catalogue_model_free(&m);
		out->n_skipped++;
		return 0;
	}
	models = reallocarray(out->models, out->n_models + 1, sizeof(*models));
	if (!models) {
		catalogue_model_free(&m);
		return -ENOMEM;
	}
	out->models = models;
	out->models[out->n_models++] = m;
	return 0;
}

int catalogue_load_dir(const char *dir, struct catalogue *out)
{
	_cleanup_close_ int dirfd = -EBADF;
	struct dirent **list = NULL;
	int n, r = 0;

	memset(out, 0, sizeof(*out));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return log_error_errno(errno, "catalogue directory %s", dir);
	n = scandir(dir, &list, model_file_filter, compare_names);
	if (n < 0)
		return log_error_errno(errno, "catalogue directory %s", dir);
	for (int i = 0; i < n; i++) {
		if (r == 0)
			r = load_one(dirfd, dir, list[i]->d_name, out);
		free(list[i]);
	}
	free(list);
	if (r < 0) {
		catalogue_free(out);
		return log_error_errno(r, "loading catalogue %s", dir);
	}
	return 0;
}

int catalogue_write_model(const char *dir, const struct catalogue_model *m)
{
	_cleanup_free_ char *text = NULL, *path = NULL;
	struct catalogue_model check;
	char err[512];
	int r;

	if (!name_is_valid_model(m->name, strnlen(m->name, sizeof(m->name))))
		return -EINVAL;
	text = catalogue_format_model(m);
	if (!text)
		return -ENOMEM;
	/* Never write what the daemon would refuse to load. */
	r = catalogue_parse_model(text, m->name, &check, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "refusing to write model entry: %s", err);
	catalogue_model_free(&check);
	if (asprintf(&path, "%s/%s%s", dir, m->name, CATALOGUE_SUFFIX) < 0)
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text));
}

const struct catalogue_blob *catalogue_resolve(const struct catalogue *c, const char *key,
					       size_t len, const struct catalogue_model **model_out)
{
	if (!c || !key)
		return NULL;
	if (name_is_digest(key, len)) {
		for (size_t i = 0; i < c->n_models; i++) {
			const struct catalogue_model *m = &c->models[i];
			for (size_t j = 0; j < m->n_blobs; j++) {
				if (memcmp(m->blobs[j].digest, key, DIGEST_HEX_LEN) == 0) {
					if (model_out)
						*model_out = m;
					return &m->blobs[j];
				}
			}
		}
		return NULL;
	}
	if (!name_is_valid_model(key, len))
		return NULL;
	for (size_t i = 0; i < c->n_models; i++) {
		const struct catalogue_model *m = &c->models[i];
		if (strnlen(m->name, sizeof(m->name)) != len || memcmp(m->name, key, len) != 0)
			continue;
		for (size_t j = 0; j < m->n_blobs; j++) {
			if (streq(m->blobs[j].digest, m->meta)) {
				if (model_out)
					*model_out = m;
				return &m->blobs[j];
			}
		}
		return NULL;
	}
	return NULL;
}

const struct catalogue_model *catalogue_find_model(const struct catalogue *c, const char *name)
{
	if (!c || !name)
		return NULL;
	for (size_t i = 0; i < c->n_models; i++)
		if (streq(c->models[i].name, name))
			return &c->models[i];
	return NULL;
}

int catalogue_blob_copy(struct catalogue_blob *dst, const struct catalogue_blob *src)
{
	*dst = *src;
	dst->chunk_digests = NULL;
	if (!src->chunk_digests || !src->n_chunk_digests) {
		dst->n_chunk_digests = 0;
		return 0;
	}
	dst->chunk_digests = malloc(src->n_chunk_digests * sizeof(*src->chunk_digests));
	if (!dst->chunk_digests) {
		memset(dst, 0, sizeof(*dst));
		return -ENOMEM;
	}
	memcpy(dst->chunk_digests, src->chunk_digests,
	       src->n_chunk_digests * sizeof(*src->chunk_digests));
	return 0;
}

void catalogue_blob_release(struct catalogue_blob *b)
{
	if (!b)
		return;
	free(b->chunk_digests);
	b->chunk_digests = NULL;
	b->n_chunk_digests = 0;
}

void catalogue_model_free(struct catalogue_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_blobs; i++)
		catalogue_blob_release(&m->blobs[i]);
	free(m->blobs);
	m->blobs = NULL;
	m->n_blobs = 0;
}

void catalogue_free(struct catalogue *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_models; i++)
		catalogue_model_free(&c->models[i]);
	free(c->models);
	c->models = NULL;
	c->n_models = 0;
}

/* ---- the origin's model index ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int catalogue_write_index(const char *models_dir)
{
	_cleanup_free_ char *path = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0, len = 0;
	char *text = NULL;
	FILE *f;
	DIR *dir;
	struct dirent *de;
	int r = 0;

	dir = opendir(models_dir);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name), sl = strlen(CATALOGUE_SUFFIX);
		if (l <= sl || strcmp(de->d_name + l - sl, CATALOGUE_SUFFIX) != 0 ||
		    !name_is_valid_model(de->d_name, l - sl))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 16) * sizeof(*names));
			if (!nn) {
				r = -ENOMEM;
				break;
			}
			names = nn;
			cap = cap ? cap * 2 : 16;
		}
		if (!(names[n] = strndup(de->d_name, l - sl))) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(dir);
	if (r == 0 && n)
		qsort(names, n, sizeof(*names), cmp_str);
	f = r == 0 ? open_memstream(&text, &len) : NULL;
	if (r == 0 && !f)
		r = -ENOMEM;
	if (f) {
		fputs(CATALOGUE_INDEX_HEADER "\n", f);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%s\n", names[i]);
		if (fclose(f) != 0)
			r = -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (r == 0 && asprintf(&path, "%s/%s", models_dir, CATALOGUE_INDEX_NAME) < 0)
		r = -ENOMEM;
	if (r == 0)
		r = write_file_atomic(path, text, len);
	free(text);
	return r;
}

int catalogue_parse_index(const char *text, size_t len, char ***out, size_t *n_out, char *err,
			  size_t err_len)
{
	char **names = NULL;
	size_t n = 0, line = 0;
	const char *p = text, *end = text + len;

	*out = NULL;
	*n_out = 0;
	if (memchr(text, '\0', len)) {
		snprintf(err, err_len, "a NUL byte in the index");
		return -EINVAL;
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		if (line == 1 && (l != strlen(CATALOGUE_INDEX_HEADER) ||
				  memcmp(p, CATALOGUE_INDEX_HEADER, l) != 0)) {
			snprintf(err, err_len, "line 1: not a model index (expected \"%s\")",
				 CATALOGUE_INDEX_HEADER);
			goto fail;
		}
		if (line > 1 && l > 0) {
			char **nn;
			if (!name_is_valid_model(p, l)) {
				snprintf(err, err_len, "line %zu: not a model name: \"%.*s\"", line,
					 (int)MIN(l, 64), p);
				goto fail;
			}
			if (n >= CATALOGUE_INDEX_MAX) {
				snprintf(err, err_len, "more than %d models", CATALOGUE_INDEX_MAX);
				goto fail;
			}
			nn = realloc(names, (n + 1) * sizeof(*names));
			if (!nn || !(nn[n] = strndup(p, l))) {
				names = nn ? nn : names;
				snprintf(err, err_len, "out of memory");
				goto fail;
			}
			names = nn;
			n++;
		}
		p += l + (nl ? 1 : 0);
	}
	if (line == 0) {
		snprintf(err, err_len, "empty index");
		goto fail;
	}
	*out = names;
	*n_out = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return -EINVAL;
}
