// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the origin's model index (catalogue_parse_index), which a node with
 * [origin] catalogue = yes reads from the origin (possibly over HTTP). Any input: no crash, no
 * read outside the buffer (ASan); every accepted name is a valid model name. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), **names = NULL, err[256];
	size_t n = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (catalogue_parse_index(buf, size, &names, &n, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (!name_is_valid_model(names[i], strlen(names[i])))
				abort();
			free(names[i]);
		}
		free(names);
	}
	free(buf);
	return 0;
}
