/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the unit tests: temporary trees and whole-file I/O. */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh directory under $TMPDIR (or /tmp); abort()s if it cannot be made. */
static inline char *test_make_temp_dir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = NULL;

	if (asprintf(&path, "%s/blobcache-test-XXXXXX", base) < 0 || !mkdtemp(path)) {
		perror("test_make_temp_dir");
		abort();
	}
	return path;
}

static inline int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static inline void test_remove_tree(const char *path)
{
	if (path)
		nftw(path, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void test_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "we");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/* Whole file, NUL-terminated (the NUL is not counted in *len). NULL if it cannot be read. */
static inline char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t size = 0, got = 0;

	if (len)
		*len = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (got + 4096 + 1 > size) {
			size = (got + 4096 + 1) * 2;
			buf = realloc(buf, size);
			if (!buf)
				abort();
		}
		size_t n = fread(buf + got, 1, size - got - 1, f);
		got += n;
		if (n == 0)
			break;
	}
	fclose(f);
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

/* Number of entries of a directory, "." and ".." excluded; -1 if it cannot be read. */
static inline int test_count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static inline char *test_path(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		abort();
	return p;
}
