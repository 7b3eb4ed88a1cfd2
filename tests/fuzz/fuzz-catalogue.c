// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the catalogue (model file) parser; a parsed model formats and parses back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	struct catalogue_model m = { 0 }, back = { 0 };
	char err[512];

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (catalogue_parse_model(text, "fuzz", &m, err, sizeof(err)) == 0) {
		char *out = catalogue_format_model(&m);
		if (out) {
			if (catalogue_parse_model(out, "formatted", &back, err, sizeof(err)) != 0)
				abort();
			catalogue_model_free(&back);
			free(out);
		}
		catalogue_model_free(&m);
	}
	free(text);
	return 0;
}
