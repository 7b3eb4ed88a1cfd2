// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The file origin: a directory, typically on an NFS mount. Reads can block for as long as the
 * server is away, so they run in a thread pool; the loop thread only queues them. Requests carry
 * their own deadline in the fill core: a worker stuck in the kernel does not hold up the reader,
 * who gets EIO when the deadline passes.
 */
#include "core/origin.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>

#include "io.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/workpool.h"

/* Offsets, lengths and buffers of O_DIRECT reads: a page suits every disk and NFS. */
#define DIRECT_ALIGN 4096

struct file_origin {
	struct origin base;
	char *root;
	struct workpool *pool;
	uint32_t fs_magic; /* the root must be this file system (a managed NFS mount), or 0 */
	uint64_t wait_ms;  /* how long a read waits for it to be mounted again */
};

struct file_job {
	struct file_origin *fo;
	char digest[DIGEST_HEX_LEN + 1];
	/* beneath the root: blobs/sha256/<digest>, or an in-place blob's path */
	char rel[MAX(CATALOGUE_PATH_MAX, sizeof("blobs/sha256/") + DIGEST_HEX_LEN)];
	uint64_t off;
	size_t len;
	void *buf;
	origin_done_fn done;
	void *userdata;
	ssize_t result;
};

static int open_beneath(int dirfd, const char *path, int flags)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | flags,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* kernels before 5.6 */
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | flags);
	return fd < 0 ? -errno : fd;
}

