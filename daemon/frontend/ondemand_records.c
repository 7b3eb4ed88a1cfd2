// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/ondemand_records.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "io.h"
#include "macros.h"

#define RECORD_MAX 256

/* cachefiles' coherency data: struct cachefiles_xattr, 18 bytes plus the netfs's aux data. */
#define CACHEFILES_XATTR "user.CacheFiles.cache"

static bool take(const char **p, const char *end, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(end - *p) < n || memcmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

int od_record_parse(const char *text, size_t len, struct od_record *out)
{
	const char *p = text, *end = text + len;
	uint64_t size = 0;
	int digits = 0;

	if (!text || !take(&p, end, "meta ") || (size_t)(end - p) < DIGEST_HEX_LEN ||
	    !name_is_digest(p, DIGEST_HEX_LEN))
		return -EINVAL;
	memcpy(out->meta, p, DIGEST_HEX_LEN);
	out->meta[DIGEST_HEX_LEN] = '\0';
	p += DIGEST_HEX_LEN;
	if (!take(&p, end, "\nsize "))
		return -EINVAL;
	for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
		if (size > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EINVAL;
		size = size * 10 + (uint64_t)(*p - '0');
	}
	if (digits == 0 || (digits > 1 && p[-digits] == '0') || !take(&p, end, "\n") || p != end)
		return -EINVAL;
	out->size = size;
	return 0;
}

int od_record_format(const struct od_record *r, char *buf, size_t len)
{
	int n = snprintf(buf, len, "meta %s\nsize %" PRIu64 "\n", r->meta, r->size);

	return n < 0 || (size_t)n >= len ? -ENOBUFS : n;
}

enum od_open_action od_decide(const struct od_record *rec, const char *current_meta, bool live,
			      bool file_exists)
{
	/* A live mount reads what it was made with, whatever the catalogue says now; without a
	 * record (served by a daemon before records existed) the current one is all there is. */
	if (live)
		return rec ? OD_SERVE_RECORDED : OD_SERVE_CURRENT;
	if (rec && streq(rec->meta, current_meta))
		return OD_SERVE_CURRENT;
	/* No record, or another version's: what the file holds is unknown or wrong. */
	return file_exists ? OD_SERVE_CURRENT_DISCARD : OD_SERVE_CURRENT;
}

static int record_path(const char *served_dir, const char *volume, const char *key, char *path,
		       size_t len)
{
	int n = snprintf(path, len, "%s/%s/%s", served_dir, volume, key);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int od_record_load(const char *served_dir, const char *volume, const char *key,
		   struct od_record *out)
{
	char path[PATH_MAX], buf[RECORD_MAX];
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;
	int r;

	if ((r = record_path(served_dir, volume, key, path, sizeof(path))) < 0)
		return r;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return (int)n;
	return od_record_parse(buf, (size_t)n, out);
}

int od_record_save(const char *served_dir, const char *volume, const char *key,
		   const struct od_record *rec)
{
	char path[PATH_MAX], text[RECORD_MAX];
	int r, n;

	if ((r = record_path(served_dir, volume, "", path, sizeof(path))) < 0 ||
	    (r = mkdir_parents(path)) < 0 ||
	    (r = record_path(served_dir, volume, key, path, sizeof(path))) < 0)
		return r;
	n = od_record_format(rec, text, sizeof(text));
	if (n < 0)
		return n;
	return write_file_atomic(path, text, (size_t)n);
}

int od_record_remove(const char *served_dir, const char *volume, const char *key)
{
	char path[PATH_MAX];
	int r = record_path(served_dir, volume, key, path, sizeof(path));

	if (r < 0)
		return r;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int od_cache_file_find(const char *cache_dir, const char *volume, const char *key, char *path,
		       size_t path_len)
{
	/* The fan-out byte is a hash of the key that the kernel computes: look in all 256. */
	for (unsigned fan = 0; fan < 256; fan++) {
		struct stat st;
		int n = snprintf(path, path_len, "%s/cache/I%s/@%02x/D%s", cache_dir, volume, fan,
				 key);
		if (n < 0 || (size_t)n >= path_len)
			return -ENAMETOOLONG;
		if (lstat(path, &st) == 0)
			return S_ISREG(st.st_mode) ? 0 : -ENOENT;
		if (errno != ENOENT)
			return -errno;
	}
	return -ENOENT;
}

int od_cache_file_discard(const char *path)
{
	/* cachefiles_check_auxdata() takes a value of the wrong length as stale (-ESTALE: a fresh
	 * object replaces the file), but a missing one as a lookup error (the mount's cache fails:
	 * ENOBUFS). One byte is never the right length. */
	if (lsetxattr(path, CACHEFILES_XATTR, "", 1, XATTR_REPLACE) == 0)
		return 0;
	if (errno == ENODATA && lsetxattr(path, CACHEFILES_XATTR, "", 1, 0) == 0)
		return 0;
	return -errno;
}
