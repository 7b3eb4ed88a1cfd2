// SPDX-License-Identifier: GPL-2.0-or-later
#include "core/chunkmap.h"

#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "io.h"
#include "macros.h"

#define PAGE	    4096ULL
#define BYTE_CACHED 1

struct chunkmap {
	int fd;
	uint64_t n_chunks;
	uint8_t *present; /* one byte per chunk, written with atomics: readable in the cache file */
	/* Chunks written into the cache file but not yet durable, so not yet in the map file:
	 * each at most once (its present byte is set when it is added). */
	pthread_mutex_t lock;
	/* Held through a whole commit: one that returns has every chunk written before it in the
	 * map file, not only those it took itself. */
	pthread_mutex_t commit_lock;
	uint64_t pending[CHUNKMAP_PENDING_MAX];
	size_t n_pending;
	uint64_t pending_since_ms; /* when the oldest of them was written */
};

uint64_t chunkmap_chunks(uint64_t blob_size, uint64_t unit)
{
	if (unit == 0)
		return 0;
	return (ALIGN_UP(blob_size, PAGE) + unit - 1) / unit;
}

void chunkmap_header_encode(uint64_t blob_size, uint64_t unit, void *buf)
{
	uint8_t *p = buf;
	uint64_t v;

	memset(p, 0, CHUNKMAP_HEADER_SIZE);
	memcpy(p, CHUNKMAP_MAGIC, 8);
	v = htole64(blob_size);
	memcpy(p + 8, &v, 8);
	v = htole64(unit);
	memcpy(p + 16, &v, 8);
	v = htole64(chunkmap_chunks(blob_size, unit));
	memcpy(p + 24, &v, 8);
}

bool chunkmap_header_matches(const void *buf, size_t len, uint64_t blob_size, uint64_t unit)
{
	uint8_t want[CHUNKMAP_HEADER_SIZE];

	if (len < CHUNKMAP_HEADER_SIZE || unit == 0)
		return false;
	chunkmap_header_encode(blob_size, unit, want);
	return memcmp(buf, want, CHUNKMAP_HEADER_SIZE) == 0;
}

uint64_t chunkmap_cached_bytes(const void *buf, size_t len, uint64_t *blob_size)
{
	const uint8_t *p = buf;
	uint64_t size, unit, n_chunks, padded, cached = 0;

	*blob_size = 0;
	if (len < CHUNKMAP_HEADER_SIZE || memcmp(p, CHUNKMAP_MAGIC, 8) != 0)
		return 0;
	memcpy(&size, p + 8, 8);
	memcpy(&unit, p + 16, 8);
	memcpy(&n_chunks, p + 24, 8);
	size = le64toh(size);
	unit = le64toh(unit);
	n_chunks = le64toh(n_chunks);
	if (unit == 0 || n_chunks != chunkmap_chunks(size, unit))
		return 0;
	*blob_size = size;
	padded = ALIGN_UP(size, PAGE);
	/* Each chunk counts its extent in the file: the last one is cut at the padded size, so
	 * a fully cached blob counts exactly its padded size. */
	for (uint64_t i = 0; i < n_chunks && CHUNKMAP_HEADER_SIZE + i < len; i++)
		if (p[CHUNKMAP_HEADER_SIZE + i] == BYTE_CACHED)
			cached += MIN(unit, padded - i * unit);
	return cached;
}

int chunkmap_file_cached(const char *path, uint64_t *cached)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_free_ uint8_t *buf = NULL;
	uint64_t blob_size;
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* One byte per chunk: 64 MiB of map is a 64 TiB blob at 1 MiB chunks; refuse more. */
	if (st.st_size > 64 << 20)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	n = pread_full(fd, buf, (size_t)st.st_size, 0);
	if (n < 0)
		return (int)n;
	*cached = chunkmap_cached_bytes(buf, (size_t)n, &blob_size);
	return 0;
}

/* A new empty map: header, then a hole for the chunk bytes, on disk before it is used. */
static int map_reset(int fd, uint64_t blob_size, uint64_t unit, uint64_t n_chunks)
{
	uint8_t header[CHUNKMAP_HEADER_SIZE];

	chunkmap_header_encode(blob_size, unit, header);
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)chunkmap_byte_offset(n_chunks)) < 0)
		return -errno;
	if (pwrite(fd, header, sizeof(header), 0) != (ssize_t)sizeof(header))
		return errno ? -errno : -EIO;
	if (fdatasync(fd) < 0)
		return -errno;
	return 0;
}