static int read_once(struct file_job *job)
{
	_cleanup_close_ int rootfd = -EBADF, fd = -EBADF;
	size_t head = 0;
	ssize_t n;

	rootfd = open(job->fo->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	/* O_DIRECT: the chunk goes from the disk or the NFS server straight into the fill core's
	 * (page-aligned) buffer, not through page cache pages that nobody reads again (the chunk
	 * is in the cache file from now on) and a copy out of them. The whole pages of the range;
	 * a tail of less than a page (a blob's end) is read buffered. A file system without
	 * direct I/O refuses the open or the read with EINVAL: then all of it is read buffered.
	 * RESOLVE_BENEATH: an in-place path (or a symlink on the way) cannot leave the root. */
	if (((uintptr_t)job->buf | job->off) % DIRECT_ALIGN == 0 && job->len >= DIRECT_ALIGN) {
		fd = open_beneath(rootfd, job->rel, O_DIRECT);
		if (fd >= 0)
			head = job->len & ~(size_t)(DIRECT_ALIGN - 1);
		else if (fd != -EINVAL)
			return fd;
	}
	if (head) {
		n = pread_full(fd, job->buf, head, (off_t)job->off);
		if (n == -EINVAL)
			head = 0;
		else if (n < 0)
			return (int)n;
		else if ((size_t)n < head)
			return -EIO; /* the blob is shorter than the catalogue says */
		if (head == job->len)
			return 0;
	}
	if (fd >= 0)
		close(fd);
	fd = open_beneath(rootfd, job->rel, 0);
	if (fd < 0)
		return fd;
	n = pread_full(fd, (char *)job->buf + head, job->len - head, (off_t)(job->off + head));
	if (n < 0)
		return (int)n;
	return (size_t)n < job->len - head ? -EIO : 0;
}

/* Is the origin's own file system at root (not the empty directory under a lost mount)? */
static bool root_mounted(const struct file_origin *fo)
{
	struct statfs sfs;

	return statfs(fo->root, &sfs) == 0 && (uint32_t)sfs.f_type == fo->fs_magic;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Pool thread. Opens the root and the blob afresh each time: cheap next to a 1 MiB read, and
 * it means a remounted or recovered NFS share is picked up. ESTALE (the server restarted, the
 * export changed, the mount was replaced) is retried once at once, with the directory and the
 * blob reopened by path; with a managed NFS mount, again every 200 ms until the mount has been
 * replaced or the deadline passes. With a managed NFS mount, a read that finds the mount missing
 * waits for the daemon to mount it again (up to wait_ms) instead of reading the empty directory. */
static void read_blob(void *userdata)
{
	struct file_job *job = userdata;
	const struct file_origin *fo = job->fo;
	uint64_t deadline = fo->fs_magic ? now_ms() + fo->wait_ms : 0;
	bool stale_retried = false;
	int r;

	for (;;) {
		if (fo->fs_magic && !root_mounted(fo)) {
			if (now_ms() >= deadline) {
				r = -ENOENT;
				break;
			}
			usleep(100 * 1000);
			continue;
		}
		r = read_once(job);
		if (r == -ESTALE && !stale_retried) {
			stale_retried = true;
			log_debug("origin: blob %s: stale file handle, reopening", job->digest);
			continue;
		}
		/* Still stale: the mount's root itself is (the export changed under it). A managed
		 * mount is detached and mounted again by the daemon's mount health within
		 * seconds; reopen by path until then, within the deadline. */
		if (r == -ESTALE && fo->fs_magic && now_ms() + 200 < deadline) {
			usleep(200 * 1000);
			continue;
		}
		/* The mount went away under the read: wait for it to be back. */
		if (r < 0 && fo->fs_magic && !root_mounted(fo) && now_ms() < deadline)
			continue;
		break;
	}
	job->result = r < 0 ? r : (ssize_t)job->len;
}

static void read_done(void *userdata)
{
	struct file_job *job = userdata;

	job->done(job->userdata, job->result);
	free(job);
}

static int submit(struct file_origin *fo, const char *digest, const char *path, uint64_t off,
		  size_t len, void *buf, origin_done_fn done, void *userdata)
{
	struct file_job *job = calloc(1, sizeof(*job));
	int r;

	if (!job)
		return -ENOMEM;
	job->fo = fo;
	memcpy(job->digest, digest, DIGEST_HEX_LEN);
	if (path)
		snprintf(job->rel, sizeof(job->rel), "%s", path);
	else
		snprintf(job->rel, sizeof(job->rel), "blobs/sha256/%s", job->digest);
	job->off = off;
	job->len = len;
	job->buf = buf;
	job->done = done;
	job->userdata = userdata;
	r = workpool_submit(fo->pool, read_blob, read_done, job);
	if (r < 0)
		free(job);
	return r;
}

static int file_fetch(struct origin *o, const char *digest, uint64_t off, size_t len, void *buf,
		      origin_done_fn done, void *userdata)
{
	return submit((struct file_origin *)o, digest, NULL, off, len, buf, done, userdata);
}

static int file_fetch_path(struct origin *o, const char *digest, const char *path,
			   uint64_t file_size, uint64_t off, size_t len, void *buf,
			   origin_done_fn done, void *userdata)
{
	if (!catalogue_path_is_valid(path) || len == 0 || off + len < off || off + len > file_size)
		return -EINVAL;
	return submit((struct file_origin *)o, digest, path, off, len, buf, done, userdata);
}

static void file_free(struct origin *o)
{
	struct file_origin *fo = (struct file_origin *)o;

	/* Threads blocked in an NFS read may never return: the pool leaves them be, and so do
	 * we with the root path they use (the process is about to exit). */
	workpool_free(fo->pool);
}

void origin_file_set_mount(struct origin *o, uint32_t fs_magic, uint64_t wait_ms)
{
	struct file_origin *fo = (struct file_origin *)o;

	fo->fs_magic = fs_magic;
	fo->wait_ms = wait_ms;
}

/* Blocking, for a pool thread. */
static int file_get_file(struct origin *o, const char *path, size_t max, char **out, size_t *len)
{
	struct file_origin *fo = (struct file_origin *)o;
	_cleanup_free_ char *full = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	char *buf;
	size_t got = 0;

	if (asprintf(&full, "%s/%s", fo->root, path) < 0)
		return -ENOMEM;
	fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > max)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return n < 0 ? -errno : -EIO;
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

static const struct origin_ops file_ops = {
	.kind = "file",
	.fetch = file_fetch,
	.free = file_free,
	.get_file = file_get_file,
	.fetch_path = file_fetch_path,
};

int origin_file_new(struct loop *loop, const char *root, unsigned workers, struct origin **out)
{
	struct file_origin *fo = calloc(1, sizeof(*fo));
	int r;

	if (!fo)
		return -ENOMEM;
	fo->base.ops = &file_ops;
	fo->root = strdup(root);
	if (!fo->root) {
		free(fo);
		return -ENOMEM;
	}
	r = workpool_new(loop, "file origin", workers, &fo->pool);
	if (r < 0) {
		free(fo->root);
		free(fo);
		return r;
	}
	*out = &fo->base;
	return 0;
}
