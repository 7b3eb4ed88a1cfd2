// SPDX-License-Identifier: GPL-2.0-or-later
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_u64_prefix(const char *s, uint64_t *out, const char **end)
{
	char *e;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &e, 10);
	if (errno == ERANGE)
		return -ERANGE;
	*out = v;
	*end = e;
	return 0;
}

static int mul_checked(uint64_t v, uint64_t m, uint64_t *out)
{
	if (m && v > UINT64_MAX / m)
		return -ERANGE;
	*out = v * m;
	return 0;
}

int parse_size(const char *s, uint64_t *out)
{
	const char *e;
	uint64_t v, m = 1;
	int r = parse_u64_prefix(s, &v, &e);

	if (r < 0)
		return r;
	switch (toupper((unsigned char)*e)) {
	case '\0':
		return (*out = v), 0;
	case 'B':
		e--; /* "B" alone: bytes */
		break;
	case 'K':
		m = 1ULL << 10;
		break;
	case 'M':
		m = 1ULL << 20;
		break;
	case 'G':
		m = 1ULL << 30;
		break;
	case 'T':
		m = 1ULL << 40;
		break;
	default:
		return -EINVAL;
	}
	e++;
	if (!(*e == '\0' || strcasecmp(e, "B") == 0 || strcasecmp(e, "iB") == 0))
		return -EINVAL;
	return mul_checked(v, m, out);
}

int parse_duration_ms(const char *s, uint64_t *out)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "", 1000 },	  { "s", 1000 },    { "ms", 1 },       { "m", 60000 },
		{ "min", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	const char *e;
	uint64_t v;
	int r = parse_u64_prefix(s, &v, &e);

	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(e, units[i].suffix) == 0)
			return mul_checked(v, units[i].ms, out);
	return -EINVAL;
}

int parse_bool(const char *s, bool *out)
{
	static const char *yes[] = { "1", "yes", "true", "on" };
	static const char *no[] = { "0", "no", "false", "off" };

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return (*out = true), 0;
		if (strcasecmp(s, no[i]) == 0)
			return (*out = false), 0;
	}
	return -EINVAL;
}

int parse_uint_range(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *e;
	uint64_t v;
	int r = parse_u64_prefix(s, &v, &e);

	if (r < 0)
		return r;
	if (!(*e == '\0' || (e[0] == '%' && e[1] == '\0')))
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
