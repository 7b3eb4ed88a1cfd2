/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Parsing of the messages the kernel sends on /dev/cachefiles in on-demand mode
 * (include/uapi/linux/cachefiles.h). Pure functions over a byte buffer: no syscalls, so the
 * parser is unit-tested and fuzzed on the host.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define MSG_MAX_SIZE 1024 /* CACHEFILES_MSG_MAX_SIZE */

enum msg_opcode {
	MSG_OPEN = 0,
	MSG_CLOSE = 1,
	MSG_READ = 2,
};

struct msg {
	uint32_t msg_id;
	uint32_t opcode;
	uint32_t object_id;
	union {
		struct {
			/* Volume key without its trailing NUL, e.g. "erofs,model123". Points into
			 * the buffer; volume_key_len excludes the NUL. */
			const char *volume_key;
			size_t volume_key_len;
			/* Cookie key: NOT NUL-terminated. */
			const char *cookie_key;
			size_t cookie_key_len;
			int fd;
			uint32_t flags;
		} open;
		struct {
			uint64_t off;
			uint64_t len;
		} read;
	};
};

/*
 * Parse one message of n bytes (what one read() returned).
 * Returns 0, or:
 *   -EBADMSG  the header is short or its length field disagrees with n;
 *   -EPROTO   an unknown opcode or a payload inconsistent with its opcode.
 * For OPEN messages whose header parsed, out->open.fd is set (or -1) even on -EPROTO, so the
 * caller can close the fd and reject the request (copen with an error).
 */
int msg_parse(const void *buf, size_t n, struct msg *out);

/* The volume key of an EROFS mount is "erofs,<fsid or domain_id>". Returns a pointer to the
 * name part and its length in *name_len, or NULL if the key has another form. */
const char *msg_volume_name(const struct msg *m, size_t *name_len);
