// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/msg.h"

#include <errno.h>
#include <string.h>

/* Wire layout, little endian host order (the kernel writes native structs). */
struct wire_msg {
	uint32_t msg_id;
	uint32_t opcode;
	uint32_t len;
	uint32_t object_id;
};

struct wire_open {
	uint32_t volume_key_size;
	uint32_t cookie_key_size;
	uint32_t fd;
	uint32_t flags;
};

struct wire_read {
	uint64_t off;
	uint64_t len;
};

int msg_parse(const void *buf, size_t n, struct msg *out)
{
	const unsigned char *p = buf;
	struct wire_msg hdr;

	memset(out, 0, sizeof(*out));
	out->open.fd = -1;
	if (!buf || n < sizeof(hdr) || n > MSG_MAX_SIZE)
		return -EBADMSG;
	memcpy(&hdr, p, sizeof(hdr));
	if (hdr.len != n)
		return -EBADMSG;
	out->msg_id = hdr.msg_id;
	out->opcode = hdr.opcode;
	out->object_id = hdr.object_id;
	p += sizeof(hdr);
	n -= sizeof(hdr);

	switch (hdr.opcode) {
	case MSG_OPEN: {
		struct wire_open o;
		if (n < sizeof(o))
			return -EPROTO;
		memcpy(&o, p, sizeof(o));
		out->open.fd = (int)o.fd;
		out->open.flags = o.flags;
		if ((int)o.fd < 0)
			return -EPROTO;
		p += sizeof(o);
		n -= sizeof(o);
		/* Sizes are checked one at a time so that their sum cannot overflow. */
		if (o.volume_key_size == 0 || o.volume_key_size > n ||
		    o.cookie_key_size > n - o.volume_key_size)
			return -EPROTO;
		/* The volume key carries its NUL, inside its size, and no other. */
		if (p[o.volume_key_size - 1] != '\0' ||
		    memchr(p, '\0', o.volume_key_size - 1) != NULL)
			return -EPROTO;
		out->open.volume_key = (const char *)p;
		out->open.volume_key_len = o.volume_key_size - 1;
		out->open.cookie_key = (const char *)p + o.volume_key_size;
		out->open.cookie_key_len = o.cookie_key_size;
		return 0;
	}
	case MSG_READ: {
		struct wire_read r;
		if (n != sizeof(r))
			return -EPROTO;
		memcpy(&r, p, sizeof(r));
		if (r.len == 0 || r.off > UINT64_MAX - r.len)
			return -EPROTO;
		out->read.off = r.off;
		out->read.len = r.len;
		return 0;
	}
	case MSG_CLOSE:
		return n == 0 ? 0 : -EPROTO;
	default:
		return -EPROTO;
	}
}

const char *msg_volume_name(const struct msg *m, size_t *name_len)
{
	static const char prefix[] = "erofs,";
	const size_t plen = sizeof(prefix) - 1;

	if (m->opcode != MSG_OPEN || m->open.volume_key_len <= plen ||
	    memcmp(m->open.volume_key, prefix, plen) != 0)
		return NULL;
	*name_len = m->open.volume_key_len - plen;
	return m->open.volume_key + plen;
}
