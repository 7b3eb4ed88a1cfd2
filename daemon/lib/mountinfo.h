/* SPDX-License-Identifier: GPL-2.0-or-later */
/* EROFS mounts of this mount namespace, from /proc/self/mountinfo. */
#pragma once

#include <stddef.h>

/* How many EROFS mounts carry the option fsid=FSID; the mount point of the first goes into
 * `where` (empty when none; where_len may be 0). A mountinfo that cannot be read counts 0. */
unsigned mountinfo_count_erofs(const char *fsid, char *where, size_t where_len);
