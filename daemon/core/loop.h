/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A single-threaded event loop on epoll. Everything that touches daemon state runs in the loop
 * thread; worker threads hand results back through an eventfd registered here.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* Called in the loop thread with the epoll events that fired. */
typedef void (*loop_fd_fn)(struct loop *loop, int fd, uint32_t events, void *userdata);
typedef void (*loop_timer_fn)(struct loop *loop, void *userdata);

/* Returns 0 and *out, or -errno. */
int loop_new(struct loop **out);
void loop_free(struct loop *loop);

/* Watch fd for events (EPOLLIN, ...). The fd stays owned by the caller, who must remove it
 * with loop_remove_fd() before closing it. Returns 0 or -errno. */
int loop_add_fd(struct loop *loop, int fd, uint32_t events, loop_fd_fn fn, void *userdata);
int loop_modify_fd(struct loop *loop, int fd, uint32_t events);
void loop_remove_fd(struct loop *loop, int fd);

/* Call fn every interval_ms (first call after interval_ms). Returns a timer id >= 0 or -errno. */
int loop_add_periodic(struct loop *loop, uint64_t interval_ms, loop_timer_fn fn, void *userdata);

/* Run until loop_quit(); returns the value given to loop_quit (0 by default), or -errno. */
int loop_run(struct loop *loop);
void loop_quit(struct loop *loop, int result);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t loop_now_ms(void);
