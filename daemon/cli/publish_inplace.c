// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * publish --in-place: the image of a model directory that already lies beneath the origin
 * root, without copying its large files. Each large file becomes an extra EROFS device of its
 * own (its chunk-based inode maps onto it), named in the device table by the sha256 of its
 * content zero-padded to a whole block, and listed in the catalogue as an in-place blob with
 * its path beneath the origin. Small files go into the metadata blob itself. Every file is
 * read once: large ones to digest them (whole and per chunk), small ones to pack them.
 */
#include "cli/publish.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "erofs_write.h"
#include "io.h"
#include "log.h"
#include "macros.h"

struct walk {
	const struct publish_options *o;
	const char *root; /* the origin root, a real path */
	size_t root_len;
	struct erofs_writer *w;
	struct catalogue_blob *blobs; /* device i + 1 is blobs[i] */
	size_t n_blobs, alloc_blobs;
	struct publish_in_place_stats *st;
};

/* The part of real path `real` beneath the origin root, or NULL if it is not beneath it. */
static const char *beneath_root(const struct walk *wk, const char *real)
{
	if (wk->root_len == 1) /* the root is "/" */
		return real[0] == '/' && real[1] ? real + 1 : NULL;
	if (strncmp(real, wk->root, wk->root_len) != 0 || real[wk->root_len] != '/' ||
	    !real[wk->root_len + 1])
		return NULL;
	return real + wk->root_len + 1;
}

static int read_small(const char *path, uint64_t size, uint8_t **out)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (!buf)
		return -ENOMEM;
	n = pread_full(fd, buf, size, 0);
	if (n < 0)
		return (int)n;
	if ((uint64_t)n != size)
		return -EAGAIN; /* changed while we read it */
	*out = TAKE_PTR(buf);
	return 0;
}

static int add_small(struct walk *wk, int parent, const char *name, const char *real,
		     const struct stat *st)
{
	_cleanup_free_ uint8_t *data = NULL;
	int r;

	r = read_small(real, (uint64_t)st->st_size, &data);
	if (r == -EAGAIN)
		return log_error_errno(EAGAIN, "%s changed while it was read; publish again", real);
	if (r < 0)
		return log_error_errno(r, "cannot read %s", real);
	r = erofs_writer_add_file_inline(wk->w, parent, name, st->st_mode, data,
					 (uint64_t)st->st_size);
	if (r < 0)
		return log_error_errno(r, "cannot add %s to the image", real);
	wk->st->small_files++;
	wk->st->small_bytes += (uint64_t)st->st_size;
	return 0;
}

static int add_large(struct walk *wk, int parent, const char *name, const char *real,
		     const struct stat *st)
{
	const char *rel = beneath_root(wk, real);
	_cleanup_free_ uint8_t(*chunks)[CATALOGUE_DIGEST_SIZE] = NULL;
	char hex[DIGEST_HEX_LEN + 1];
	uint64_t file_size, padded;
	size_t n_chunks, dev;
	struct catalogue_blob *b;
	int r;

	if (!rel)
		return log_error_errno(EXDEV,
				       "%s is not beneath the origin root %s: an in-place blob is "
				       "served by its path there; move it there or publish without "
				       "--in-place",
				       real, wk->root);
	if (!catalogue_path_is_valid(rel))
		return log_error_errno(
			EINVAL,
			"%s: its path beneath the origin root cannot be named in "
			"the catalogue (over %d bytes, or one of ; # \\ or a control "
			"character, or spaces at either end): rename it, raise "
			"--in-place-min above its size (%lld) to pack it, or publish "
			"without --in-place",
			real, CATALOGUE_PATH_MAX - 1, (long long)st->st_size);
	r = publish_sha256_file_padded(real, wk->o->chunk_size, hex, &file_size, &chunks,
				       &n_chunks);
	if (r < 0)
		return log_error_errno(r, "cannot read %s", real);
	if (file_size != (uint64_t)st->st_size)
		return log_error_errno(EAGAIN, "%s changed while it was read; publish again", real);
	padded = ALIGN_UP(file_size, 4096ULL);
	if (padded / 4096 > UINT32_MAX)
		return log_error_errno(EFBIG, "%s is larger than EROFS can map (16 TiB)", real);

	/* Large files of identical content share one blob (and one cache object). */
	for (dev = 0; dev < wk->n_blobs; dev++)
		if (streq(wk->blobs[dev].digest, hex))
			break;
	if (dev == wk->n_blobs) {
		if (wk->n_blobs == wk->alloc_blobs) {
			size_t alloc = wk->alloc_blobs ? 2 * wk->alloc_blobs : 16;
			void *p = reallocarray(wk->blobs, alloc, sizeof(*wk->blobs));

			if (!p)
				return -ENOMEM;
			wk->blobs = p;
			wk->alloc_blobs = alloc;
		}
		r = erofs_writer_add_device(wk->w, hex, (uint32_t)(padded / 4096));
		if (r == -E2BIG)
			return log_error_errno(E2BIG,
					       "the model has more than %u large files of distinct "
					       "content: raise --in-place-min, or publish without "
					       "--in-place",
					       EROFS_W_DEVICES_MAX);
		if (r < 0)
			return log_error_errno(r, "cannot add a device for %s", real);
		b = &wk->blobs[wk->n_blobs++];
		*b = (struct catalogue_blob){
			.size = padded,
			.role = BLOB_ROLE_DATA,
			.digest_chunk_size = wk->o->chunk_size,
			.n_chunk_digests = n_chunks,
			.chunk_digests = TAKE_PTR(chunks),
			.file_size = file_size,
		};
		memcpy(b->digest, hex, sizeof(b->digest));
		snprintf(b->path, sizeof(b->path), "%s", rel);
		wk->st->devices++;
	}
	r = erofs_writer_add_file_chunked(wk->w, parent, name, st->st_mode, file_size,
					  (unsigned int)dev + 1, 0);
	if (r < 0)
		return log_error_errno(r, "cannot add %s to the image", real);
	wk->st->large_files++;
	wk->st->large_bytes += file_size;
	return 0;
}

