// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/publish.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/gc.h"
#include "erofs.h"
#include "io.h"
#include "log.h"
#include "macros.h"

#define CHUNK_SIZE_MIN 4096ULL
#define CHUNK_SIZE_MAX (4096ULL << 31)

struct publish_state {
	uint8_t (*meta_chunk_digests)[CATALOGUE_DIGEST_SIZE]; /* until moved into the model */
	char *tmpdir;	  /* ORIGIN/.publish-NAME-XXXXXX: the blobs while they are written */
	char *tmp_meta;	  /* the metadata blob */
	char *tmp_packed; /* copying: the packed blob of the small files */
	char *tmp_copy;	  /* copying: the large file being copied */
	struct publish_image img;
	char **added; /* blobs this call moved into the origin, unlinked on failure */
	size_t n_added;
};

static void state_cleanup(struct publish_state *s, bool failed)
{
	char *tmp[] = { s->tmp_meta, s->tmp_packed, s->tmp_copy };

	for (size_t i = 0; i < ARRAY_SIZE(tmp); i++) {
		if (tmp[i])
			unlink(tmp[i]);
		free(tmp[i]);
	}
	if (s->tmpdir)
		rmdir(s->tmpdir);
	for (size_t i = 0; i < s->n_added; i++) {
		if (failed)
			unlink(s->added[i]);
		free(s->added[i]);
	}
	free(s->added);
	free(s->tmpdir);
	free(s->meta_chunk_digests);
	publish_image_free(&s->img);
	memset(s, 0, sizeof(*s));
}

/* Remember a blob this call stored (taking path), to unlink it if the publish fails. */
static int state_added(struct publish_state *s, char *path)
{
	char **a = reallocarray(s->added, s->n_added + 1, sizeof(*a));

	if (!a) {
		free(path);
		return -ENOMEM;
	}
	s->added = a;
	s->added[s->n_added++] = path;
	return 0;
}

static void to_hex(const unsigned char *bin, size_t len, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		hex[2 * i] = digits[bin[i] >> 4];
		hex[2 * i + 1] = digits[bin[i] & 0xf];
	}
	hex[2 * len] = '\0';
}

static void evp_md_ctx_freep(EVP_MD_CTX **ctx)
{
	EVP_MD_CTX_free(*ctx);
}

/* Growing array of chunk digests. */
struct chunk_list {
	uint8_t (*digests)[CATALOGUE_DIGEST_SIZE];
	size_t n, alloc;
};

static int chunk_list_finish_one(struct chunk_list *l, EVP_MD_CTX *ctx)
{
	unsigned int md_len = 0;

	if (l->n == l->alloc) {
		size_t alloc = l->alloc ? l->alloc * 2 : 64;
		void *d = reallocarray(l->digests, alloc, sizeof(*l->digests));
		if (!d)
			return -ENOMEM;
		l->digests = d;
		l->alloc = alloc;
	}
	if (EVP_DigestFinal_ex(ctx, l->digests[l->n], &md_len) != 1 ||
	    md_len != CATALOGUE_DIGEST_SIZE || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return -EIO;
	l->n++;
	return 0;
}

/* Feed the same bytes to the whole digest and, cut at chunk boundaries (a read may span
 * several chunks), to the chunk digests. */
static int hash_update(EVP_MD_CTX *ctx, EVP_MD_CTX *chunk_ctx, struct chunk_list *chunks,
		       uint64_t chunk_size, uint64_t *in_chunk, const unsigned char *buf, size_t n)
{
	int r;

	if (EVP_DigestUpdate(ctx, buf, n) != 1)
		return -EIO;
	for (size_t done = 0; chunks && done < n;) {
		uint64_t room = chunk_size - *in_chunk;
		size_t piece = n - done < room ? n - done : (size_t)room;

		if (EVP_DigestUpdate(chunk_ctx, buf + done, piece) != 1)
			return -EIO;
		done += piece;
		*in_chunk += piece;
		if (*in_chunk == chunk_size) {
			r = chunk_list_finish_one(chunks, chunk_ctx);
			if (r < 0)
				return r;
			*in_chunk = 0;
		}
	}
	return 0;
}

/* pad_block: digest the content zero-padded to a multiple of 4096 bytes (an in-place blob);
 * *size is the file's own size either way. */
static int sha256_file(const char *path, uint64_t chunk_size, bool pad_block, char *hex,
		       uint64_t *size, struct chunk_list *chunks)
{
	_cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = NULL, *chunk_ctx = NULL;
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ unsigned char *buf = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	uint64_t total = 0, in_chunk = 0; /* bytes of the current chunk hashed so far */
	const size_t buf_size = 1024 * 1024;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(buf_size);
	ctx = EVP_MD_CTX_new();
	if (chunks)
		chunk_ctx = EVP_MD_CTX_new();
	if (!buf || !ctx || (chunks && !chunk_ctx))
		return -ENOMEM;
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
	    (chunks && EVP_DigestInit_ex(chunk_ctx, EVP_sha256(), NULL) != 1))
		return -EIO;
	for (;;) {
		ssize_t n = read(fd, buf, buf_size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		r = hash_update(ctx, chunk_ctx, chunks, chunk_size, &in_chunk, buf, (size_t)n);
		if (r < 0)
			return r;
		total += (uint64_t)n;
	}
	if (pad_block && total % 4096) {
		memset(buf, 0, 4096);
		r = hash_update(ctx, chunk_ctx, chunks, chunk_size, &in_chunk, buf,
				4096 - total % 4096);
		if (r < 0)
			return r;
	}
	if (chunks && in_chunk) {
		r = chunk_list_finish_one(chunks, chunk_ctx);
		if (r < 0)
			return r;
	}
	if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != DIGEST_HEX_LEN / 2)
		return -EIO;
	to_hex(md, md_len, hex);
	if (size)
		*size = total;
	return 0;
}

