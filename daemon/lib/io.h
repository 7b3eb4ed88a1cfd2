/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small I/O helpers. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* pread() until len bytes, end of file or an error; retries EINTR. Returns the number of bytes
 * read (less than len only at end of file), or -errno. */
ssize_t pread_full(int fd, void *buf, size_t len, off_t off);

/* mkdir -p with mode 0755 for each missing component. Returns 0 or -errno. */
int mkdir_parents(const char *path);

/* Replace path with len bytes of buf atomically: a hidden temp file beside it (mode 0644),
 * fsync, rename, fsync of the directory; a crash leaves the old content or the new, never a
 * mix. Returns 0 or -errno. */
int write_file_atomic(const char *path, const void *buf, size_t len);
