// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Test driver: fetch ranges of one blob through the real HTTP origin (origin_http.c on the
 * daemon's event loop), configured from a blobcached.conf, all fetches in flight at once.
 *
 *   origin-fetch -c CONF [--blob-size N] [--out FILE] DIGEST OFF:LEN...
 *   origin-fetch -c CONF --path P --file-size N [--out FILE] DIGEST OFF:LEN...
 *
 * With --path, DIGEST names an in-place blob at <url>/P of N bytes (origin_fetch_blob).
 *
 * Prints one line per fetch, in argument order:
 *   fetch OFF LEN ok ms=T          (data written to FILE at OFF with --out)
 *   fetch OFF LEN error=ENAME ms=T (nothing written)
 * then "stats requests=... attempts=... retries=... bytes=... failed=... KIND=...".
 * Exit 0 when every fetch completed (successfully or not), 1 on a set-up error, 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "configfile.h"
#include "core/http.h"
#include "log.h"
#include "core/loop.h"
#include "macros.h"
#include "core/origin.h"

#define SAFETY_TIMEOUT_MS (300 * 1000)

struct fetch {
	uint64_t off, len;
	void *buf;
	uint64_t start_ms, end_ms;
	ssize_t result;
	bool done;
};

struct driver {
	struct loop *loop;
	unsigned pending;
	uint64_t start_ms;
};

static struct driver drv;

static void on_done(void *userdata, ssize_t result)
{
	struct fetch *f = userdata;

	f->result = result;
	f->end_ms = loop_now_ms();
	f->done = true;
	if (--drv.pending == 0)
		loop_quit(drv.loop, 0);
}

static void on_tick(struct loop *loop, void *userdata)
{
	if (loop_now_ms() - drv.start_ms > SAFETY_TIMEOUT_MS) {
		fprintf(stderr, "origin-fetch: fetches still pending after %d s\n",
			SAFETY_TIMEOUT_MS / 1000);
		loop_quit(loop, -ETIMEDOUT);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: origin-fetch -c CONF [--blob-size N | --path P --file-size N] "
			"[--out FILE] DIGEST OFF:LEN...\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "blob-size", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "path", required_argument, NULL, 'p' },
		{ "file-size", required_argument, NULL, 'f' },
		{},
	};
	struct catalogue_blob blob = { 0 };
	const char *conf = NULL, *out = NULL, *digest;
	uint64_t blob_size = 0;
	struct config cfg;
	struct origin *origin = NULL;
	struct origin_http_options hopts;
	const struct origin_http_stats *st;
	struct fetch *fetches;
	char err[512] = "";
	int c, n, r, outfd = -1;

	while ((c = getopt_long(argc, argv, "c:", options, NULL)) >= 0) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			blob_size = strtoull(optarg, NULL, 10);
			break;
		case 'o':
			out = optarg;
			break;
		case 'p':
			snprintf(blob.path, sizeof(blob.path), "%s", optarg);
			break;
		case 'f':
			blob.file_size = strtoull(optarg, NULL, 10);
			break;
		default:
			return usage();
		}
	}
	if (!conf || argc - optind < 2)
		return usage();
	digest = argv[optind++];
	n = argc - optind;
	snprintf(blob.digest, sizeof(blob.digest), "%s", digest);
	blob.size = blob.path[0] ? (blob.file_size + 4095) / 4096 * 4096 : blob_size;

	if (config_init_defaults(&cfg) < 0 || config_parse_file(&cfg, conf, err, sizeof(err)) < 0 ||
	    config_validate(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "origin-fetch: %s\n", err);
		return 1;
	}
	if (!cfg.origin_url) {
		fprintf(stderr, "origin-fetch: %s has no [origin] url\n", conf);
		return 1;
	}
	log_set_level(cfg.log_level);
	if (out) {
		outfd = open(out, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (outfd < 0) {
			perror(out);
			return 1;
		}
	}
	/* The same mapping as the daemon's main.c. */
	hopts = (struct origin_http_options){
		.url = cfg.origin_url,
		.token_file = cfg.token_file,
		.basic_auth_file = cfg.basic_auth_file,
		.ca_file = cfg.ca_file,
		.ca_path = cfg.ca_path,
		.tls_verify = cfg.tls_verify,
		.proxy = cfg.proxy,
		.no_proxy = cfg.no_proxy,
		.max_connections = cfg.max_connections,
		.retries = cfg.retries,
		.request_timeout_ms = cfg.request_timeout_ms,
	};
	if (loop_new(&drv.loop) < 0)
		return 1;
	r = origin_http_new(drv.loop, &hopts, &origin);
	if (r < 0) {
		fprintf(stderr, "origin-fetch: origin_http_new: %s\n", strerror(-r));
		return 1;
	}
	fetches = calloc((size_t)n, sizeof(*fetches));
	if (!fetches)
		return 1;
	drv.start_ms = loop_now_ms();
	for (int i = 0; i < n; i++) {
		struct fetch *f = &fetches[i];

		if (sscanf(argv[optind + i], "%" SCNu64 ":%" SCNu64, &f->off, &f->len) != 2)
			return usage();
		f->buf = malloc(f->len ? f->len : 1);
		if (!f->buf)
			return 1;
		memset(f->buf, 0xa5, f->len);
		f->start_ms = loop_now_ms();
		r = origin_fetch_blob(origin, &blob, f->off, f->len, f->buf, on_done, f);
		if (r < 0) {
			f->result = r;
			f->done = true;
			f->end_ms = f->start_ms;
		} else {
			drv.pending++;
		}
	}
	loop_add_periodic(drv.loop, 100, on_tick, NULL);
	r = drv.pending ? loop_run(drv.loop) : 0;

	for (int i = 0; i < n; i++) {
		struct fetch *f = &fetches[i];

		if (!f->done) {
			printf("fetch %" PRIu64 " %" PRIu64 " pending\n", f->off, f->len);
			continue;
		}
		if (f->result >= 0) {
			if ((uint64_t)f->result != f->len)
				printf("fetch %" PRIu64 " %" PRIu64 " WRONG-LENGTH=%zd\n", f->off,
				       f->len, f->result);
			else
				printf("fetch %" PRIu64 " %" PRIu64 " ok ms=%" PRIu64 "\n", f->off,
				       f->len, f->end_ms - f->start_ms);
			if (outfd >= 0 &&
			    pwrite(outfd, f->buf, (size_t)f->result, (off_t)f->off) != f->result) {
				perror(out);
				return 1;
			}
		} else {
			printf("fetch %" PRIu64 " %" PRIu64 " error=%s ms=%" PRIu64 "\n", f->off,
			       f->len, strerrorname_np((int)-f->result), f->end_ms - f->start_ms);
		}
		free(f->buf);
	}
	st = origin_http_get_stats(origin);
	printf("stats requests=%" PRIu64 " attempts=%" PRIu64 " retries=%" PRIu64 " bytes=%" PRIu64
	       " succeeded=%" PRIu64 " failed=%" PRIu64,
	       st->requests, st->attempts, st->retries, st->bytes, st->succeeded, st->failed);
	for (int k = 0; k < HTTP_ERR_KIND_MAX; k++)
		printf(" %s=%" PRIu64, http_error_kind_name((enum http_error_kind)k),
		       st->errors[k]);
	printf("\n");
	origin_free(origin);
	loop_free(drv.loop);
	config_free(&cfg);
	free(fetches);
	if (outfd >= 0)
		close(outfd);
	return r < 0 ? 1 : 0;
}
