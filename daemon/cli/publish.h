/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Publishing a model: build an EROFS image of a directory with mkfs.erofs (metadata blob +
 * chunked data blob), tag the data blob's digest into the metadata blob's device slot 0,
 * store both blobs content-addressed on the origin and write the model's catalogue entry.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "catalogue.h"

#define PUBLISH_DEFAULT_CHUNK_SIZE (1024 * 1024)

struct publish_options {
	const char *name;	   /* model name (the fsid at mount time) */
	const char *source_dir;	   /* directory tree to publish */
	const char *origin_dir;	   /* gets blobs/sha256/<hex> and models/NAME.model */
	const char *catalogue_dir; /* optional: also write NAME.model here */
	uint64_t chunk_size;	   /* power of two >= 4096 */
	bool force;		   /* replace a model entry of different content */
	const char *mkfs_path;	   /* NULL: MKFS_EROFS_PATH from configure */
};

struct publish_blob_result {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;
	bool existed;		/* the origin already held this blob */
	size_t n_chunk_digests; /* sha256 of each --chunk-size piece, recorded in the model */
};

struct publish_result {
	struct catalogue_model model; /* owned; free with publish_result_free() */
	struct publish_blob_result meta, data;
	bool entry_unchanged; /* the origin's model entry already had this content */
};

/* Publish opts->name. Logs what went wrong and how to fix it, and returns -errno on failure
 * (-EINVAL bad argument, -ENOENT missing mkfs.erofs or source, -EEXIST a different model
 * entry exists and !force, ...). Nothing is left behind on failure: temporary files are
 * removed and blobs added by this call are unlinked again. */
int publish_model(const struct publish_options *opts, struct publish_result *result);

void publish_result_free(struct publish_result *result);

/* sha256 of a file's content as 64 lower-case hex digits (hex: 65 bytes) and its size. */
int publish_sha256_file(const char *path, char *hex, uint64_t *size);

/* The same in the same single pass, plus the sha256 of each `chunk_size` piece of the content
 * (the last one the remaining bytes, not padded): *chunk_digests gets a malloc'd array of
 * *n_chunks = ceil(size / chunk_size) digests (NULL and 0 for an empty file), the caller's to
 * free. Returns 0, -EINVAL (chunk_size 0), -ENOMEM, -EIO or the read's -errno. */
int publish_sha256_file_chunks(const char *path, uint64_t chunk_size, char *hex, uint64_t *size,
			       uint8_t (**chunk_digests)[CATALOGUE_DIGEST_SIZE], size_t *n_chunks);

/* The filesystem UUID used for a model's image: derived from the name so that publishing
 * the same content twice gives identical blobs. out: 37 bytes. */
void publish_model_uuid(const char *name, char *out);
