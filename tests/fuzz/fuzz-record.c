// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the record of a name-keyed cache file (ondemand_records.h), which is read
 * back from the state directory after a crash or by hand edits. Any input: no crash, no read
 * outside the buffer (ASan); an accepted record formats back to exactly the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/ondemand_records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A heap copy of exactly `size` bytes, so that ASan sees any overread. */
	char *buf = malloc(size ? size : 1), text[256];
	struct od_record r;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (od_record_parse(buf, size, &r) == 0) {
		int n = od_record_format(&r, text, sizeof(text));
		if (n < 0 || (size_t)n != size || memcmp(text, buf, size) != 0)
			abort();
	}
	free(buf);
	return 0;
}
