// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/spacescan.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macros.h"

/* ---- records ---- */

struct space_entry *space_entry_find(struct space_entry *list, const char *volume, size_t vlen,
				     const char *key, size_t klen)
{
	for (struct space_entry *e = list; e; e = e->next)
		if (strlen(e->volume) == vlen && memcmp(e->volume, volume, vlen) == 0 &&
		    strlen(e->key) == klen && memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

struct space_entry *space_entry_get(struct space_entry **list, const char *volume, size_t vlen,
				    const char *key, size_t klen, int64_t last_use)
{
	struct space_entry *e = space_entry_find(*list, volume, vlen, key, klen);

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->volume = strndup(volume, vlen);
	e->key = strndup(key, klen);
	if (!e->volume || !e->key) {
		free(e->volume);
		free(e->key);
		free(e);
		return NULL;
	}
	e->fd = -1;
	e->last_use = last_use;
	e->next = *list;
	*list = e;
	return e;
}

void space_entry_free(struct space_entry *e)
{
	free(e->volume);
	free(e->key);
	free(e->dir);
	free(e);
}

/* ---- building a scan (any thread) ---- */

void space_scan_add(struct space_scan *s, const char *volume, const char *key, const char *dir,
		    uint64_t bytes, uint64_t cached, int64_t mtime_ms, bool listed)
{
	struct space_scan_item *it;

	if (s->failed)
		return;
	if (s->n_items == s->cap_items) {
		size_t cap = s->cap_items ? s->cap_items * 2 : 256;
		struct space_scan_item *n = reallocarray(s->items, cap, sizeof(*n));
		if (!n) {
			s->failed = true;
			return;
		}
		s->items = n;
		s->cap_items = cap;
	}
	it = &s->items[s->n_items];
	*it = (struct space_scan_item){
		.bytes = bytes, .cached = cached, .mtime_ms = mtime_ms, .listed = listed
	};
	it->volume = strdup(volume);
	it->key = strdup(key);
	it->dir = dir ? strdup(dir) : NULL;
	if (!it->volume || !it->key || (dir && !it->dir)) {
		free(it->volume);
		free(it->key);
		free(it->dir);
		s->failed = true;
		return;
	}
	s->n_items++;
}

void space_scan_add_leftover(struct space_scan *s, const char *key)
{
	if (s->failed)
		return;
	if (s->n_leftovers == s->cap_leftovers) {
		size_t cap = s->cap_leftovers ? s->cap_leftovers * 2 : 8;
		char **n = reallocarray(s->leftovers, cap, sizeof(*n));
		if (!n) {
			s->failed = true;
			return;
		}
		s->leftovers = n;
		s->cap_leftovers = cap;
	}
	if (!(s->leftovers[s->n_leftovers] = strdup(key))) {
		s->failed = true;
		return;
	}
	s->n_leftovers++;
}

void space_scan_add_open(struct space_scan *s, const struct space_entry *list)
{
	size_t n = 0;

	for (const struct space_entry *e = list; e; e = e->next)
		n += e->fd >= 0;
	if (!n || s->failed)
		return;
	s->open = calloc(n, sizeof(*s->open));
	if (!s->open) {
		s->failed = true;
		return;
	}
	for (const struct space_entry *e = list; e; e = e->next) {
		struct space_scan_open *o = &s->open[s->n_open];

		if (e->fd < 0)
			continue;
		/* A dup: the walk may measure it after the object is gone. It shares the file
		 * offset, which no user of the object's fd relies on (SEEK_DATA/SEEK_HOLE with
		 * an explicit offset, pread, pwrite). */
		o->fd = fcntl(e->fd, F_DUPFD_CLOEXEC, 3);
		o->volume = strdup(e->volume);
		o->key = strdup(e->key);
		s->n_open++;
		if (o->fd < 0 || !o->volume || !o->key) {
			s->failed = true;
			return;
		}
	}
}

/* One fan-out directory: its D<key> regular files. */
static void scan_fanout(struct space_scan *s, const char *path, const char *volume)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) && !s->failed) {
		struct stat st;

		/* 'D': a key that is printable ASCII; erofs keys (names, digests) always are. */
		if (de->d_name[0] != 'D' || !de->d_name[1])
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		space_scan_add(s, volume, de->d_name + 1, path, (uint64_t)st.st_blocks * 512, 0,
			       (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000,
			       false);
	}
	closedir(d);
}

