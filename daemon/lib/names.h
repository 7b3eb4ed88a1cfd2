/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Validation of names that arrive from outside (mount options, CLI, catalogue files).
 * Keys in OPEN messages come from whoever can mount: they are checked here before any
 * origin or cache access. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MODEL_NAME_MAX 64
#define DIGEST_HEX_LEN 64 /* sha256, lower-case hex */

/* A model name (the fsid given at mount time): 1..64 bytes of [A-Za-z0-9._-], first byte
 * alphanumeric (so no "." / ".." and no leading '-'). `len` is the number of bytes to check;
 * a NUL inside those bytes makes the name invalid. */
bool name_is_valid_model(const char *s, size_t len);

/* A blob digest: exactly 64 lower-case hex digits. */
bool name_is_digest(const char *s, size_t len);
