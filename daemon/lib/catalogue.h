/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The catalogue: which models exist and which blobs make them up.
 *
 * One file per model, NAME.model, in a directory (the daemon's `catalogue` setting;
 * `blobcachectl publish` also writes one into ORIGIN/models/). INI syntax (inih):
 *
 *   # written by blobcachectl publish
 *   [model]
 *   name = model123            ; the fsid given at mount time; must equal the file name
 *   meta = <64 hex>            ; digest of the metadata (primary) blob
 *   chunk_size = 1048576       ; EROFS chunk size the image was built with
 *
 *   [blob <64 hex>]            ; one section per blob, the metadata blob included
 *   size = 3149824             ; bytes
 *   role = data                ; meta | data
 *   digest_chunk_size = 1048576 ; bytes covered by each chunk digest (power of two >= 4096)
 *
 *   path = models/llama/model-00001-of-00002.safetensors  ; optional, see below
 *   file_size = 3147000        ; with path only: the file's bytes (size rounds it up to 4096)
 *
 *   [chunks <64 hex>]          ; after that blob's section: sha256 of each digest chunk
 *   <64 hex>                   ; chunk 0 = bytes [0, 1048576)
 *   <64 hex>                   ; ... one bare digest per line, in order, no other text
 *   <64 hex>
 *   <64 hex>                   ; the last chunk: the remaining bytes, not padded
 *
 * A [chunks] section lists exactly ceil(size / digest_chunk_size) digests. Whatever the origin
 * returns is checked against them before the kernel sees it (daemon/lib/verify.h), so a data
 * blob must have them; entries without are from an older blobcachectl and must be republished.
 * The meta blob may have them (publish writes them for both) and is also checked whole against
 * its name. Bare digest lines keep the file small (65 bytes per chunk: 1024 chunk digests of
 * a 1 GiB blob take 66 KiB) and are decoded by the line reader, never handed to inih.
 *
 * Blobs live on the origin as blobs/sha256/<hex> (the OCI image-layout path), except in-place
 * blobs (`blobcachectl publish --in-place`): a data blob with `path` is that file beneath the
 * origin root, zero-padded from file_size up to size (a multiple of 4096, as EROFS devices are
 * read in whole blocks); its digest and chunk digests cover the padded bytes. The file can be
 * changed on the share after publish: the chunk digests catch it, the reader gets EIO.
 * The blob name is the sha256 of its content, so a size is stable per name (the kernel's
 * only coherency check).
 *
 * Resolution of an OPEN's cookie key (catalogue_resolve): a model name resolves to that
 * model's metadata blob; a 64-hex digest listed by any model resolves to that blob.
 * Anything else is unknown (-ENOENT), decided without touching the origin.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"

enum blob_role {
	BLOB_ROLE_META,
	BLOB_ROLE_DATA,
};

/* Largest model file read: ~1M chunk digests, i.e. 1 TiB of blobs at 1 MiB chunks. */
#define CATALOGUE_FILE_MAX (64 * 1024 * 1024)

#define CATALOGUE_DIGEST_SIZE 32 /* binary sha256 */
/* Bytes of an in-place blob's path, NUL included: "path = " and the path fit the 200-byte
 * catalogue line (inih's INI_MAX_LINE). */
#define CATALOGUE_PATH_MAX 192

struct catalogue_blob {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;
	enum blob_role role;
	uint64_t digest_chunk_size; /* 0: no chunk digests (allowed for the meta blob only) */
	size_t n_chunk_digests;	    /* ceil(size / digest_chunk_size), or 0 */
	uint8_t (*chunk_digests)[CATALOGUE_DIGEST_SIZE]; /* owned by the model (or the copy) */
	char path[CATALOGUE_PATH_MAX]; /* in-place blob: its path beneath the origin; "" if none */
	uint64_t file_size;	       /* in-place blob: the file's size (<= size) */
};

/* Is `path` usable as an in-place blob's path: relative, 1..CATALOGUE_PATH_MAX-1 bytes, no
 * empty, "." or ".." component, no control character, none of ; # \ (the catalogue's comment
 * and escape characters), no space at either end? */
