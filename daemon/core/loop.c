// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/loop.h"

#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>

#include "log.h"
#include "macros.h"

struct loop_handler {
	int fd;
	loop_fd_fn fn;
	loop_timer_fn timer_fn;
	void *userdata;
	bool is_timer;
	bool removed;
	struct loop_handler *next;
};

struct loop {
	int epfd;
	bool quit;
	int result;
	struct loop_handler *handlers;
};

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int loop_new(struct loop **out)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		int r = -errno;
		free(loop);
		return r;
	}
	*out = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	while (loop->handlers) {
		struct loop_handler *h = loop->handlers;
		loop->handlers = h->next;
		if (h->is_timer)
			close(h->fd);
		free(h);
	}
	close(loop->epfd);
	free(loop);
}

static struct loop_handler *find_handler(struct loop *loop, int fd)
{
	for (struct loop_handler *h = loop->handlers; h; h = h->next)
		if (h->fd == fd && !h->removed)
			return h;
	return NULL;
}

static int add_handler(struct loop *loop, struct loop_handler *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, h->fd, &ev) < 0)
		return -errno;
	h->next = loop->handlers;
	loop->handlers = h;
	return 0;
}

int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *userdata)
{
	struct loop_handler *h = calloc(1, sizeof(*h));
	int r;

	if (!h)
		return -ENOMEM;
	*h = (struct loop_handler){ .fd = fd, .fn = fn, .userdata = userdata };
	r = add_handler(loop, h, events);
	if (r < 0)
		free(h);
	return r;
}

int loop_modify_fd(struct loop *loop, int fd, uint32_t events)
{
	struct loop_handler *h = find_handler(loop, fd);
	struct epoll_event ev = { .events = events, .data.ptr = h };

	if (!h)
		return -ENOENT;
	return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void loop_remove_fd(struct loop *loop, int fd)
{
	struct loop_handler *h = find_handler(loop, fd);

	if (!h)
		return;
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Freed after the current dispatch round: an event for it may still be in hand. */
	h->removed = true;
}

int loop_add_periodic(struct loop *loop, uint64_t interval_ms, loop_timer_fn fn, void *userdata)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = interval_ms / 1000,
				 .tv_nsec = (interval_ms % 1000) * 1000000 },
	};
	struct loop_handler *h;
	int fd, r;

	its.it_value = its.it_interval;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	*h = (struct loop_handler){
		.fd = fd, .timer_fn = fn, .userdata = userdata, .is_timer = true
	};
	r = add_handler(loop, h, EPOLLIN);
	if (r < 0) {
		close(fd);
		free(h);
		return r;
	}
	return fd;
}

static void reap_removed(struct loop *loop)
{
	struct loop_handler **pp = &loop->handlers;

	while (*pp) {
		struct loop_handler *h = *pp;
		if (h->removed) {
			*pp = h->next;
			if (h->is_timer)
				close(h->fd);
			free(h);
		} else {
			pp = &h->next;
		}
	}
}

int loop_run(struct loop *loop)
{
	struct epoll_event events[32];

	loop->quit = false;
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, events, ARRAY_SIZE(events), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(errno, "epoll_wait failed");
		}
		for (int i = 0; i < n; i++) {
			struct loop_handler *h = events[i].data.ptr;
			if (h->removed)
				continue;
			if (h->is_timer) {
				uint64_t expirations;
				if (read(h->fd, &expirations, sizeof(expirations)) > 0)
					h->timer_fn(loop, h->userdata);
			} else {
				h->fn(loop, h->fd, events[i].events, h->userdata);
			}
		}
		reap_removed(loop);
	}
	return loop->result;
}

void loop_quit(struct loop *loop, int result)
{
	loop->quit = true;
	loop->result = result;
}