int publish_sha256_file(const char *path, char *hex, uint64_t *size)
{
	return sha256_file(path, 0, false, hex, size, NULL);
}

static int sha256_chunks(const char *path, uint64_t chunk_size, bool pad_block, char *hex,
			 uint64_t *size, uint8_t (**chunk_digests)[CATALOGUE_DIGEST_SIZE],
			 size_t *n_chunks)
{
	struct chunk_list l = { 0 };
	int r;

	*chunk_digests = NULL;
	*n_chunks = 0;
	if (chunk_size == 0)
		return -EINVAL;
	r = sha256_file(path, chunk_size, pad_block, hex, size, &l);
	if (r < 0) {
		free(l.digests);
		return r;
	}
	*chunk_digests = l.digests;
	*n_chunks = l.n;
	return 0;
}

int publish_sha256_file_chunks(const char *path, uint64_t chunk_size, char *hex, uint64_t *size,
			       uint8_t (**chunk_digests)[CATALOGUE_DIGEST_SIZE], size_t *n_chunks)
{
	return sha256_chunks(path, chunk_size, false, hex, size, chunk_digests, n_chunks);
}

int publish_sha256_file_padded(const char *path, uint64_t chunk_size, char *hex,
			       uint64_t *file_size,
			       uint8_t (**chunk_digests)[CATALOGUE_DIGEST_SIZE], size_t *n_chunks)
{
	return sha256_chunks(path, chunk_size, true, hex, file_size, chunk_digests, n_chunks);
}