int chunkmap_open(const char *path, uint64_t blob_size, uint64_t unit, struct chunkmap **out)
{
	uint64_t n_chunks = chunkmap_chunks(blob_size, unit);
	uint8_t header[CHUNKMAP_HEADER_SIZE];
	_cleanup_close_ int fd = -EBADF;
	_cleanup_free_ uint8_t *present = NULL;
	struct chunkmap *m;
	ssize_t n;
	int r;

	if (n_chunks == 0)
		return -EINVAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	present = calloc(n_chunks, 1);
	if (!present)
		return -ENOMEM;
	n = pread_full(fd, header, sizeof(header), 0);
	if (n < 0)
		return (int)n;
	if (!chunkmap_header_matches(header, (size_t)n, blob_size, unit)) {
		r = map_reset(fd, blob_size, unit, n_chunks);
		if (r < 0)
			return r;
	} else {
		n = pread_full(fd, present, n_chunks, CHUNKMAP_HEADER_SIZE);
		if (n < 0)
			return (int)n;
		/* Anything but the one "cached" value (a short file, a stray byte) is absent. */
		for (uint64_t i = 0; i < n_chunks; i++)
			present[i] = i < (uint64_t)n && present[i] == BYTE_CACHED;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->commit_lock, NULL);
	m->fd = TAKE_FD(fd);
	m->n_chunks = n_chunks;
	m->present = TAKE_PTR(present);
	*out = m;
	return 0;
}

void chunkmap_free(struct chunkmap *m)
{
	if (!m)
		return;
	close(m->fd);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->commit_lock);
	free(m->present);
	free(m);
}

bool chunkmap_has(const struct chunkmap *m, uint64_t index)
{
	return index < m->n_chunks && __atomic_load_n(&m->present[index], __ATOMIC_ACQUIRE);
}

int chunkmap_mark(struct chunkmap *m, uint64_t index)
{
	uint8_t one = BYTE_CACHED;
	ssize_t n;

	if (index >= m->n_chunks)
		return -EINVAL;
	do
		n = pwrite(m->fd, &one, 1, (off_t)chunkmap_byte_offset(index));
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	/* Readers in the loop thread see it only now, after the chunk's data is durable. */
	__atomic_store_n(&m->present[index], 1, __ATOMIC_RELEASE);
	return 0;
}

int chunkmap_written(struct chunkmap *m, uint64_t index, uint64_t now_ms)
{
	int r;

	if (index >= m->n_chunks)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	if (__atomic_load_n(&m->present[index], __ATOMIC_ACQUIRE)) {
		r = (int)m->n_pending; /* written again: already readable, pending or durable */
	} else if (m->n_pending == CHUNKMAP_PENDING_MAX) {
		r = -ENOSPC;
	} else {
		if (m->n_pending == 0)
			m->pending_since_ms = now_ms;
		m->pending[m->n_pending++] = index;
		/* Readable at once; persisted by the next chunkmap_commit. */
		__atomic_store_n(&m->present[index], 1, __ATOMIC_RELEASE);
		r = (int)m->n_pending;
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

size_t chunkmap_pending(struct chunkmap *m, uint64_t *since_ms)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_pending;
	if (since_ms)
		*since_ms = m->pending_since_ms;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* Set the map bytes of chunks [from, from + n) to "cached" in one write. */
static int write_run(struct chunkmap *m, uint64_t from, uint64_t n)
{
	uint8_t ones[CHUNKMAP_PENDING_MAX];
	ssize_t w;

	memset(ones, BYTE_CACHED, n);
	do
		w = pwrite(m->fd, ones, n, (off_t)chunkmap_byte_offset(from));
	while (w < 0 && errno == EINTR);
	if (w != (ssize_t)n)
		return w < 0 ? -errno : -EIO;
	return 0;
}

static int commit_locked(struct chunkmap *m, int data_fd)
{
	uint64_t batch[CHUNKMAP_PENDING_MAX];
	size_t n, i, run;
	int r = 0, w;

	pthread_mutex_lock(&m->lock);
	n = m->n_pending;
	memcpy(batch, m->pending, n * sizeof(batch[0]));
	m->n_pending = 0;
	pthread_mutex_unlock(&m->lock);
	if (n == 0)
		return 0;
	/* Every chunk of the batch was written before it was added, so before this call: one
	 * fdatasync makes all of them durable. Only then may the map say so. */
	if (fdatasync(data_fd) < 0) {
		r = -errno;
		/* Not durable, perhaps not even readable as written: fetched again if asked. */
		for (i = 0; i < n; i++)
			__atomic_store_n(&m->present[batch[i]], 0, __ATOMIC_RELEASE);
		return r;
	}
	/* Writers finish in about index order: write runs of consecutive chunks at once. */
	for (i = 0; i < n; i += run) {
		for (run = 1; i + run < n && batch[i + run] == batch[i] + run; run++)
			;
		w = write_run(m, batch[i], run);
		if (w < 0 && r == 0)
			r = w; /* the chunks stay readable now; a restart fetches them again */
	}
	return r;
}

int chunkmap_commit(struct chunkmap *m, int data_fd)
{
	int r;

	pthread_mutex_lock(&m->commit_lock);
	r = commit_locked(m, data_fd);
	pthread_mutex_unlock(&m->commit_lock);
	return r;
}

uint64_t chunkmap_count(const struct chunkmap *m)
{
	uint64_t n = 0;

	for (uint64_t i = 0; i < m->n_chunks; i++)
		n += __atomic_load_n(&m->present[i], __ATOMIC_RELAXED);
	return n;
}

uint64_t chunkmap_size(const struct chunkmap *m)
{
	return m->n_chunks;
}