static int compare_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dots(const struct dirent *d)
{
	return strcmp(d->d_name, ".") && strcmp(d->d_name, "..");
}

static void free_names(struct dirent **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int walk_dir(struct walk *wk, const char *dir, int node);

static int walk_entry(struct walk *wk, const char *dir, int node, const char *name)
{
	_cleanup_free_ char *full = NULL, *target = NULL;
	const char *real;
	struct stat st;
	int id;

	if (asprintf(&full, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	if (lstat(full, &st) < 0)
		return log_error_errno(errno, "%s", full);
	real = full;
	if (S_ISLNK(st.st_mode)) {
		/* A Hugging Face snapshot links each file to ../../blobs/<hash>: fine while the
		 * target stays beneath the origin root, where the daemon reads it. */
		target = realpath(full, NULL);
		if (!target)
			return log_error_errno(errno, "symlink %s does not resolve", full);
		if (!beneath_root(wk, target))
			return log_error_errno(EXDEV,
					       "symlink %s leads to %s, outside the origin root "
					       "%s: the daemon could not read it there; copy the "
					       "file into the model or publish without --in-place",
					       full, target, wk->root);
		if (stat(target, &st) < 0)
			return log_error_errno(errno, "%s", target);
		if (S_ISDIR(st.st_mode))
			return log_error_errno(EINVAL,
					       "symlink %s leads to directory %s: --in-place "
					       "follows symlinks to files only; replace it by the "
					       "directory",
					       full, target);
		real = target;
	}
	if (S_ISDIR(st.st_mode)) {
		id = erofs_writer_add_dir(wk->w, node, name, st.st_mode);
		if (id < 0)
			return log_error_errno(id, "cannot add %s to the image", full);
		wk->st->dirs++;
		return walk_dir(wk, full, id);
	}
	if (!S_ISREG(st.st_mode))
		return log_error_errno(EINVAL,
				       "%s is not a regular file, directory or symlink to a "
				       "file; remove it from the model",
				       full);
	if ((uint64_t)st.st_size < wk->o->in_place_min)
		return add_small(wk, node, name, real, &st);
	return add_large(wk, node, name, real, &st);
}

/* Entries in byte order: the image is a function of the tree alone. */
static int walk_dir(struct walk *wk, const char *dir, int node)
{
	struct dirent **names = NULL;
	int n, r = 0;

	n = scandir(dir, &names, not_dots, compare_names);
	if (n < 0)
		return log_error_errno(errno, "cannot read directory %s", dir);
	for (int i = 0; i < n && r >= 0; i++)
		r = walk_entry(wk, dir, node, names[i]->d_name);
	free_names(names, n);
	return r;
}

static void uuid_bytes(const char *name, uint8_t out[16])
{
	char text[37];
	size_t k = 0;

	publish_model_uuid(name, text);
	for (const char *p = text; *p && k < 16; p++) {
		unsigned int v;

		if (*p == '-')
			continue;
		sscanf(p, "%2x", &v);
		out[k++] = (uint8_t)v;
		p++;
	}
}

int publish_build_in_place(const struct publish_options *o, const char *origin_root,
			   const char *source, uint8_t **meta, size_t *meta_len,
			   struct catalogue_blob **blobs, size_t *n_blobs,
			   struct publish_in_place_stats *stats)
{
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = NULL;
	struct walk wk = {
		.o = o, .root = origin_root, .root_len = strlen(origin_root), .st = stats
	};
	char err[256] = "";
	uint8_t uuid[16];
	int r;

	*meta = NULL;
	*meta_len = 0;
	*blobs = NULL;
	*n_blobs = 0;
	memset(stats, 0, sizeof(*stats));
	if (!beneath_root(&wk, source))
		return log_error_errno(EXDEV,
				       "source directory %s is not beneath the origin directory %s "
				       "(both resolved): --in-place serves files by their path "
				       "beneath the origin; move the model there, or publish "
				       "without --in-place (which copies it)",
				       source, origin_root);
	uuid_bytes(o->name, uuid);
	w = erofs_writer_new(uuid, (unsigned int)__builtin_ctzll(o->chunk_size), 0);
	if (!w)
		return -ENOMEM;
	wk.w = w;
	r = walk_dir(&wk, source, EROFS_W_ROOT);
	if (r >= 0) {
		r = erofs_writer_build(w, meta, meta_len, err, sizeof(err));
		if (r < 0)
			log_error_errno(r, "cannot write the image: %s", err);
	}
	if (r < 0) {
		for (size_t i = 0; i < wk.n_blobs; i++)
			catalogue_blob_release(&wk.blobs[i]);
		free(wk.blobs);
		return r;
	}
	*blobs = wk.blobs;
	*n_blobs = wk.n_blobs;
	return 0;
}
