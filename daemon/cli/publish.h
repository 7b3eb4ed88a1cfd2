/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Publishing a model: write an EROFS image of a directory (erofs_write.h): a metadata blob, one
 * data blob per large file named by the sha256 of its content (so the same file in two models is
 * one blob, stored once and cached once on a node), and one packed blob of the small files; store
 * the blobs content-addressed on the origin and write the model's catalogue entry. --in-place
 * leaves the large files where they are instead of copying them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "catalogue.h"

#define PUBLISH_DEFAULT_CHUNK_SIZE   (1024 * 1024)
#define PUBLISH_DEFAULT_IN_PLACE_MIN (1024 * 1024)
#define PUBLISH_DEFAULT_BLOB_MIN     (1024 * 1024)
#define PUBLISH_IN_PLACE_SMALL_MAX   (64ULL * 1024 * 1024) /* --in-place-min ceiling */
/* --blob-min ceiling: the packed blob is fetched by range like any other, so no mount-time cost
 * bounds it; at 16T every file is packed (one data blob). */
#define PUBLISH_BLOB_MIN_MAX (16ULL << 40)

struct publish_options {
	const char *name;	   /* model name (the fsid at mount time) */
	const char *source_dir;	   /* directory tree to publish */
	const char *origin_dir;	   /* gets blobs/sha256/<hex> and models/NAME.model */
	const char *catalogue_dir; /* optional: also write NAME.model here */
	uint64_t chunk_size;	   /* power of two >= 4096 */
	bool force;		   /* replace a model entry of different content */
	/* Copying publish: files of blob_min bytes or more become a data blob each, named by
	 * the sha256 of their content zero-padded to a block; smaller ones (empty ones aside) are
	 * packed block by block into one more data blob. 0: PUBLISH_DEFAULT_BLOB_MIN. */
	uint64_t blob_min;
	/* --in-place: source_dir lies beneath origin_dir; files of in_place_min bytes or more
	 * stay where they are (each an in-place blob, read once to digest it), smaller ones
	 * are packed into the metadata blob. */
	bool in_place;
	uint64_t in_place_min;
};

struct publish_stats {
	size_t large_files, small_files, dirs;
	size_t devices; /* large-file blobs: large files of identical content share one */
	uint64_t large_bytes, small_bytes;
	size_t blobs_written, blobs_existed; /* data blobs stored by this publish / found there */
	uint64_t origin_bytes;		     /* written to the origin: new blobs + model entry */
};

struct publish_blob_result {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t size;
	bool existed;		/* the origin already held this blob */
	size_t n_chunk_digests; /* sha256 of each --chunk-size piece, recorded in the model */
};

struct publish_result {
	struct catalogue_model model; /* owned; free with publish_result_free() */
	struct publish_blob_result meta;
	bool entry_unchanged; /* the origin's model entry already had this content */
	struct publish_stats stats;
	bool *data_existed; /* copying: per data blob (model.blobs[i + 1]), found in the store */
};

/* Publish opts->name. Logs what went wrong and how to fix it, and returns -errno on failure
 * (-EINVAL bad argument, -ENOENT missing source, -EEXIST a different model entry exists and
 * !force, ...). Nothing is left behind on failure: temporary files are removed and blobs added
 * by this call are unlinked again. */
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

/* The image, before anything is stored: walk `source` (a real path) and write the metadata
 * image (*meta, *meta_len, malloc'd) and the data blobs in device order (*blobs, *n_blobs:
 * catalogue blobs with chunk digests; free with publish_image_free).
 * In place (opts->in_place; origin_root: the origin's real path, which must hold source): each
 * large file is an in-place blob (path, file_size); small files are inline in the metadata.
 * Copying (packed_path: a new file to write the packed blob into): large files are blobs whose
 * source file is (*sources)[i] (NULL for the packed blob), small ones are written block by block
 * into packed_path, which becomes the blob *packed (index into *blobs, or -1 if none).
 * Refuses, with a message naming the file and the fix, a symlink to a directory (or, in place,
 * leading outside origin_root), a special file, a path the catalogue cannot hold, more than
 * EROFS_W_DEVICES_MAX blobs. Returns 0 or -errno. */
struct publish_image {
	uint8_t *meta;
	size_t meta_len;
	struct catalogue_blob *blobs;
	size_t n_blobs;
	char **sources; /* copying: per blob, the file to copy into the store; NULL: packed */
	int packed;	/* copying: index of the packed blob in blobs, -1 if none */
};

int publish_build_image(const struct publish_options *opts, const char *origin_root,
			const char *source, const char *packed_path, struct publish_image *img,
			struct publish_stats *stats);

void publish_image_free(struct publish_image *img);

/* The filesystem UUID used for a model's image: derived from the name so that publishing
 * the same content twice gives identical blobs. out: 37 bytes. */
void publish_model_uuid(const char *name, char *out);
