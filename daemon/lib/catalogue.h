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
 *   size = 4096                ; bytes
 *   role = meta                ; meta | data
 *
 * Blobs live on the origin as blobs/sha256/<hex> (the OCI image-layout path).
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

struct catalogue_blob {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;
	enum blob_role role;
};

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
};

/* Parse the text of one model file. `origin` names the source in error messages.
 * On error returns -EINVAL and writes "origin:line: what is wrong" into err (if err_len > 0).
 * The model must name a meta blob that it lists, with role=meta; every digest valid; sizes > 0.
 * A model name that is itself a 64-hex digest is refused (cookie keys would be ambiguous). */
int catalogue_parse_model(const char *text, const char *origin, struct catalogue_model *out,
			  char *err, size_t err_len);

/* Read (at most 1 MiB, no NUL bytes, regular file) and parse one model file. Returns 0;
 * -EINVAL with "path:line: ..." in err; or -errno if it cannot be read (err says why). */
int catalogue_load_model_file(const char *path, struct catalogue_model *out, char *err,
			      size_t err_len);

/* Format a model as the file text above; returns a malloc'd string or NULL (ENOMEM). */
char *catalogue_format_model(const struct catalogue_model *m);

/* Load every *.model file of a directory (lexical order). Files that fail to parse are
 * logged and skipped (one bad file must not hide the others); a file whose name differs from
 * its [model] name is skipped too. Returns 0, or -errno if the directory cannot be read. */
int catalogue_load_dir(const char *dir, struct catalogue *out);

/* Write a model file atomically (temp file, fsync, rename) into dir as NAME.model. */
int catalogue_write_model(const char *dir, const struct catalogue_model *m);

/* Resolve a cookie key (not NUL-terminated, `len` bytes). Returns the blob or NULL.
 * If `model_out` is not NULL it receives the model the blob was found in. */
const struct catalogue_blob *catalogue_resolve(const struct catalogue *c, const char *key,
					       size_t len,
					       const struct catalogue_model **model_out);

const struct catalogue_model *catalogue_find_model(const struct catalogue *c, const char *name);

void catalogue_model_free(struct catalogue_model *m);
void catalogue_free(struct catalogue *c);
