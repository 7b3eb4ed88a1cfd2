// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the /dev/cachefiles message parser. Any input: no crash, no read outside the
 * buffer (ASan), and an accepted OPEN's keys lie inside the message. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "frontend/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg m;
	size_t len;
	/* A heap copy of exactly `size` bytes, so that ASan sees any overread. */
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	for (size_t i = 0; i < size; i++)
		buf[i] = data[i];
	if (msg_parse(buf, size, &m) == 0 && m.opcode == MSG_OPEN) {
		const uint8_t *end = buf + size;
		if ((const uint8_t *)m.open.cookie_key + m.open.cookie_key_len > end ||
		    (const uint8_t *)m.open.volume_key + m.open.volume_key_len > end)
			abort();
		msg_volume_name(&m, &len);
	}
	free(buf);
	return 0;
}
