/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Origins: where blob bytes come from. Part of the fill core; knows nothing of the kernel.
 * Fetches are asynchronous: the origin calls `done` in the loop thread when the bytes are in
 * the caller's buffer (or the fetch failed). The caller keeps the buffer alive until then.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
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
	/* Optional: fetch knowing the blob's size (from the catalogue), so that the origin can
	 * check what the server claims against it. NULL: origin_fetch_sized() calls fetch. */
	int (*fetch_sized)(struct origin *o, const char *digest, uint64_t blob_size, uint64_t off,
			   size_t len, void *buf, origin_done_fn done, void *userdata);
	/* Optional, BLOCKING (for a pool thread): a small file by its path beneath the origin
	 * (e.g. "models/index"), at most max bytes, NUL-terminated in *out (free()). -ENOENT,
	 * -EFBIG (longer than max), -EACCES, -ETIMEDOUT, -EIO. */
	int (*get_file)(struct origin *o, const char *path, size_t max, char **out, size_t *len);
	/* Optional: fetch from an in-place blob (catalogue.h): the file at `path` beneath the
	 * origin root (file) or its URL (HTTP), of file_size bytes; off + len <= file_size (the
	 * caller zero-fills the padding past the file's end). `digest` names it in logs. */
	int (*fetch_path)(struct origin *o, const char *digest, const char *path,
			  uint64_t file_size, uint64_t off, size_t len, void *buf,
			  origin_done_fn done, void *userdata);
};

struct origin {
	const struct origin_ops *ops;
};

/* File origin: blobs at <root>/blobs/sha256/<hex> (in-place blobs at <root>/<path>), read by
 * `workers` threads (a hung NFS read ties up one worker, never the loop). Returns 0 or -errno. */
int origin_file_new(struct loop *loop, const char *root, unsigned workers, struct origin **out);

/* The file origin's root is a mount the daemon manages, of file system fs_magic (statfs
 * f_type, e.g. 0x6969 for NFS): a read that finds something else there (the mount is lost and
 * not yet back) waits up to wait_ms for it instead of failing at once. Call before fetching. */
void origin_file_set_mount(struct origin *o, uint32_t fs_magic, uint64_t wait_ms);

/* HTTP(S) origin: blobs at <url>/blobs/sha256/<hex> (the OCI image-layout path, as
 * `blobcachectl publish` writes it), fetched with range requests through libcurl's multi
 * interface driven by the loop (no threads). */
struct origin_http_options {
	const char *url;	     /* http:// or https://, without the /blobs/sha256/ part */
	const char *token_file;	     /* bearer token (first line), or NULL */
	const char *basic_auth_file; /* "user:password" (first line), or NULL */
	const char *ca_file, *ca_path;
	bool tls_verify;
	const char *proxy, *no_proxy; /* NULL proxy: none (the environment's is ignored) */
	unsigned max_connections;     /* per host, kept alive and reused */
	unsigned retries;	      /* further attempts after a transient failure */
	uint64_t request_timeout_ms;  /* deadline of one attempt */
	uint64_t connect_timeout_ms;  /* 0: min(request_timeout_ms, 10 s) */
	uint64_t backoff_base_ms;     /* 0: 1 s; doubled per retry */
	uint64_t backoff_cap_ms;      /* 0: 30 s */
};

/* Counters, for the status file and /metrics. Errors are final failures (after retries), by
 * kind (enum http_error_kind, http.h); retries and attempts count every try. */
#define ORIGIN_HTTP_ERROR_KINDS 9
struct origin_http_stats {
	uint64_t requests;  /* fetches asked */
	uint64_t attempts;  /* HTTP requests sent, retries included */
	uint64_t retries;   /* attempts after the first */
	uint64_t bytes;	    /* body bytes delivered to callers */
	uint64_t succeeded; /* fetches delivered */
	uint64_t failed;    /* fetches failed after retries */
	uint64_t in_flight; /* fetches not yet completed (waiting for a retry included) */
	uint64_t errors[ORIGIN_HTTP_ERROR_KINDS]; /* failed, by kind */
};

/* Reads the token / basic auth files (warns if they are readable by others), checks the URL
 * (http or https only, also for redirects) and registers a timerfd with the loop. Returns 0
 * or -errno (-EINVAL bad URL, -ENOENT/-EACCES credential file, -ENOMEM), logged. */
int origin_http_new(struct loop *loop, const struct origin_http_options *opts, struct origin **out);

/* The counters of an HTTP origin; NULL if o is another kind of origin. */
const struct origin_http_stats *origin_http_get_stats(const struct origin *o);

static inline int origin_fetch(struct origin *o, const char *digest, uint64_t off, size_t len,
			       void *buf, origin_done_fn done, void *userdata)
{
	return o->ops->fetch(o, digest, off, len, buf, done, userdata);
}

/* As origin_fetch(), with the blob's size as the catalogue gives it (0: not known). An origin
 * that can check it (HTTP: Content-Range's total) fails the fetch with -EIO on a mismatch. */
static inline int origin_fetch_sized(struct origin *o, const char *digest, uint64_t blob_size,
				     uint64_t off, size_t len, void *buf, origin_done_fn done,
				     void *userdata)
{
	if (o->ops->fetch_sized)
		return o->ops->fetch_sized(o, digest, blob_size, off, len, buf, done, userdata);
	return o->ops->fetch(o, digest, off, len, buf, done, userdata);
}

/* Fetch bytes [off, off + len) of catalogue blob b: by path for an in-place blob (then
 * off + len <= b->file_size; -EOPNOTSUPP if the origin cannot), by digest otherwise. */
static inline int origin_fetch_blob(struct origin *o, const struct catalogue_blob *b, uint64_t off,
				    size_t len, void *buf, origin_done_fn done, void *userdata)
{
	if (b->path[0]) {
		if (!o->ops->fetch_path)
			return -EOPNOTSUPP;
		return o->ops->fetch_path(o, b->digest, b->path, b->file_size, off, len, buf, done,
					  userdata);
	}
	return origin_fetch_sized(o, b->digest, b->size, off, len, buf, done, userdata);
}

static inline void origin_free(struct origin *o)
{
	if (o)
		o->ops->free(o);
}
