// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/gc.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "log.h"
#include "macros.h"
#include "names.h"

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

int origin_lock(const char *origin_dir, bool exclusive)
{
	_cleanup_free_ char *path = NULL;
	struct flock fl = { .l_type = exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
	int fd;

	if (asprintf(&path, "%s/.lock", origin_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return log_error_errno(errno, "cannot open the origin lock %s", path);
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0) {
		int r = -errno;
		if (r == -EINTR)
			continue;
		close(fd);
		return log_error_errno(r, "cannot lock %s", path);
	}
	return fd;
}

int origin_touch_blob(const char *path)
{
	if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

/* The set of digests the entries reference, sorted for bsearch. */
struct refs {
	char (*digest)[DIGEST_HEX_LEN + 1];
	size_t n, cap;
};

static int refs_add(struct refs *r, const char *digest)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 64;
		void *d = realloc(r->digest, cap * sizeof(*r->digest));
		if (!d)
			return -ENOMEM;
		r->digest = d;
		r->cap = cap;
	}
	snprintf(r->digest[r->n++], DIGEST_HEX_LEN + 1, "%s", digest);
	return 0;
}

static int digest_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool refs_has(const struct refs *r, const char *digest)
{
	return r->n && bsearch(digest, r->digest, r->n, sizeof(*r->digest), digest_cmp);
}

static bool is_entry_name(const char *name)
{
	size_t len = strlen(name);

	return len > 6 && streq(name + len - 6, ".model") && name[0] != '.';
}

/* Every entry of ORIGIN/models, or an error before anything is touched. */
static int read_refs(const char *models_dir, struct refs *refs, unsigned *entries)
{
	_cleanup_closedir_ DIR *d = opendir(models_dir);
	struct dirent *de;
	int r;

	if (!d) {
		if (errno == ENOENT)
			return 0; /* no entries: every blob is unreferenced */
		return log_error_errno(errno, "cannot read %s", models_dir);
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct catalogue_model m = { 0 };
		char err[512] = "";

		if (!is_entry_name(de->d_name))
			continue;
		if (asprintf(&path, "%s/%s", models_dir, de->d_name) < 0)
			return -ENOMEM;
		r = catalogue_load_model_file(path, &m, err, sizeof(err));
		if (r < 0) {
			log_error("%s", err[0] ? err : strerror(-r));
			return log_error_errno(
				r,
				"gc stops before removing anything: an entry it "
				"cannot read could reference blobs. Repair %s, or "
				"remove it with 'blobcachectl unpublish', and run gc again",
				path);
		}
		/* An in-place blob is read from its path, never from the store. */
		for (size_t i = 0; i < m.n_blobs && r >= 0; i++)
			if (!m.blobs[i].path[0])
				r = refs_add(refs, m.blobs[i].digest);
		catalogue_model_free(&m);
		if (r < 0)
			return r;
		(*entries)++;
	}
	qsort(refs->digest, refs->n, sizeof(*refs->digest), digest_cmp);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int gc_run(const struct gc_options *o, struct gc_result *res)
{
	_cleanup_free_ char *models_dir = NULL, *blobs_dir = NULL;
	_cleanup_close_ int lock = -EBADF;
	_cleanup_closedir_ DIR *d = NULL;
	struct refs refs = { 0 };
	struct dirent *de;
	int64_t now = now_ms();
	int r;

	memset(res, 0, sizeof(*res));
	if (asprintf(&models_dir, "%s/models", o->origin_dir) < 0 ||
	    asprintf(&blobs_dir, "%s/blobs/sha256", o->origin_dir) < 0)
		return -ENOMEM;
	lock = origin_lock(o->origin_dir, true);
	if (lock < 0)
		return lock;
	r = read_refs(models_dir, &refs, &res->entries);
	if (r < 0)
		goto out;
	d = opendir(blobs_dir);
	if (!d) {
		r = errno == ENOENT ? 0 : log_error_errno(errno, "cannot read %s", blobs_dir);
		goto out;
	}
	while ((de = readdir(d))) {
		struct stat st;
		int64_t mtime;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || !name_is_digest(de->d_name, strlen(de->d_name))) {
			res->foreign++;
			log_warn("%s/%s is not a blob (a regular file named by its sha256): left "
				 "alone",
				 blobs_dir, de->d_name);
			continue;
		}
		if (refs_has(&refs, de->d_name)) {
			res->referenced++;
			res->referenced_bytes += (uint64_t)st.st_size;
			continue;
		}
		mtime = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
		if (now - mtime < (int64_t)o->grace_ms) {
			res->young++;
			res->young_bytes += (uint64_t)st.st_size;
			continue;
		}
		if (o->dry_run) {
			printf("would remove %s/%s (%" PRIu64 " bytes)\n", blobs_dir, de->d_name,
			       (uint64_t)st.st_size);
		} else if (unlinkat(dirfd(d), de->d_name, 0) < 0) {
			r = log_error_errno(errno, "cannot remove %s/%s", blobs_dir, de->d_name);
			goto out;
		} else {
			printf("removed %s/%s (%" PRIu64 " bytes)\n", blobs_dir, de->d_name,
			       (uint64_t)st.st_size);
		}
		res->removed++;
		res->removed_bytes += (uint64_t)st.st_size;
	}
	/* Referenced but absent: a broken model, worth saying (gc never causes it). */
	for (size_t i = 0; i < refs.n; i++) {
		_cleanup_free_ char *path = NULL;
		if (i && streq(refs.digest[i], refs.digest[i - 1]))
			continue;
		if (asprintf(&path, "%s/%s", blobs_dir, refs.digest[i]) < 0) {
			r = -ENOMEM;
			goto out;
		}
		if (access(path, F_OK) < 0 && errno == ENOENT) {
			res->missing++;
			log_warn("blob %s is referenced by a model entry but missing from %s: that "
				 "model cannot be read; publish it again",
				 refs.digest[i], blobs_dir);
		}
	}
	r = 0;
out:
	free(refs.digest);
	return r;
}

static int remove_entry(const char *dir, const char *name, bool *removed)
{
	_cleanup_free_ char *path = NULL;

	if (asprintf(&path, "%s/%s.model", dir, name) < 0)
		return -ENOMEM;
	if (unlink(path) == 0) {
		printf("removed %s\n", path);
		*removed = true;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	return log_error_errno(errno, "cannot remove %s", path);
}

int unpublish_model(const char *name, const char *origin_dir, const char *catalogue_dir)
{
	_cleanup_free_ char *models_dir = NULL;
	_cleanup_close_ int lock = -EBADF;
	bool removed = false;
	int r;

	if (!name_is_valid_model(name, strlen(name)))
		return log_error_errno(EINVAL, "'%s' is not a model name", name);
	if (asprintf(&models_dir, "%s/models", origin_dir) < 0)
		return -ENOMEM;
	lock = origin_lock(origin_dir, false);
	if (lock < 0)
		return lock;
	r = remove_entry(models_dir, name, &removed);
	if (r >= 0 && removed) {
		r = catalogue_write_index(models_dir);
		if (r < 0)
			return log_error_errno(r, "cannot rewrite %s/%s", models_dir,
					       CATALOGUE_INDEX_NAME);
	}
	if (r >= 0 && catalogue_dir)
		r = remove_entry(catalogue_dir, name, &removed);
	if (r < 0)
		return r;
	if (!removed)
		return log_error_errno(ENOENT, "no entry of model %s in %s%s%s", name, models_dir,
				       catalogue_dir ? " or " : "",
				       catalogue_dir ? catalogue_dir : "");
	return 0;
}
