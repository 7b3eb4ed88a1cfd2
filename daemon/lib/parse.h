/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsers for configuration values. All return 0 or -EINVAL / -ERANGE and never exit. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* "4096", "4K", "1M", "2G", "1T" (binary multiples, optional "iB"/"B" suffix). */
int parse_size(const char *s, uint64_t *out);
/* "30", "30s", "500ms", "2m", "1h", "7d" -> milliseconds. A bare number is seconds. */
int parse_duration_ms(const char *s, uint64_t *out);
/* "yes/no/true/false/on/off/1/0" */
int parse_bool(const char *s, bool *out);
/* An integer within [min, max], optional trailing '%'. */
int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out);
