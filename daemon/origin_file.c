// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The file origin: a directory, typically on an NFS mount. Reads can block for as long as the
 * server is away, so they run in worker threads; the loop thread only queues jobs and collects
 * results through an eventfd. Requests carry their own deadline in the fill core: a worker stuck
 * in the kernel does not hold up the reader, who gets EIO when the deadline passes.
 */
#include "origin.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include "log.h"
#include "loop.h"
#include "macros.h"

struct file_job {
	char digest[DIGEST_HEX_LEN + 1];
	uint64_t off;
	size_t len;
	void *buf;
	origin_done_fn done;
	void *userdata;
	ssize_t result;
	struct file_job *next;
};

struct file_origin {
	struct origin base;
	struct loop *loop;
	char *root;
	int eventfd;
	unsigned n_threads;
	pthread_t *threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	struct file_job *queue_head, *queue_tail; /* waiting for a worker */
	struct file_job *done_list;		  /* finished, for the loop thread */
};

static int open_beneath(int dirfd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* kernels before 5.6 */
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

/* Runs in a worker thread. Opens the blob afresh each time: cheap next to a 1 MiB read, and it
 * means a remounted or recovered NFS share is picked up without stale handles (ESTALE). */
static ssize_t read_blob(const char *root, const struct file_job *job)
{
	_cleanup_close_ int rootfd = -EBADF, fd = -EBADF;
	char path[32 + DIGEST_HEX_LEN];
	size_t done = 0;

	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	snprintf(path, sizeof(path), "blobs/sha256/%s", job->digest);
	fd = open_beneath(rootfd, path);
	if (fd < 0)
		return fd;
	while (done < job->len) {
		ssize_t n = pread(fd, (char *)job->buf + done, job->len - done,
				  (off_t)(job->off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) /* the blob is shorter than the catalogue says */
			return -EIO;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void *worker_main(void *arg)
{
	struct file_origin *fo = arg;

	pthread_mutex_lock(&fo->lock);
	for (;;) {
		struct file_job *job;
		uint64_t one = 1;

		while (!fo->queue_head && !fo->stopping)
			pthread_cond_wait(&fo->cond, &fo->lock);
		if (fo->stopping)
			break;
		job = fo->queue_head;
		fo->queue_head = job->next;
		if (!fo->queue_head)
			fo->queue_tail = NULL;
		pthread_mutex_unlock(&fo->lock);

		job->result = read_blob(fo->root, job);

		pthread_mutex_lock(&fo->lock);
		job->next = fo->done_list;
		fo->done_list = job;
		if (write(fo->eventfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error_errno(errno, "eventfd write failed");
	}
	pthread_mutex_unlock(&fo->lock);
	return NULL;
}

static void on_eventfd(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct file_origin *fo = userdata;
	struct file_job *list, *rev = NULL;
	uint64_t count;

	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "eventfd read failed");
	pthread_mutex_lock(&fo->lock);
	list = fo->done_list;
	fo->done_list = NULL;
	pthread_mutex_unlock(&fo->lock);
	/* Completed newest-first: reverse so results are delivered in completion order. */
	while (list) {
		struct file_job *next = list->next;
		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev) {
		struct file_job *job = rev;
		rev = job->next;
		job->done(job->userdata, job->result);
		free(job);
	}
}

static int file_fetch(struct origin *o, const char *digest, uint64_t off, size_t len, void *buf,
		      origin_done_fn done, void *userdata)
{
	struct file_origin *fo = (struct file_origin *)o;
	struct file_job *job = calloc(1, sizeof(*job));

	if (!job)
		return -ENOMEM;
	memcpy(job->digest, digest, DIGEST_HEX_LEN);
	job->off = off;
	job->len = len;
	job->buf = buf;
	job->done = done;
	job->userdata = userdata;
	pthread_mutex_lock(&fo->lock);
	if (fo->queue_tail)
		fo->queue_tail->next = job;
	else
		fo->queue_head = job;
	fo->queue_tail = job;
	pthread_cond_signal(&fo->cond);
	pthread_mutex_unlock(&fo->lock);
	return 0;
}

static void file_free(struct origin *o)
{
	struct file_origin *fo = (struct file_origin *)o;

	pthread_mutex_lock(&fo->lock);
	fo->stopping = true;
	pthread_cond_broadcast(&fo->cond);
	pthread_mutex_unlock(&fo->lock);
	/* A worker blocked in an NFS read may never return: do not wait for it. The process is
	 * about to exit; the kernel tears the thread down. */
	for (unsigned i = 0; i < fo->n_threads; i++)
		pthread_detach(fo->threads[i]);
	loop_remove_fd(fo->loop, fo->eventfd);
}

static const struct origin_ops file_ops = {
	.kind = "file",
	.fetch = file_fetch,
	.free = file_free,
};

int origin_file_new(struct loop *loop, const char *root, unsigned workers, struct origin **out)
{
	struct file_origin *fo;
	int r;

	fo = calloc(1, sizeof(*fo));
	if (!fo)
		return -ENOMEM;
	fo->base.ops = &file_ops;
	fo->loop = loop;
	fo->root = strdup(root);
	fo->threads = calloc(workers, sizeof(pthread_t));
	fo->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!fo->root || !fo->threads || fo->eventfd < 0) {
		r = fo->eventfd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&fo->lock, NULL);
	pthread_cond_init(&fo->cond, NULL);
	r = loop_add_fd(loop, fo->eventfd, EPOLLIN, on_eventfd, fo);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < workers; i++) {
		r = -pthread_create(&fo->threads[i], NULL, worker_main, fo);
		if (r < 0) {
			log_error_errno(r, "cannot start origin worker thread");
			file_free(&fo->base);
			return r;
		}
		fo->n_threads++;
	}
	*out = &fo->base;
	return 0;
fail:
	if (fo->eventfd >= 0)
		close(fo->eventfd);
	free(fo->threads);
	free(fo->root);
	free(fo);
	return r;
}
