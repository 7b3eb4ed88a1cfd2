/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Proof that bytes fetched from an origin are the blob's bytes, before the kernel sees them.
 *
 * Data: every digest chunk (catalogue_blob.digest_chunk_size bytes, the last one shorter) is
 * checked against the sha256 recorded at publish time. Metadata blob: its whole content against
 * its name, before the OPEN answer lets the kernel parse it (reliability rows C3, F2).
 *
 * Pure and thread-safe: no shared state, one digest computation per call (worker threads call
 * these concurrently).
 */
#pragma once

#include <stdint.h>

#include "catalogue.h"

/* Check bytes [off, off + len) of blob `b`, held in `buf`. `off` must be a multiple of
 * b->digest_chunk_size and `len` a whole number of digest chunks, except that the range may end
 * exactly at the blob's end (b->size) with a shorter last chunk; len > 0.
 * Returns 0 if every covered chunk's sha256 matches; -EBADMSG on the first chunk that does not
 * (its index in the blob in *bad_chunk, if bad_chunk is not NULL); -EINVAL if the range is not
 * aligned, empty or beyond the blob, or the blob's digests do not cover it; -ENODATA if the
 * blob has no chunk digests; -EIO if the digest cannot be computed (OpenSSL failure). */
int verify_range(const struct catalogue_blob *b, uint64_t off, const void *buf, uint64_t len,
		 uint64_t *bad_chunk);

/* Check that the sha256 of buf[0, len) is `hex_digest` (64 lower-case hex digits, e.g. a blob
 * name). Returns 0 if it is; -EBADMSG if not; -EINVAL if hex_digest is not a digest; -EIO if
 * the digest cannot be computed. */
int verify_whole(const char *hex_digest, const void *buf, uint64_t len);