void publish_model_uuid(const char *name, char *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	_cleanup_free_ char *seed = NULL;
	char hex[33];

	if (asprintf(&seed, "blobcache-model-uuid:%s", name) < 0)
		seed = NULL;
	EVP_Digest(seed ? seed : name, strlen(seed ? seed : name), md, &md_len, EVP_sha256(), NULL);
	md[6] = (md[6] & 0x0f) | 0x80; /* RFC 9562 version 8: custom, name-derived */
	md[8] = (md[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	to_hex(md, 16, hex);
	snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static int mkdir_p(const char *path, mode_t mode)
{
	_cleanup_free_ char *copy = strdup(path);
	char *p;

	if (!copy)
		return -ENOMEM;
	for (p = copy + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *path)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* Is BLOBS/<digest> there with the right content? Then it is kept as it is (it may be in use),
 * with its modification time refreshed so that gc's grace period keeps it: 1. Absent, or its
 * content does not match its name (then it is replaced): 0. Or -errno. */
static int blob_present(const char *target, const char *digest, uint64_t size)
{
	char existing[DIGEST_HEX_LEN + 1];
	uint64_t existing_size;
	struct stat st;
	int r;

	if (stat(target, &st) < 0)
		return errno == ENOENT ? 0 : log_error_errno(errno, "%s", target);
	if ((uint64_t)st.st_size == size) {
		r = publish_sha256_file(target, existing, &existing_size);
		if (r == 0 && streq(existing, digest) && existing_size == size) {
			r = origin_touch_blob(target);
			if (r == 0)
				return 1;
			if (r != -ENOENT)
				return log_error_errno(r, "cannot refresh %s", target);
			return 0; /* gone meanwhile (removed by hand): store ours */
		}
	}
	log_warn("%s does not match its digest; replacing it", target);
	return 0;
}

/* Move a built blob to BLOBS/<digest>, unless the store holds it already. */
static int store_blob(struct publish_state *s, const char *tmp, const char *blobs_dir,
		      const char *digest, uint64_t size, bool *existed)
{
	_cleanup_free_ char *target = NULL;
	int r;

	if (asprintf(&target, "%s/%s", blobs_dir, digest) < 0)
		return -ENOMEM;
	r = blob_present(target, digest, size);
	if (r < 0)
		return r;
	*existed = r > 0;
	if (*existed)
		return 0;
	if (chmod(tmp, 0644) < 0)
		return log_error_errno(errno, "chmod %s", tmp);
	if (rename(tmp, target) < 0)
		return log_error_errno(errno, "cannot move blob into %s", target);
	return state_added(s, TAKE_PTR(target));
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy src zero-padded to a block into dst (a new file), checking on the way that the copy is
 * what was digested when the image was made: a file changed since is refused, never stored
 * under another content's name. */
static int copy_padded(const char *src, const char *dst, const struct catalogue_blob *b)
{
	_cleanup_(evp_md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	_cleanup_close_ int in = -EBADF, out = -EBADF;
	_cleanup_free_ uint8_t *buf = malloc(1024 * 1024);
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[DIGEST_HEX_LEN + 1];
	unsigned int md_len = 0;
	uint64_t total = 0;
	int r;

	if (!ctx || !buf)
		return -ENOMEM;
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (in < 0)
		return log_error_errno(errno, "cannot read %s", src);
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0)
		return log_error_errno(errno, "cannot create %s", dst);
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		return -EIO;
	for (;;) {
		ssize_t n = read(in, buf, 1024 * 1024);
		size_t len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return log_error_errno(errno, "cannot read %s", src);
		len = (size_t)n;
		if (n == 0) {
			if (total % 4096 == 0)
				break;
			len = 4096 - total % 4096; /* the zero padding of the last block */
			memset(buf, 0, len);
		}
		if (EVP_DigestUpdate(ctx, buf, len) != 1)
			return -EIO;
		r = write_all(out, buf, len);
		if (r < 0)
			return log_error_errno(r, "cannot write %s", dst);
		total += len;
		if (n == 0)
			break;
	}
	if (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != DIGEST_HEX_LEN / 2)
		return -EIO;
	to_hex(md, md_len, hex);
	if (total != b->size || !streq(hex, b->digest))
		return log_error_errno(EAGAIN, "%s changed while it was published; publish again",
				       src);
	if (fsync(out) < 0)
		return log_error_errno(errno, "cannot write %s", dst);
	return 0;
}

/* Store a large file's blob: written only if the store does not hold it yet. */
static int store_copy(struct publish_state *s, const char *src, const char *blobs_dir,
		      const struct catalogue_blob *b, bool *existed)
{
	_cleanup_free_ char *target = NULL;
	int r;

	if (asprintf(&target, "%s/%s", blobs_dir, b->digest) < 0)
		return -ENOMEM;
	r = blob_present(target, b->digest, b->size);
	if (r < 0)
		return r;
	*existed = r > 0;
	if (*existed)
		return 0;
	r = copy_padded(src, s->tmp_copy, b);
	if (r < 0) {
		unlink(s->tmp_copy);
		return r;
	}
	if (rename(s->tmp_copy, target) < 0) {
		r = -errno;
		unlink(s->tmp_copy);
		return log_error_errno(r, "cannot move blob into %s", target);
	}
	return state_added(s, TAKE_PTR(target));
}

static int check_existing_entry(const char *dir, const struct catalogue_model *m, bool force,
				bool *unchanged)
{
	_cleanup_free_ char *path = NULL, *old_text = NULL, *new_text = NULL;
	struct catalogue_model old = { 0 };
	char err[512];
	int r;

	*unchanged = false;
	if (asprintf(&path, "%s/%s.model", dir, m->name) < 0)
		return -ENOMEM;
	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : log_error_errno(errno, "%s", path);
	r = catalogue_load_model_file(path, &old, err, sizeof(err));
	if (r < 0) {
		if (force)
			return 0;
		log_error("%s exists but cannot be parsed (%s); use --force to replace it", path,
			  err);
		return -EEXIST;
	}
	old_text = catalogue_format_model(&old);
	new_text = catalogue_format_model(m);
	catalogue_model_free(&old);
	if (!old_text || !new_text)
		return -ENOMEM;
	if (streq(old_text, new_text)) {
		*unchanged = true;
		return 0;
	}
	if (force)
		return 0;
	log_error("%s already describes model '%s' with different content; use --force to "
		  "replace it (mounts of the old image keep working until unmounted)",
		  path, m->name);
	return -EEXIST;
}

static int check_dir_writable(const char *what, const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		if (errno == ENOENT)
			return log_error_errno(ENOENT, "%s %s does not exist; create it first",
					       what, dir);
		return log_error_errno(errno, "%s %s", what, dir);
	}
	if (!S_ISDIR(st.st_mode))
		return log_error_errno(ENOTDIR, "%s %s is not a directory", what, dir);
	if (access(dir, W_OK | X_OK) < 0)
		return log_error_errno(errno,
				       "%s %s is not writable; fix its permissions or run as a "
				       "user who may write there",
				       what, dir);
	return 0;
}

static int validate_options(const struct publish_options *o)
{
	struct stat st;
	int r;

	if (!o->name || !name_is_valid_model(o->name, strlen(o->name)) ||
	    name_is_digest(o->name, strlen(o->name)))
		return log_error_errno(EINVAL,
				       "invalid model name '%s': use 1-%d characters of A-Z a-z "
				       "0-9 . _ -, starting with a letter or digit, and not a "
				       "64-hex digest",
				       o->name ? o->name : "", MODEL_NAME_MAX);
	if (o->chunk_size < CHUNK_SIZE_MIN || o->chunk_size > CHUNK_SIZE_MAX ||
	    (o->chunk_size & (o->chunk_size - 1)))
		return log_error_errno(EINVAL,
				       "chunk size %llu is not valid: use a power of two >= 4096 "
				       "(e.g. 1M)",
				       (unsigned long long)o->chunk_size);
	if (!o->source_dir || stat(o->source_dir, &st) < 0)
		return log_error_errno(o->source_dir ? errno : EINVAL, "source directory %s",
				       o->source_dir ? o->source_dir : "(none)");
	if (!S_ISDIR(st.st_mode))
		return log_error_errno(ENOTDIR, "source %s is not a directory", o->source_dir);
	r = check_dir_writable("origin directory", o->origin_dir);
	if (r < 0)
		return r;
	if (o->catalogue_dir) {
		r = check_dir_writable("catalogue directory", o->catalogue_dir);
		if (r < 0)
			return r;
	}
	if (o->in_place && (o->in_place_min < 1 || o->in_place_min > PUBLISH_IN_PLACE_SMALL_MAX))
		return log_error_errno(EINVAL,
				       "--in-place-min %llu is not valid: use 1 to %lluM (files "
				       "below it are packed into the metadata blob)",
				       (unsigned long long)o->in_place_min,
				       PUBLISH_IN_PLACE_SMALL_MAX >> 20);
	if (!o->in_place && o->blob_min > PUBLISH_BLOB_MIN_MAX)
		return log_error_errno(EINVAL,
				       "--blob-min %llu is not valid: use 1 to %lluT (files below "
				       "it are packed into one blob)",
				       (unsigned long long)o->blob_min, PUBLISH_BLOB_MIN_MAX >> 40);
	return 0;
}

/* The temporary directory ORIGIN/.publish-NAME-XXXXXX (beside the store: rename() into it stays
 * on one file system) and the names of the files written there; state_cleanup() removes them.
 * In place, only the metadata blob is written: the other names stay NULL. */
static int make_tmpdir(struct publish_state *s, const struct publish_options *o)
{
	char **const paths[] = { &s->tmp_meta, &s->tmp_packed, &s->tmp_copy };
	static const char *const names[] = { "meta", "packed", "copy" };
	int r;

	if (asprintf(&s->tmpdir, "%s/.publish-%s-XXXXXX", o->origin_dir, o->name) < 0) {
		s->tmpdir = NULL;
		return -ENOMEM;
	}
	if (!mkdtemp(s->tmpdir)) {
		r = -errno;
		free(s->tmpdir);
		s->tmpdir = NULL; /* not ours to remove */
		return log_error_errno(r, "cannot create a temporary directory in %s",
				       o->origin_dir);
	}
	for (size_t i = 0; i < (o->in_place ? 1 : ARRAY_SIZE(paths)); i++)
		if (asprintf(paths[i], "%s/%s", s->tmpdir, names[i]) < 0) {
			*paths[i] = NULL;
			return -ENOMEM;
		}
	return 0;
}

/* Write the image (publish_image.c) into a temporary directory beside the store, and make the
 * model: the metadata blob, then the data blobs in device order (the ublk front end maps them
 * in catalogue order). */
static int build_model(struct publish_state *s, const struct publish_options *o,
		       struct publish_result *res)
{
	_cleanup_free_ char *origin_root = NULL, *source = NULL;
	struct catalogue_model *m = &res->model;
	struct publish_image *img = &s->img;
	int r;

	origin_root = realpath(o->origin_dir, NULL);
	source = realpath(o->source_dir, NULL);
	if (!origin_root || !source)
		return log_error_errno(errno, "cannot resolve %s",
				       origin_root ? o->source_dir : o->origin_dir);
	r = make_tmpdir(s, o);
	if (r < 0)
		return r;
	r = publish_build_image(o, origin_root, source, s->tmp_packed, img, &res->stats);
	if (r < 0)
		return r;
	if (!o->in_place && img->n_blobs == 0)
		return log_error_errno(ENODATA,
				       "the source directory holds no file data (only empty files "
				       "or directories); add the model's files and publish again");
	r = write_file_atomic(s->tmp_meta, img->meta, img->meta_len);
	if (r < 0)
		return log_error_errno(r, "cannot write %s", s->tmp_meta);
	r = publish_sha256_file_chunks(s->tmp_meta, o->chunk_size, res->meta.digest,
				       &res->meta.size, &s->meta_chunk_digests,
				       &res->meta.n_chunk_digests);
	if (r < 0)
		return log_error_errno(r, "reading %s", s->tmp_meta);

	m->blobs = calloc(img->n_blobs + 1, sizeof(*m->blobs));
	if (!m->blobs)
		return -ENOMEM;
	snprintf(m->name, sizeof(m->name), "%s", o->name);
	memcpy(m->meta, res->meta.digest, sizeof(m->meta));
	m->chunk_size = o->chunk_size;
	m->n_blobs = img->n_blobs + 1;
	m->blobs[0] = (struct catalogue_blob){
		.size = res->meta.size,
		.role = BLOB_ROLE_META,
		.digest_chunk_size = o->chunk_size,
		.n_chunk_digests = res->meta.n_chunk_digests,
		.chunk_digests = TAKE_PTR(s->meta_chunk_digests),
	};
	memcpy(m->blobs[0].digest, res->meta.digest, sizeof(m->blobs[0].digest));
	for (size_t i = 0; i < img->n_blobs; i++)
		r = r < 0 ? r : catalogue_blob_copy(&m->blobs[i + 1], &img->blobs[i]);
	return r;
}

/* The data blobs, before the metadata blob: a metadata blob in the store is only useful with
 * its data blobs. */
static int store_data_blobs(struct publish_state *s, const char *blobs_dir,
			    struct publish_result *res)
{
	const struct publish_image *img = &s->img;
	bool existed;
	int r;

	res->data_existed = calloc(img->n_blobs + 1, sizeof(*res->data_existed));
	if (!res->data_existed)
		return -ENOMEM;
	for (size_t i = 0; i < img->n_blobs; i++) {
		const struct catalogue_blob *b = &img->blobs[i];

		if ((int)i == img->packed)
			r = store_blob(s, s->tmp_packed, blobs_dir, b->digest, b->size, &existed);
		else
			r = store_copy(s, img->sources[i], blobs_dir, b, &existed);
		if (r < 0)
			return r;
		res->data_existed[i] = existed;
		if (existed) {
			res->stats.blobs_existed++;
		} else {
			res->stats.blobs_written++;
			res->stats.origin_bytes += b->size;
		}
	}
	return 0;
}

static int publish_steps(struct publish_state *s, const struct publish_options *o,
			 struct publish_result *res)
{
	_cleanup_free_ char *blobs_dir = NULL, *models_dir = NULL;
	_cleanup_close_ int lock = -EBADF;
	bool unchanged;
	int r;

	r = validate_options(o);
	if (r < 0)
		return r;
	r = build_model(s, o, res);
	if (r < 0)
		return r;

	if (asprintf(&blobs_dir, "%s/blobs/sha256", o->origin_dir) < 0 ||
	    asprintf(&models_dir, "%s/models", o->origin_dir) < 0)
		return -ENOMEM;
	/* Refuse before touching the store, so that a refusal leaves nothing behind. */
	r = check_existing_entry(models_dir, &res->model, o->force, &res->entry_unchanged);
	if (r < 0)
		return r;
	if (o->catalogue_dir) {
		r = check_existing_entry(o->catalogue_dir, &res->model, o->force, &unchanged);
		if (r < 0)
			return r;
	}

	r = mkdir_p(blobs_dir, 0755);
	if (r < 0)
		return log_error_errno(r, "cannot create %s", blobs_dir);
	r = mkdir_p(models_dir, 0755);
	if (r < 0)
		return log_error_errno(r, "cannot create %s", models_dir);
	/* From the first blob stored to the entry written, this model's blobs are referenced by
	 * nothing: the origin lock keeps a concurrent gc out of that window. */
	lock = origin_lock(o->origin_dir, false);
	if (lock < 0)
		return lock;
	if (!o->in_place) {
		r = store_data_blobs(s, blobs_dir, res);
		if (r < 0)
			return r;
	}
	r = store_blob(s, s->tmp_meta, blobs_dir, res->meta.digest, res->meta.size,
		       &res->meta.existed);
	if (r < 0)
		return r;
	r = fsync_dir(blobs_dir);
	if (r < 0)
		return log_error_errno(r, "fsync %s", blobs_dir);

	r = catalogue_write_model(models_dir, &res->model);
	if (r < 0)
		return log_error_errno(r, "cannot write the model entry into %s", models_dir);
	{
		_cleanup_free_ char *entry = NULL;
		struct stat st;

		/* What this publish wrote to the origin, against the model's size. */
		res->stats.origin_bytes += res->meta.existed ? 0 : res->meta.size;
		if (asprintf(&entry, "%s/%s.model", models_dir, o->name) >= 0 &&
		    stat(entry, &st) == 0)
			res->stats.origin_bytes += (uint64_t)st.st_size;
	}
	/* The index nodes with [origin] catalogue = yes read (an HTTP origin cannot list). */
	r = catalogue_write_index(models_dir);
	if (r < 0)
		return log_error_errno(r, "cannot write %s/%s", models_dir, CATALOGUE_INDEX_NAME);
	if (o->catalogue_dir) {
		r = catalogue_write_model(o->catalogue_dir, &res->model);
		if (r < 0) {
			/* The origin is complete and consistent: keep it, say what is missing. */
			log_error_errno(r,
					"the model is published on the origin, but its entry "
					"could not be written into %s; copy %s/%s.model there",
					o->catalogue_dir, models_dir, o->name);
			for (size_t i = 0; i < s->n_added; i++)
				free(s->added[i]);
			free(s->added);
			s->added = NULL;
			s->n_added = 0;
			return r;
		}
	}
	return 0;
}

int publish_model(const struct publish_options *opts, struct publish_result *result)
{
	struct publish_state state = { 0 };
	int r;

	memset(result, 0, sizeof(*result));
	r = publish_steps(&state, opts, result);
	state_cleanup(&state, r < 0);
	if (r < 0)
		publish_result_free(result);
	return r;
}

void publish_result_free(struct publish_result *result)
{
	if (result) {
		catalogue_model_free(&result->model);
		free(result->data_existed);
		result->data_existed = NULL;
	}
}
