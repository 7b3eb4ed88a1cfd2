// SPDX-License-Identifier: GPL-2.0-or-later
#include "verify.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "names.h"

/* One-shot EVP_Digest: no context shared between calls or threads. */
static int sha256(const void *buf, size_t len, uint8_t md[CATALOGUE_DIGEST_SIZE])
{
	unsigned int md_len = 0;

	if (EVP_Digest(buf, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len != CATALOGUE_DIGEST_SIZE)
		return -EIO;
	return 0;
}

int verify_range(const struct catalogue_blob *b, uint64_t off, const void *buf, uint64_t len,
		 uint64_t *bad_chunk)
{
	const uint8_t *p = buf;
	uint64_t chunk, first, count;

	if (!b)
		return -EINVAL;
	chunk = b->digest_chunk_size;
	if (!chunk || !b->chunk_digests || !b->n_chunk_digests)
		return -ENODATA;
	if (!buf || len == 0 || off % chunk || off >= b->size || len > b->size - off)
		return -EINVAL;
	if (len % chunk && off + len != b->size)
		return -EINVAL;
	first = off / chunk;
	count = len / chunk + (len % chunk != 0);
	if (first >= b->n_chunk_digests || count > b->n_chunk_digests - first)
		return -EINVAL;

	for (uint64_t i = 0; i < count; i++) {
		uint64_t piece = len - i * chunk < chunk ? len - i * chunk : chunk;
		uint8_t md[CATALOGUE_DIGEST_SIZE];
		int r = sha256(p + i * chunk, (size_t)piece, md);

		if (r < 0)
			return r;
		if (memcmp(md, b->chunk_digests[first + i], sizeof(md)) != 0) {
			if (bad_chunk)
				*bad_chunk = first + i;
			return -EBADMSG;
		}
	}
	return 0;
}

int verify_whole(const char *hex_digest, const void *buf, uint64_t len)
{
	static const char digits[] = "0123456789abcdef";
	uint8_t md[CATALOGUE_DIGEST_SIZE];
	int r;

	if (!hex_digest || !name_is_digest(hex_digest, strnlen(hex_digest, DIGEST_HEX_LEN + 1)))
		return -EINVAL;
	if (!buf && len)
		return -EINVAL;
	r = sha256(buf ? buf : "", (size_t)len, md);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(md); i++)
		if (hex_digest[2 * i] != digits[md[i] >> 4] ||
		    hex_digest[2 * i + 1] != digits[md[i] & 0xf])
			return -EBADMSG;
	return 0;
}
