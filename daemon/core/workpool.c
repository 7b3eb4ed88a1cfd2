// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/workpool.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "log.h"
#include "core/loop.h"
#include "macros.h"

struct work_item {
	workpool_work_fn work;
	workpool_done_fn done;
	void *userdata;
	struct work_item *next;
};

struct workpool {
	struct loop *loop;
	char name[32];
	int eventfd;
	unsigned n_threads;
	pthread_t *threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	struct work_item *queue_head, *queue_tail; /* waiting for a thread */
	struct work_item *done_head, *done_tail;   /* finished, for the loop thread */
};

static void *pool_thread(void *arg)
{
	struct workpool *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct work_item *item;
		uint64_t one = 1;

		while (!p->queue_head && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stopping)
			break;
		item = p->queue_head;
		p->queue_head = item->next;
		if (!p->queue_head)
			p->queue_tail = NULL;
		pthread_mutex_unlock(&p->lock);

		item->work(item->userdata);

		pthread_mutex_lock(&p->lock);
		item->next = NULL;
		if (p->done_tail) {
			/* The loop has not taken the list yet: it was woken for it already. */
			p->done_tail->next = item;
			p->done_tail = item;
			continue;
		}
		p->done_head = p->done_tail = item;
		if (write(p->eventfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error_errno(errno, "%s: eventfd write failed", p->name);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void on_eventfd(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct workpool *p = userdata;
	struct work_item *list;
	uint64_t count;

	/* Read before taking the list: a completion queued after the take finds the list empty
	 * and writes the eventfd again, so none is left behind. */
	if (read(fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error_errno(errno, "%s: eventfd read failed", p->name);
	pthread_mutex_lock(&p->lock);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->lock);
	while (list) {
		struct work_item *item = list;
		list = item->next;
		item->done(item->userdata);
		free(item);
	}
}

int workpool_submit(struct workpool *p, workpool_work_fn work, workpool_done_fn done,
		    void *userdata)
{
	struct work_item *item = calloc(1, sizeof(*item));

	if (!item)
		return -ENOMEM;
	item->work = work;
	item->done = done;
	item->userdata = userdata;
	pthread_mutex_lock(&p->lock);
	if (p->queue_tail)
		p->queue_tail->next = item;
	else
		p->queue_head = item;
	p->queue_tail = item;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void workpool_free(struct workpool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_detach(p->threads[i]);
	loop_remove_fd(p->loop, p->eventfd);
	/* The struct stays: a detached thread may still be inside work(). */
}

int workpool_new(struct loop *loop, const char *name, unsigned threads, struct workpool **out)
{
	struct workpool *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->threads = calloc(threads, sizeof(pthread_t));
	p->eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!p->threads || p->eventfd < 0) {
		r = p->eventfd < 0 ? -errno : -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	r = loop_add_fd(loop, p->eventfd, EPOLLIN, on_eventfd, p);
	if (r < 0)
		goto fail;
	for (unsigned i = 0; i < threads; i++) {
		r = -pthread_create(&p->threads[i], NULL, pool_thread, p);
		if (r < 0) {
			log_error_errno(r, "%s: cannot start a thread", name);
			workpool_free(p);
			return r;
		}
		p->n_threads++;
	}
	*out = p;
	return 0;
fail:
	if (p->eventfd >= 0)
		close(p->eventfd);
	free(p->threads);
	free(p);
	return r;
}
