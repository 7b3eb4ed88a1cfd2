/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Origins: where blob bytes come from. Part of the fill core; knows nothing of the kernel.
 * Fetches are asynchronous: the origin calls `done` in the loop thread when the bytes are in
 * the caller's buffer (or the fetch failed). The caller keeps the buffer alive until then.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "catalogue.h"

struct loop;
struct origin;

/* result: number of bytes placed in buf (always the full length asked for on success), or
 * -errno: -ENOENT blob missing on the origin, -EIO read error or short blob, -ETIMEDOUT ... */
typedef void (*origin_done_fn)(void *userdata, ssize_t result);

struct origin_ops {
	const char *kind;
	int (*fetch)(struct origin *o, const char *digest, uint64_t off, size_t len, void *buf,
		     origin_done_fn done, void *userdata);
	void (*free)(struct origin *o);
};

struct origin {
	const struct origin_ops *ops;
};

/* File origin: blobs at <root>/blobs/sha256/<hex>, read by `workers` threads (a hung NFS read
 * ties up one worker, never the loop). Returns 0 or -errno. */
int origin_file_new(struct loop *loop, const char *root, unsigned workers, struct origin **out);

static inline int origin_fetch(struct origin *o, const char *digest, uint64_t off, size_t len,
			       void *buf, origin_done_fn done, void *userdata)
{
	return o->ops->fetch(o, digest, off, len, buf, done, userdata);
}

static inline void origin_free(struct origin *o)
{
	if (o)
		o->ops->free(o);
}
