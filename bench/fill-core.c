// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Host benchmark of the fill core (issue 10): the daemon's own fill core, origins, verification
 * and worker pool (daemon/core/libfillcore.a, the objects blobcached links), driven by a front
 * end that writes plain sparse files instead of answering /dev/cachefiles or ublk. It measures
 * what the daemon spends per byte on the cold path, on the host's real CPU, without a VM.
 *
 *   fill-core --model FILE (--origin-path DIR | --origin-url URL) --cache DIR [options]
 *
 * Every data blob of the model is read once from start to end by one sequential reader that
 * keeps --depth requests of --req-size bytes open (as the kernel's read-ahead does), into a fresh
 * cache file per blob (removed first: a cold cache). Prints one line of key=value figures:
 *   bytes wall_s gbps cpu_s user_s sys_s cpu_s_per_gib origin_bytes chunks_fetched requests
 * CPU time is getrusage(RUSAGE_SELF): every thread of the process (loop, pool, origin workers).
 * bench/fill-host runs it and writes bench/results/fill-host.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "core/chunkmap.h"
#include "core/fill.h"
#include "core/loop.h"
#include "core/origin.h"
#include "log.h"
#include "macros.h"

#define PAGE		  4096ULL
#define SAFETY_TIMEOUT_MS (30 * 60 * 1000)

struct reader {
	struct fill_sink *sink;
	uint64_t size; /* blob size padded to PAGE: what is read */
	uint64_t next; /* next offset to ask for */
	unsigned open; /* requests in flight */
};

struct bench {
	struct loop *loop;
	uint64_t req_size;
	unsigned depth;
	struct reader *readers;
	size_t n_readers, current;
	int result;
	uint64_t requests, start_ms;
};

static struct bench B;

static void issue(struct bench *b);

static void on_filled(void *userdata, int result)
{
	struct reader *r = userdata;

	r->open--;
	if (result < 0 && B.result == 0) {
		fprintf(stderr, "fill-core: a read failed: %s\n", strerror(-result));
		B.result = result;
	}
	issue(&B);
}

/* Keep `depth` requests open on the current blob, then go on to the next blob. */
static void issue(struct bench *b)
{
	while (b->current < b->n_readers && b->result == 0) {
		struct reader *r = &b->readers[b->current];

		while (r->next < r->size && r->open < b->depth) {
			uint64_t len = MIN(b->req_size, r->size - r->next);
			int ret = fill_read(r->sink, r->next, len, on_filled, r);

			if (ret < 0) {
				fprintf(stderr, "fill-core: fill_read: %s\n", strerror(-ret));
				b->result = ret;
				break;
			}
			r->next += len;
			r->open++;
			b->requests++;
		}
		if (r->next < r->size || r->open > 0)
			break;
		b->current++; /* this blob is done */
	}
	if (b->result < 0 || b->current == b->n_readers)
		loop_quit(b->loop, b->result);
}

static void on_tick(struct loop *loop, void *userdata)
{
	if (loop_now_ms() - B.start_ms > SAFETY_TIMEOUT_MS) {
		fprintf(stderr, "fill-core: still running after %d s: stopped\n",
			SAFETY_TIMEOUT_MS / 1000);
		loop_quit(loop, -ETIMEDOUT);
	}
}

static double seconds(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: fill-core --model FILE (--origin-path DIR | --origin-url URL) --cache DIR\n"
		"                 [--threads N] [--inflight N] [--chunk-size B] [--readahead B]\n"
		"                 [--req-size B] [--depth N] [--workers N] [--connections N]\n"
		"                 [--timeout-ms MS] [--chunkmap] [--direct] [--verbose]\n");
	return 2;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end ? -EINVAL : 0;
}

/* A fresh (cold) sparse cache file for one blob, sized to the blob padded to a page, as the
 * front ends size theirs. With a chunk map (as the ublk front end keeps), a chunk counts once
 * written and its mark persists once fdatasync'd (a group commit); without, presence is
 * SEEK_HOLE (as on-demand's). */