bool catalogue_path_is_valid(const char *path);

struct catalogue_model {
	char name[MODEL_NAME_MAX + 1];
	char meta[DIGEST_HEX_LEN + 1];
	uint64_t chunk_size;
	size_t n_blobs;
	struct catalogue_blob *blobs; /* owned */
};

struct catalogue {
	size_t n_models;
	struct catalogue_model *models; /* owned */
	size_t n_skipped; /* files of the directory that could not be loaded (logged) */
};

/* Deep copy of a blob, with its own chunk digests: what outlives a catalogue reload (the
 * daemon's per-object state) must hold a copy, not a pointer into the catalogue or a plain
 * struct assignment. Returns 0, or -ENOMEM with *dst zeroed. Release with
 * catalogue_blob_release(). */
int catalogue_blob_copy(struct catalogue_blob *dst, const struct catalogue_blob *src);

/* Free what a blob owns (its chunk digests) and zero them; the struct itself is the caller's.
 * NULL and released blobs are fine. */
void catalogue_blob_release(struct catalogue_blob *b);

/* Parse the text of one model file. `origin` names the source in error messages.
 * On error returns -EINVAL and writes "origin:line: what is wrong" into err (if err_len > 0).
 * The model must name a meta blob that it lists, with role=meta; every digest valid; sizes > 0.
 * A model name that is itself a 64-hex digest is refused (cookie keys would be ambiguous).
 * Every data blob has chunk digests, and every [chunks] section exactly
 * ceil(size / digest_chunk_size) of them. */
int catalogue_parse_model(const char *text, const char *origin, struct catalogue_model *out,
			  char *err, size_t err_len);

/* Read (at most CATALOGUE_FILE_MAX bytes, no NUL bytes, regular file) and parse one model file.
 * Returns 0; -EINVAL with "path:line: ..." in err; or -errno if it cannot be read (err says why).
 */
int catalogue_load_model_file(const char *path, struct catalogue_model *out, char *err,
			      size_t err_len);

/* Format a model as the file text above; returns a malloc'd string or NULL (ENOMEM). */
char *catalogue_format_model(const struct catalogue_model *m);

/* Load every *.model file of a directory (lexical order). Files that fail to parse are
 * logged and skipped (one bad file must not hide the others); a file whose name differs from
 * its [model] name is skipped too, and so is one that lists a blob already loaded with another
 * size or other chunk digests of the same digest_chunk_size. Returns 0, or -errno if the directory
 * cannot be read. */
int catalogue_load_dir(const char *dir, struct catalogue *out);

/* Write a model file atomically (temp file, fsync, rename) into dir as NAME.model. */
int catalogue_write_model(const char *dir, const struct catalogue_model *m);

/* The origin's model index, <origin>/models/index: CATALOGUE_INDEX_HEADER, then one model name
 * per line, sorted. publish and unpublish rewrite it (from the *.model files there); a node
 * with [origin] catalogue = yes reads it to learn the models (an HTTP origin cannot list). */
#define CATALOGUE_INDEX_NAME   "index"
#define CATALOGUE_INDEX_HEADER "# blobcached model index v1"
#define CATALOGUE_INDEX_MAX    65536
int catalogue_write_index(const char *models_dir);
/* Pure: parse an index. Returns 0 with *out (each name and the array malloc'd) and *n, or
 * -EINVAL with the reason ("line N: ...") in err. */
int catalogue_parse_index(const char *text, size_t len, char ***out, size_t *n, char *err,
			  size_t err_len);

/* Resolve a cookie key (not NUL-terminated, `len` bytes). Returns the blob or NULL.
 * If `model_out` is not NULL it receives the model the blob was found in. */
const struct catalogue_blob *catalogue_resolve(const struct catalogue *c, const char *key,
					       size_t len,
					       const struct catalogue_model **model_out);

const struct catalogue_model *catalogue_find_model(const struct catalogue *c, const char *name);

void catalogue_model_free(struct catalogue_model *m);
void catalogue_free(struct catalogue *c);
