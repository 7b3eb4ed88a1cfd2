/* SPDX-License-Identifier: GPL-2.0-or-later */
/* EROFS mounts in this mount namespace, from /proc/self/mountinfo (libmount): which models are
 * mounted, and in which cachefiles volume. Shared by the space manager (refuse to evict a
 * mounted model), the retained model versions and the on-demand front end (a re-OPEN of a live
 * mount after a restart). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Do an EROFS mount's super options (mountinfo's last field, e.g. "ro,fsid=m,domain_id=d")
 * name model fsid, in cachefiles volume `volume` (the name after "erofs,": the domain_id, or
 * the fsid without one)? volume NULL: any volume. Pure. */
bool erofs_options_match(const char *fs_options, const char *fsid, const char *volume);

/* How many EROFS mounts match fsid (and volume, unless NULL) now; the first one's mount point
 * goes into where (if where_len > 0; "" when none). 0 if mountinfo cannot be read. */
unsigned erofs_mounts_count(const char *fsid, const char *volume, char *where, size_t where_len);

/* How many EROFS mounts have source device `source` (e.g. "/dev/ublkb3": a model mounted
 * through ublk) now; the first one's mount point goes into where as above. */
unsigned erofs_mounts_of_device(const char *source, char *where, size_t where_len);