static int open_sink(struct fill *f, const char *cache_dir, const struct catalogue_blob *blob,
		     bool chunkmap, bool direct, struct fill_sink **out)
{
	char path[4096], map_path[4096];
	struct chunkmap *map = NULL;
	int fd, r;

	snprintf(path, sizeof(path), "%s/%s", cache_dir, blob->digest);
	snprintf(map_path, sizeof(map_path), "%s/%s.map", cache_dir, blob->digest);
	if ((unlink(path) < 0 && errno != ENOENT) || (unlink(map_path) < 0 && errno != ENOENT))
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | (direct ? O_DIRECT : 0), 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)ALIGN_UP(blob->size, PAGE)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	r = fill_sink_new(f, blob, fd, out);
	if (r < 0) {
		close(fd);
		return r;
	}
	if (!chunkmap)
		return 0;
	r = chunkmap_open(map_path, blob->size, fill_sink_unit(*out), &map);
	if (r < 0) {
		fill_sink_unref(*out);
		return r;
	}
	fill_sink_set_chunkmap(*out, map);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "origin-path", required_argument, NULL, 'p' },
		{ "origin-url", required_argument, NULL, 'u' },
		{ "cache", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "inflight", required_argument, NULL, 'i' },
		{ "chunk-size", required_argument, NULL, 's' },
		{ "readahead", required_argument, NULL, 'r' },
		{ "req-size", required_argument, NULL, 'q' },
		{ "depth", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },
		{ "connections", required_argument, NULL, 'n' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "chunkmap", no_argument, NULL, 'M' },
		{ "direct", no_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{},
	};
	/* The daemon's defaults (blobcached.conf(5)). */
	struct fill_options fopts = {
		.chunk_size = 1 << 20,
		.request_timeout_ms = 60000,
		.max_inflight = 16,
		.readahead_bytes = 16 << 20,
		.threads = 2,
	};
	const char *model_path = NULL, *origin_path = NULL, *origin_url = NULL, *cache_dir = NULL;
	uint64_t v = 0, workers = 4, connections = 8, bytes = 0, t0, t1;
	bool chunkmap = false, direct = false;
	struct catalogue_model model = {};
	struct origin *origin = NULL;
	struct fill *fill = NULL;
	struct rusage ru0, ru1;
	char err[512] = "";
	int c, r;

	B.req_size = 1 << 20;
	B.depth = 4;
	log_set_level(LOG_WARNING);
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (strchr("tisrqdwnT", c) && parse_u64(optarg, &v) < 0) {
			fprintf(stderr, "fill-core: %s: not a number\n", optarg);
			return usage();
		}
		switch (c) {
		case 'm':
			model_path = optarg;
			break;
		case 'p':
			origin_path = optarg;
			break;
		case 'u':
			origin_url = optarg;
			break;
		case 'c':
			cache_dir = optarg;
			break;
		case 't':
			fopts.threads = (unsigned)v;
			break;
		case 'i':
			fopts.max_inflight = (unsigned)v;
			break;
		case 's':
			fopts.chunk_size = v;
			break;
		case 'r':
			fopts.readahead_bytes = v;
			break;
		case 'q':
			B.req_size = v;
			break;
		case 'd':
			B.depth = (unsigned)v;
			break;
		case 'w':
			workers = v;
			break;
		case 'n':
			connections = v;
			break;
		case 'T':
			fopts.request_timeout_ms = v;
			break;
		case 'M':
			chunkmap = true;
			break;
		case 'D':
			direct = true;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		default:
			return usage();
		}
	}
	if (!model_path || !cache_dir || !origin_path == !origin_url || optind != argc ||
	    B.req_size == 0 || B.req_size % PAGE || B.depth == 0 || workers == 0 ||
	    connections == 0)
		return usage();

	r = catalogue_load_model_file(model_path, &model, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "fill-core: %s\n", err);
		return 1;
	}
	r = loop_new(&B.loop);
	if (r < 0)
		goto fail;
	if (origin_url) {
		struct origin_http_options hopts = {
			.url = origin_url,
			.tls_verify = true,
			.max_connections = (unsigned)connections,
			.retries = 0,
			.request_timeout_ms = fopts.request_timeout_ms,
		};
		r = origin_http_new(B.loop, &hopts, &origin);
	} else {
		r = origin_file_new(B.loop, origin_path, (unsigned)workers, &origin);
	}
	if (r < 0)
		goto fail;
	r = fill_new(B.loop, origin, &fopts, &fill);
	if (r < 0)
		goto fail;
	B.readers = calloc(model.n_blobs, sizeof(*B.readers));
	if (!B.readers) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < model.n_blobs; i++) {
		const struct catalogue_blob *blob = &model.blobs[i];
		struct reader *rd = &B.readers[B.n_readers];

		if (blob->role != BLOB_ROLE_DATA)
			continue;
		r = open_sink(fill, cache_dir, blob, chunkmap, direct, &rd->sink);
		if (r < 0) {
			fprintf(stderr, "fill-core: cache file for %.12s in %s: %s\n", blob->digest,
				cache_dir, strerror(-r));
			goto fail;
		}
		rd->size = ALIGN_UP(blob->size, PAGE);
		bytes += blob->size;
		B.n_readers++;
	}
	if (B.n_readers == 0) {
		fprintf(stderr, "fill-core: %s lists no data blob\n", model_path);
		return 1;
	}
	r = loop_add_periodic(B.loop, 1000, on_tick, NULL);
	if (r < 0)
		goto fail;

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	B.start_ms = loop_now_ms();
	issue(&B);
	r = loop_run(B.loop);
	/* With chunk maps, what the group commit has not persisted yet, as a front end does when
	 * it lets a blob go: part of the work measured. */
	for (size_t i = 0; i < B.n_readers; i++)
		if (fill_sink_commit(B.readers[i].sink) < 0 && r >= 0)
			r = -EIO;
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	if (r < 0 || B.result < 0) {
		r = r < 0 ? r : B.result;
		goto fail;
	}

	{
		const struct fill_stats *st = fill_get_stats(fill);
		double wall = (double)(t1 - t0) / 1e9;
		double user = seconds(&ru1.ru_utime) - seconds(&ru0.ru_utime);
		double sys = seconds(&ru1.ru_stime) - seconds(&ru0.ru_stime);
		double gib = (double)bytes / (double)(1ULL << 30);

		printf("bytes=%" PRIu64 " wall_s=%.3f gbps=%.3f cpu_s=%.3f user_s=%.3f sys_s=%.3f "
		       "cpu_s_per_gib=%.3f origin_bytes=%" PRIu64 " chunks_fetched=%" PRIu64
		       " requests=%" PRIu64 " verify_failures=%" PRIu64 "\n",
		       bytes, wall, (double)bytes / wall / 1e9, user + sys, user, sys,
		       (user + sys) / gib, st->origin_bytes, st->chunks_fetched, B.requests,
		       st->verify_failures);
		if (st->origin_bytes != bytes || st->verify_failures) {
			fprintf(stderr, "fill-core: fetched %" PRIu64 " bytes for %" PRIu64 "\n",
				st->origin_bytes, bytes);
			return 1;
		}
	}
	/* The process exits: the pool's threads, sinks and the loop go with it. */
	return 0;
fail:
	fprintf(stderr, "fill-core: %s\n", strerror(-r));
	return 1;
}
