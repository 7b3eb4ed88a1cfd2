/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A bounded pool of threads for blocking or CPU-heavy work (origin file reads, digest checks,
 * cache writes). Work runs in a pool thread; its completion runs in the loop thread, delivered
 * through an eventfd, so that all daemon state stays single-threaded.
 */
#pragma once

struct loop;
struct workpool;

/* Runs in a pool thread. Must only touch what the submitter handed it. */
typedef void (*workpool_work_fn)(void *userdata);
/* Runs in the loop thread after work returned. */
typedef void (*workpool_done_fn)(void *userdata);

/* Start `threads` threads named `name` (for logs). Returns 0 or -errno. */
int workpool_new(struct loop *loop, const char *name, unsigned threads, struct workpool **out);

/* Queue work; done is called later in the loop thread. Returns 0 or -ENOMEM. */
int workpool_submit(struct workpool *p, workpool_work_fn work, workpool_done_fn done,
		    void *userdata);

/* Stop taking work and detach the threads. A thread blocked in the kernel (a hung NFS read) is
 * not waited for: the process is about to exit. Completions not yet delivered are dropped. */
void workpool_free(struct workpool *p);