void space_scan_store(struct space_scan *s, const char *store_dir)
{
	DIR *store = opendir(store_dir);
	struct dirent *de;

	if (!store)
		return;
	while ((de = readdir(store)) && !s->failed) {
		char vpath[PATH_MAX];
		DIR *vol;
		struct dirent *fe;

		if (de->d_name[0] != 'I')
			continue;
		snprintf(vpath, sizeof(vpath), "%s/%s", store_dir, de->d_name);
		vol = opendir(vpath);
		if (!vol)
			continue;
		while ((fe = readdir(vol))) {
			char fpath[PATH_MAX + NAME_MAX + 2];
			if (fe->d_name[0] != '@')
				continue;
			snprintf(fpath, sizeof(fpath), "%s/%s", vpath, fe->d_name);
			scan_fanout(s, fpath, de->d_name + 1);
		}
		closedir(vol);
	}
	closedir(store);
}

/* Bytes of data in a file, by SEEK_DATA/SEEK_HOLE: the object's fd is not the cache file
 * (fstat shows an anonymous inode) but seeks through to it. */
static uint64_t data_bytes(int fd)
{
	uint64_t total = 0;
	off_t pos = 0;

	for (int extents = 0; extents < 65536; extents++) {
		off_t data = lseek(fd, pos, SEEK_DATA), hole;
		if (data < 0)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole <= data)
			break;
		total += (uint64_t)(hole - data);
		pos = hole;
	}
	return total;
}

static bool scan_found(const struct space_scan *s, const char *volume, const char *key)
{
	for (size_t i = 0; i < s->n_items; i++)
		if (streq(s->items[i].key, key) && streq(s->items[i].volume, volume))
			return true;
	return false;
}

void space_scan_measure_open(struct space_scan *s)
{
	/* An open object's file may not be linked yet (new objects are temporary files until
	 * the kernel commits them): its size comes from the object's fd. */
	for (size_t i = 0; i < s->n_open; i++) {
		struct space_scan_open *o = &s->open[i];

		if (o->fd < 0 || scan_found(s, o->volume, o->key))
			continue;
		o->data_bytes = data_bytes(o->fd);
		o->measured = true;
	}
}

void space_scan_free(struct space_scan *s)
{
	for (size_t i = 0; i < s->n_items; i++) {
		free(s->items[i].volume);
		free(s->items[i].key);
		free(s->items[i].dir);
	}
	free(s->items);
	for (size_t i = 0; i < s->n_open; i++) {
		if (s->open[i].fd >= 0)
			close(s->open[i].fd);
		free(s->open[i].volume);
		free(s->open[i].key);
	}
	free(s->open);
	for (size_t i = 0; i < s->n_leftovers; i++)
		free(s->leftovers[i]);
	free(s->leftovers);
	memset(s, 0, sizeof(*s));
}

/* ---- applying a scan (the loop thread, pure) ---- */

size_t space_entries_prune(struct space_entry **list, uint64_t seq)
{
	size_t dropped = 0;

	for (struct space_entry **pp = list; *pp;) {
		struct space_entry *e = *pp;

		if (!e->present && e->in_use == 0 && e->used_scan < seq) {
			*pp = e->next;
			space_entry_free(e);
			dropped++;
			continue;
		}
		pp = &e->next;
	}
	return dropped;
}

size_t space_scan_apply(struct space_entry **list, const struct space_scan *s)
{
	size_t changed = 0;

	if (s->failed)
		return 0;
	for (struct space_entry *e = *list; e; e = e->next)
		e->present = false;
	for (size_t i = 0; i < s->n_items; i++) {
		const struct space_scan_item *it = &s->items[i];
		struct space_entry *e = space_entry_find(*list, it->volume, strlen(it->volume),
							 it->key, strlen(it->key));

		if (e && e->removed_scan >= s->seq)
			continue; /* removed after the walk saw it */
		if (!e) {
			e = space_entry_get(list, it->volume, strlen(it->volume), it->key,
					    strlen(it->key), it->mtime_ms);
			if (!e)
				continue;
			changed++;
		}
		e->present = true;
		e->bytes = it->bytes;
		if (it->listed) {
			e->listed = true;
			e->cached = it->cached;
		} else if (it->dir && (!e->dir || !streq(e->dir, it->dir))) {
			char *dir = strdup(it->dir);
			if (dir) {
				free(e->dir);
				e->dir = dir;
			}
		}
	}
	for (size_t i = 0; i < s->n_open; i++) {
		const struct space_scan_open *o = &s->open[i];
		struct space_entry *e;

		if (!o->measured)
			continue;
		e = space_entry_find(*list, o->volume, strlen(o->volume), o->key, strlen(o->key));
		if (e && !e->present && e->fd >= 0)
			e->bytes = o->data_bytes;
	}
	return changed + space_entries_prune(list, s->seq);
}
