// SPDX-License-Identifier: GPL-2.0-or-later
/* libFuzzer target: the configuration parser and validator, and print -> parse on success. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "configfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char err[512];
	struct config c;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_init_defaults(&c) == 0) {
		if (config_parse_text(&c, text, "fuzz", err, sizeof(err)) == 0 &&
		    config_validate(&c, err, sizeof(err)) == 0) {
			char *out = NULL;
			size_t len = 0;
			FILE *f = open_memstream(&out, &len);
			struct config back;
			if (f) {
				config_print(&c, f);
				fclose(f);
				/* What we print must parse back. */
				if (config_init_defaults(&back) == 0) {
					if (config_parse_text(&back, out, "printed", err,
							      sizeof(err)) != 0)
						abort();
					config_free(&back);
				}
				free(out);
			}
		}
		config_free(&c);
	}
	free(text);
	return 0;
}
