// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The EROFS image of a model directory, written with erofs_write.h, in two layouts:
 *  - copying: each large file becomes a data blob of its own (an extra EROFS device) named by the
 *    sha256 of its content zero-padded to a whole block, so that the same file in two models is
 *    the same blob: stored once on the origin, one cache file on a node. The small files are
 *    written block by block into one packed blob (another device), so that a mount fetches only
 *    the metadata blob and the ranges it reads;
 *  - in place: each large file stays where it is beneath the origin root (an in-place blob with
 *    its path, the same digest as its copy would have); small files go into the metadata blob.
 * Every file is read once here: large ones to digest them (whole and per chunk), small ones to
 * pack them.
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

/* The packed blob's tag until its digest is known (any 1..64 bytes: replaced before build). */
#define PACKED_TAG_PENDING "packed"

struct walk {
	const struct publish_options *o;
	const char *root; /* in place: the origin root, a real path */
	size_t root_len;
	uint64_t large_min; /* files of this size or more are blobs of their own */
	struct erofs_writer *w;
	struct catalogue_blob *blobs; /* device i + 1 is blobs[i] */
	char **sources;		      /* copying: parallel to blobs */
	size_t n_blobs, alloc_blobs;
	int packed_fd; /* copying: the packed blob being written, or -1 (in place) */
	int packed;    /* index of the packed blob in blobs, -1 until the first small file */
	uint64_t packed_blocks;
	struct publish_stats *st;
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

static int blobs_grow(struct walk *wk)
{
	size_t alloc = wk->alloc_blobs ? 2 * wk->alloc_blobs : 16;
	void *p, *q;

	if (wk->n_blobs < wk->alloc_blobs)
		return 0;
	p = reallocarray(wk->blobs, alloc, sizeof(*wk->blobs));
	if (!p)
		return -ENOMEM;
	wk->blobs = p;
	q = reallocarray(wk->sources, alloc, sizeof(*wk->sources));
	if (!q)
		return -ENOMEM;
	wk->sources = q;
	wk->alloc_blobs = alloc;
	return 0;
}

static int add_device(struct walk *wk, const char *tag, uint32_t blocks, const char *real)
{
	int r = erofs_writer_add_device(wk->w, tag, blocks);

	if (r == -E2BIG)
		return log_error_errno(E2BIG,
				       "the model has more than %u large files of distinct "
				       "content: raise %s, or split the model",
				       EROFS_W_DEVICES_MAX,
				       wk->o->in_place ? "--in-place-min" : "--blob-min");
	if (r < 0)
		return log_error_errno(r, "cannot add a device for %s", real);
	return r;
}

/* Copying: a small file's blocks go into the packed blob, after the files before it. */
/* Copy a file's size bytes to the packed blob at off, a piece at a time: with a high
 * --blob-min a "small" file may be gigabytes. */
static int copy_into_packed(struct walk *wk, const char *real, uint64_t size, uint64_t off)
{
	const size_t piece = 1024 * 1024;
	_cleanup_close_ int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ uint8_t *buf = malloc(piece);
	uint64_t done = 0;

	if (fd < 0)
		return log_error_errno(errno, "cannot read %s", real);
	if (!buf)
		return -ENOMEM;
	while (done < size) {
		size_t want = size - done < piece ? (size_t)(size - done) : piece;
		ssize_t n = pread_full(fd, buf, want, (off_t)done), w;

		if (n < 0)
			return log_error_errno((int)n, "cannot read %s", real);
		if ((size_t)n != want)
			return log_error_errno(EAGAIN,
					       "%s changed while it was read; publish again", real);
		w = pwrite(wk->packed_fd, buf, want, (off_t)(off + done));
		if (w < 0 || (size_t)w != want)
			return log_error_errno(w < 0 ? errno : EIO, "cannot write the packed blob");
		done += want;
	}
	/* A file that grew meanwhile: its new bytes are not in the blob. */
	if (pread_full(fd, buf, 1, (off_t)size) != 0)
		return log_error_errno(EAGAIN, "%s changed while it was read; publish again", real);
	return 0;
}

static int add_packed(struct walk *wk, int parent, const char *name, const char *real,
		      const struct stat *st)
{
	uint64_t size = (uint64_t)st->st_size, blocks = ALIGN_UP(size, 4096ULL) / 4096;
	int r;

	if (wk->packed < 0) {
		r = blobs_grow(wk);
		if (r < 0)
			return r;
		r = add_device(wk, PACKED_TAG_PENDING, 1, real);
		if (r < 0)
			return r;
		wk->packed = (int)wk->n_blobs++;
		wk->blobs[wk->packed] = (struct catalogue_blob){ .role = BLOB_ROLE_DATA };
		wk->sources[wk->packed] = NULL;
	}
	if (wk->packed_blocks + blocks > UINT32_MAX)
		return log_error_errno(EFBIG,
				       "the small files exceed the 16 TiB EROFS can map in one "
				       "blob: lower --blob-min");
	r = copy_into_packed(wk, real, size, wk->packed_blocks * 4096);
	if (r < 0)
		return r;
	r = erofs_writer_add_file_chunked(wk->w, parent, name, st->st_mode, size,
					  (unsigned int)wk->packed + 1,
					  (uint32_t)wk->packed_blocks);
	if (r < 0)
		return log_error_errno(r, "cannot add %s to the image", real);
	wk->packed_blocks += blocks;
	return 0;
}

static int add_small(struct walk *wk, int parent, const char *name, const char *real,
		     const struct stat *st)
{
	_cleanup_free_ uint8_t *data = NULL;
	int r;

	if (wk->packed_fd >= 0 && st->st_size > 0) {
		r = add_packed(wk, parent, name, real, st);
		if (r < 0)
			return r;
	} else {
		r = read_small(real, (uint64_t)st->st_size, &data);
		if (r == -EAGAIN)
			return log_error_errno(EAGAIN,
					       "%s changed while it was read; publish again", real);
		if (r < 0)
			return log_error_errno(r, "cannot read %s", real);
		r = erofs_writer_add_file_inline(wk->w, parent, name, st->st_mode, data,
						 (uint64_t)st->st_size);
		if (r < 0)
			return log_error_errno(r, "cannot add %s to the image", real);
	}
	wk->st->small_files++;
	wk->st->small_bytes += (uint64_t)st->st_size;
	return 0;
}

static int add_large(struct walk *wk, int parent, const char *name, const char *real,
		     const struct stat *st)
{
	const char *rel = wk->root ? beneath_root(wk, real) : "";
	_cleanup_free_ uint8_t(*chunks)[CATALOGUE_DIGEST_SIZE] = NULL;
	char hex[DIGEST_HEX_LEN + 1];
	uint64_t file_size, padded;
	size_t n_chunks, dev;
	struct catalogue_blob *b;
	int r;

	if (wk->o->in_place && !rel)
		return log_error_errno(EXDEV,
				       "%s is not beneath the origin root %s: an in-place blob is "
				       "served by its path there; move it there or publish without "
				       "--in-place",
				       real, wk->root);
	if (wk->o->in_place && !catalogue_path_is_valid(rel))
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
		if ((int)dev != wk->packed && streq(wk->blobs[dev].digest, hex))
			break;
	if (dev == wk->n_blobs) {
		_cleanup_free_ char *copy_from = NULL;

		if (!wk->o->in_place && !(copy_from = strdup(real)))
			return -ENOMEM;
		r = blobs_grow(wk);
		if (r < 0)
			return r;
		r = add_device(wk, hex, (uint32_t)(padded / 4096), real);
		if (r < 0)
			return r;
		b = &wk->blobs[wk->n_blobs];
		wk->sources[wk->n_blobs++] = TAKE_PTR(copy_from);
		/* A copy holds the padded content: the same digest and bytes as in place. */
		*b = (struct catalogue_blob){
			.size = padded,
			.role = BLOB_ROLE_DATA,
			.digest_chunk_size = wk->o->chunk_size,
			.n_chunk_digests = n_chunks,
			.chunk_digests = TAKE_PTR(chunks),
			.file_size = wk->o->in_place ? file_size : 0,
		};
		memcpy(b->digest, hex, sizeof(b->digest));
		if (wk->o->in_place)
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
		if (wk->root && !beneath_root(wk, target))
			return log_error_errno(EXDEV,
					       "symlink %s leads to %s, outside the origin root "
					       "%s: the daemon could not read it there; copy the "
					       "file into the model or publish without --in-place",
					       full, target, wk->root);
		if (stat(target, &st) < 0)
			return log_error_errno(errno, "%s", target);
		if (S_ISDIR(st.st_mode))
			return log_error_errno(EINVAL,
					       "symlink %s leads to directory %s: publish "
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
	if ((uint64_t)st.st_size < wk->large_min)
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

static void walk_release(struct walk *wk)
{
	for (size_t i = 0; i < wk->n_blobs; i++) {
		catalogue_blob_release(&wk->blobs[i]);
		free(wk->sources[i]);
	}
	free(wk->blobs);
	free(wk->sources);
}

/* Copying: the packed blob is complete; name it by its digest. */
static int finish_packed(struct walk *wk, const char *packed_path)
{
	struct catalogue_blob *b = &wk->blobs[wk->packed];
	uint64_t size;
	int r;

	if (ftruncate(wk->packed_fd, (off_t)(wk->packed_blocks * 4096)) < 0 ||
	    fsync(wk->packed_fd) < 0)
		return log_error_errno(errno, "cannot write the packed blob %s", packed_path);
	r = publish_sha256_file_chunks(packed_path, wk->o->chunk_size, b->digest, &size,
				       &b->chunk_digests, &b->n_chunk_digests);
	if (r < 0)
		return log_error_errno(r, "cannot read %s", packed_path);
	if (size != wk->packed_blocks * 4096)
		return log_error_errno(EIO, "%s changed while it was written", packed_path);
	b->size = size;
	b->digest_chunk_size = wk->o->chunk_size;
	r = erofs_writer_set_device(wk->w, (unsigned int)wk->packed + 1, b->digest,
				    (uint32_t)wk->packed_blocks);
	return r < 0 ? log_error_errno(r, "cannot name the packed blob") : 0;
}

int publish_build_image(const struct publish_options *o, const char *origin_root,
			const char *source, const char *packed_path, struct publish_image *img,
			struct publish_stats *stats)
{
	_cleanup_(erofs_writer_freep) struct erofs_writer *w = NULL;
	_cleanup_close_ int packed_fd = -EBADF;
	struct walk wk = {
		.o = o,
		.root = o->in_place ? origin_root : NULL,
		.root_len = o->in_place ? strlen(origin_root) : 0,
		.large_min = o->in_place   ? o->in_place_min
			     : o->blob_min ? o->blob_min
					   : PUBLISH_DEFAULT_BLOB_MIN,
		.packed_fd = -1,
		.packed = -1,
		.st = stats,
	};
	char err[256] = "";
	uint8_t uuid[16];
	int r;

	memset(img, 0, sizeof(*img));
	img->packed = -1;
	memset(stats, 0, sizeof(*stats));
	if (o->in_place && !beneath_root(&wk, source))
		return log_error_errno(EXDEV,
				       "source directory %s is not beneath the origin directory %s "
				       "(both resolved): --in-place serves files by their path "
				       "beneath the origin; move the model there, or publish "
				       "without --in-place (which copies it)",
				       source, origin_root);
	if (!o->in_place) {
		packed_fd = open(packed_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (packed_fd < 0)
			return log_error_errno(errno, "cannot create %s", packed_path);
		wk.packed_fd = packed_fd;
	}
	uuid_bytes(o->name, uuid);
	w = erofs_writer_new(uuid, (unsigned int)__builtin_ctzll(o->chunk_size), 0);
	if (!w)
		return -ENOMEM;
	wk.w = w;
	r = walk_dir(&wk, source, EROFS_W_ROOT);
	if (r >= 0 && wk.packed >= 0)
		r = finish_packed(&wk, packed_path);
	if (r >= 0) {
		r = erofs_writer_build(w, &img->meta, &img->meta_len, err, sizeof(err));
		if (r < 0)
			log_error_errno(r, "cannot write the image: %s", err);
	}
	if (r < 0) {
		walk_release(&wk);
		return r;
	}
	img->blobs = wk.blobs;
	img->sources = wk.sources;
	img->n_blobs = wk.n_blobs;
	img->packed = wk.packed;
	return 0;
}

void publish_image_free(struct publish_image *img)
{
	for (size_t i = 0; i < img->n_blobs; i++) {
		catalogue_blob_release(&img->blobs[i]);
		if (img->sources)
			free(img->sources[i]);
	}
	free(img->blobs);
	free(img->sources);
	free(img->meta);
	memset(img, 0, sizeof(*img));
	img->packed = -1;
}
