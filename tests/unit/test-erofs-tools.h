/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Running the real erofs-utils from the unit tests (test-erofs-tools.c): mkfs.erofs makes the
 * images the reader is tested on, fsck.erofs checks and extracts the images the writer and
 * publish --in-place make. */
#pragma once

#include <stddef.h>

/* Run argv[0] (a full path) with argv, wait for it: its exit status, or -1 if it could not be
 * started or did not exit. */
int test_run(char *const argv[]);

/* fsck.erofs the metadata blob `meta` with the extra devices `devices` (in device order, each
 * a whole number of blocks) and extract its tree into `out` (not there yet), without owners or
 * times: fsck.erofs's exit status, or -1 as test_run. */
int test_fsck_extract(const char *meta, const char *const devices[], size_t n_devices,
		      const char *out);
