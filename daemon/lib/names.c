// SPDX-License-Identifier: GPL-2.0-or-later
#include "names.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool name_is_valid_model(const char *s, size_t len)
{
	if (!s || len == 0 || len > MODEL_NAME_MAX || !is_alnum(s[0]))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
			return false;
	}
	return true;
}

bool name_is_digest(const char *s, size_t len)
{
	if (!s || len != DIGEST_HEX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}
