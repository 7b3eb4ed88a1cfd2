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

#define PUBLISH_DEFAULT_CHUNK_SIZE   (1024 * 1024)
#define PUBLISH_DEFAULT_IN_PLACE_MIN (1024 * 1024)
#define PUBLISH_IN_PLACE_SMALL_MAX   (64ULL * 1024 * 1024) /* --in-place-min ceiling */

struct publish_options {
	const char *name;	   /* model name (the fsid at mount time) */
	const char *source_dir;	   /* directory tree to publish */
	const char *origin_dir;	   /* gets blobs/sha256/<hex> and models/NAME.model */
	const char *catalogue_dir; /* optional: also write NAME.model here */
	uint64_t chunk_size;	   /* power of two >= 4096 */
	bool force;		   /* replace a model entry of different content */
	const char *mkfs_path;	   /* NULL: MKFS_EROFS_PATH from configure */
	/* --in-place: source_dir lies beneath origin_dir; files of in_place_min bytes or more
	 * stay where they are (each an in-place blob, read once to digest it), smaller ones
	 * are packed into the metadata blob. No mkfs.erofs: erofs_write.h writes the image. */
	bool in_place;
	uint64_t in_place_min;
};

struct publish_in_place_stats {
	size_t large_files, small_files, dirs;
	size_t devices; /* in-place blobs: large files of identical content share one */
	uint64_t large_bytes, small_bytes;
	uint64_t origin_bytes; /* written to the origin: new metadata blob + model entry */
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
	struct publish_in_place_stats in_place; /* with opts->in_place */
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

/* The same digests of the file zero-padded to a multiple of 4096 bytes (an in-place blob's
 * content as EROFS reads it); *file_size is the file's own size. */
int publish_sha256_file_padded(const char *path, uint64_t chunk_size, char *hex,
			       uint64_t *file_size,
			       uint8_t (**chunk_digests)[CATALOGUE_DIGEST_SIZE], size_t *n_chunks);

/* --in-place, the part before anything is stored: walk opts->source_dir (which must resolve
 * beneath origin_root, both real paths) and write the metadata image (*meta, *meta_len,
 * malloc'd) and the in-place data blobs in device order (*blobs, *n_blobs: catalogue blobs
 * with path, file_size and chunk digests; free with catalogue_blob_release + free). Refuses,
 * with a message naming the file and the fix, a symlink leading outside origin_root or to a
 * directory, a special file, a path the catalogue cannot hold. Returns 0 or -errno. */
int publish_build_in_place(const struct publish_options *opts, const char *origin_root,
			   const char *source, uint8_t **meta, size_t *meta_len,
			   struct catalogue_blob **blobs, size_t *n_blobs,
			   struct publish_in_place_stats *stats);

/* The filesystem UUID used for a model's image: derived from the name so that publishing
 * the same content twice gives identical blobs. out: 37 bytes. */
void publish_model_uuid(const char *name, char *out);
