// SPDX-License-Identifier: GPL-2.0-or-later
/* The /dev/cachefiles message parser: every message shape the kernel sends, and the malformed
 * ones it must never trust. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>

#include "frontend/msg.h"

struct hdr {
	uint32_t msg_id, opcode, len, object_id;
};

static size_t build_open(unsigned char *buf, const char *volume, size_t volume_size,
			 const char *cookie, size_t cookie_size, int32_t fd)
{
	struct hdr h = { .msg_id = 7, .opcode = MSG_OPEN, .object_id = 3 };
	uint32_t o[4] = { (uint32_t)volume_size, (uint32_t)cookie_size, (uint32_t)fd, 0 };
	size_t n = sizeof(h) + sizeof(o);

	memcpy(buf + n, volume, volume_size);
	n += volume_size;
	memcpy(buf + n, cookie, cookie_size);
	n += cookie_size;
	h.len = (uint32_t)n;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), o, sizeof(o));
	return n;
}

static void open_parses_keys_and_fd(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	size_t n = build_open(buf, "erofs,model123", 15, "model123", 8, 9);
	struct msg m;
	size_t name_len;
	const char *name;

	assert_int_equal(msg_parse(buf, n, &m), 0);
	assert_int_equal(m.msg_id, 7);
	assert_int_equal(m.object_id, 3);
	assert_int_equal(m.opcode, MSG_OPEN);
	assert_int_equal(m.open.fd, 9);
	assert_int_equal(m.open.volume_key_len, 14);
	assert_memory_equal(m.open.volume_key, "erofs,model123", 14);
	assert_int_equal(m.open.cookie_key_len, 8);
	assert_memory_equal(m.open.cookie_key, "model123", 8);
	name = msg_volume_name(&m, &name_len);
	assert_non_null(name);
	assert_int_equal(name_len, 8);
	assert_memory_equal(name, "model123", 8);
}

static void open_with_empty_cookie_key(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	size_t n = build_open(buf, "erofs,m", 8, "", 0, 4);
	struct msg m;

	assert_int_equal(msg_parse(buf, n, &m), 0);
	assert_int_equal(m.open.cookie_key_len, 0);
}

static void open_volume_key_without_nul_is_rejected_but_fd_reported(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	size_t n = build_open(buf, "erofs,abc", 9, "abc", 3, 5);
	struct msg m;

	assert_int_equal(msg_parse(buf, n, &m), -EPROTO);
	/* The fd is already in our table: the caller must learn it to close it. */
	assert_int_equal(m.open.fd, 5);
}

static void open_volume_key_with_inner_nul_is_rejected(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	size_t n = build_open(buf, "erofs\0x", 8, "x", 1, 5);
	struct msg m;

	assert_int_equal(msg_parse(buf, n, &m), -EPROTO);
}

static void open_key_sizes_beyond_message_are_rejected(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	size_t n = build_open(buf, "erofs,m", 8, "m", 1, 5);
	struct msg m;
	uint32_t huge = 0xffffffffu;

	/* cookie_key_size overflowing the sum */
	memcpy(buf + sizeof(struct hdr) + 4, &huge, 4);
	assert_int_equal(msg_parse(buf, n, &m), -EPROTO);
	/* volume_key_size larger than the payload */
	n = build_open(buf, "erofs,m", 8, "m", 1, 5);
	memcpy(buf + sizeof(struct hdr), &huge, 4);
	assert_int_equal(msg_parse(buf, n, &m), -EPROTO);
	/* volume_key_size zero */
	n = build_open(buf, "erofs,m", 8, "m", 1, 5);
	memset(buf + sizeof(struct hdr), 0, 4);
	assert_int_equal(msg_parse(buf, n, &m), -EPROTO);
}

static void open_truncated_payload_is_rejected(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	struct hdr h = { .msg_id = 1, .opcode = MSG_OPEN, .len = sizeof(h) + 8 };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	memset(buf + sizeof(h), 0, 8);
	assert_int_equal(msg_parse(buf, h.len, &m), -EPROTO);
	assert_int_equal(m.open.fd, -1);
}

static void read_parses_range(void **state)
{
	unsigned char buf[64];
	struct hdr h = { .msg_id = 11, .opcode = MSG_READ, .len = sizeof(h) + 16, .object_id = 2 };
	uint64_t r[2] = { 1 << 20, 65536 };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), r, sizeof(r));
	assert_int_equal(msg_parse(buf, h.len, &m), 0);
	assert_int_equal(m.opcode, MSG_READ);
	assert_int_equal(m.read.off, 1 << 20);
	assert_int_equal(m.read.len, 65536);
	assert_int_equal(m.object_id, 2);
}

