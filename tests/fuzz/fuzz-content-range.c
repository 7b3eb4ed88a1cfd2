// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the Content-Range parser and the response check built on it. Whatever
 * the server sends, a value is either refused or yields a range the check then holds to. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	uint64_t first, last, total;
	const char *reason = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (http_parse_content_range(text, &first, &last, &total) == 0) {
		uint64_t len = last - first + 1;

		if (first > last || (total != HTTP_TOTAL_UNKNOWN && last >= total))
			abort();
		/* The exact range and size asked: accepted, whatever the spelling. */
		if (len != 0 && total != HTTP_TOTAL_UNKNOWN &&
		    http_check_response(206, text, -1, len, first, len, total, &reason) != 0)
			abort();
		/* Any other range asked: refused, with a reason. */
		if (len > 1 && (http_check_response(206, text, -1, len - 1, first, len - 1, total,
						    &reason) != -EIO ||
				!reason))
			abort();
	}
	/* Whatever the value, a check never accepts a wrong body length. */
	if (http_check_response(206, text, -1, 9, 0, 10, 100, &reason) == 0 ||
	    http_check_response(206, text, -1, 11, 0, 10, 100, &reason) == 0)
		abort();
	free(text);
	return 0;
}