static void read_with_wrapping_range_or_zero_len_is_rejected(void **state)
{
	unsigned char buf[64];
	struct hdr h = { .msg_id = 11, .opcode = MSG_READ, .len = sizeof(h) + 16 };
	uint64_t r[2] = { UINT64_MAX - 10, 4096 };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), r, sizeof(r));
	assert_int_equal(msg_parse(buf, h.len, &m), -EPROTO);
	r[0] = 0;
	r[1] = 0;
	memcpy(buf + sizeof(h), r, sizeof(r));
	assert_int_equal(msg_parse(buf, h.len, &m), -EPROTO);
}

static void close_parses_and_rejects_payload(void **state)
{
	unsigned char buf[64] = { 0 };
	struct hdr h = { .msg_id = 12, .opcode = MSG_CLOSE, .len = sizeof(h), .object_id = 4 };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_parse(buf, h.len, &m), 0);
	assert_int_equal(m.opcode, MSG_CLOSE);
	assert_int_equal(m.object_id, 4);
	h.len += 4;
	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_parse(buf, h.len, &m), -EPROTO);
}

static void header_length_must_match_read_size(void **state)
{
	unsigned char buf[64] = { 0 };
	struct hdr h = { .opcode = MSG_CLOSE, .len = sizeof(h) };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_parse(buf, sizeof(h) + 1, &m), -EBADMSG);
	assert_int_equal(msg_parse(buf, sizeof(h) - 1, &m), -EBADMSG);
	assert_int_equal(msg_parse(buf, 0, &m), -EBADMSG);
	assert_int_equal(msg_parse(NULL, 16, &m), -EBADMSG);
	assert_int_equal(msg_parse(buf, MSG_MAX_SIZE + 1, &m), -EBADMSG);
}

static void unknown_opcode_is_rejected(void **state)
{
	unsigned char buf[64] = { 0 };
	struct hdr h = { .opcode = 3, .len = sizeof(h) };
	struct msg m;

	memcpy(buf, &h, sizeof(h));
	assert_int_equal(msg_parse(buf, h.len, &m), -EPROTO);
}

static void volume_name_needs_erofs_prefix(void **state)
{
	unsigned char buf[MSG_MAX_SIZE];
	struct msg m;
	size_t len;
	size_t n = build_open(buf, "nfs,abc", 8, "abc", 3, 5);

	assert_int_equal(msg_parse(buf, n, &m), 0);
	assert_null(msg_volume_name(&m, &len));
	n = build_open(buf, "erofs,", 7, "abc", 3, 5);
	assert_int_equal(msg_parse(buf, n, &m), 0);
	assert_null(msg_volume_name(&m, &len));
}

/* Every prefix and every single-byte corruption of a valid OPEN: never a crash, never a key
 * pointing outside the buffer. (The fuzz target goes further; this runs in every build.) */
static void corruptions_never_escape_the_buffer(void **state)
{
	unsigned char good[MSG_MAX_SIZE], buf[MSG_MAX_SIZE];
	size_t n = build_open(good, "erofs,model123", 15, "model123", 8, 9);
	struct msg m;

	for (size_t cut = 0; cut <= n; cut++) {
		memcpy(buf, good, n);
		msg_parse(buf, cut, &m);
	}
	for (size_t i = 0; i < n; i++)
		for (int v = 0; v < 256; v += 17) {
			memcpy(buf, good, n);
			buf[i] = (unsigned char)v;
			if (msg_parse(buf, n, &m) == 0 && m.opcode == MSG_OPEN) {
				const unsigned char *end = buf + n;
				assert_true((const unsigned char *)m.open.volume_key >= buf);
				assert_true((const unsigned char *)m.open.cookie_key +
						    m.open.cookie_key_len <=
					    end);
			}
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(open_parses_keys_and_fd),
		cmocka_unit_test(open_with_empty_cookie_key),
		cmocka_unit_test(open_volume_key_without_nul_is_rejected_but_fd_reported),
		cmocka_unit_test(open_volume_key_with_inner_nul_is_rejected),
		cmocka_unit_test(open_key_sizes_beyond_message_are_rejected),
		cmocka_unit_test(open_truncated_payload_is_rejected),
		cmocka_unit_test(read_parses_range),
		cmocka_unit_test(read_with_wrapping_range_or_zero_len_is_rejected),
		cmocka_unit_test(close_parses_and_rejects_payload),
		cmocka_unit_test(header_length_must_match_read_size),
		cmocka_unit_test(unknown_opcode_is_rejected),
		cmocka_unit_test(volume_name_needs_erofs_prefix),
		cmocka_unit_test(corruptions_never_escape_the_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
