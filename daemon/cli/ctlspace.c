// SPDX-License-Identifier: GPL-2.0-or-later
/* blobcachectl's cache commands: status, warm, evict, pin, unpin (the daemon's verbs are in
 * space.c). */
#include "cli/ctlspace.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctlclient.h"
#include "log.h"
#include "macros.h"

#define EXIT_USAGE 2

static int call(const char *run_dir, int argc, char **argv, ctl_line_fn fn, void *userdata)
{
	char err[512] = "";
	int r = ctl_call(run_dir, argc, argv, fn, userdata, err, sizeof(err));

	fflush(stdout);
	if (r < 0) {
		log_error("%s: %s", argv[0], err);
		return EXIT_FAILURE;
	}
	return EXIT_SUCCESS;
}

/* "key=value key=value ..." → value of key (copied into buf), or NULL. */
static const char *field(const char *line, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = line; p && *p; p = strchr(p, ' '), p = p ? p + 1 : NULL) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " ");
			snprintf(buf, len, "%.*s", (int)n, p + klen + 1);
			return buf;
		}
	}
	return NULL;
}

static uint64_t field_u64(const char *line, const char *key)
{
	char buf[32];

	return field(line, key, buf, sizeof(buf)) ? strtoull(buf, NULL, 10) : 0;
}

static void human(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void ago(int64_t ms, char *buf, size_t len)
{
	struct timespec ts;
	int64_t now, s;

	if (ms <= 0) {
		snprintf(buf, len, "never");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	s = MAX(now - ms, 0) / 1000;
	if (s < 120)
		snprintf(buf, len, "%" PRId64 "s ago", s);
	else if (s < 7200)
		snprintf(buf, len, "%" PRId64 "m ago", s / 60);
	else if (s < 172800)
		snprintf(buf, len, "%" PRId64 "h ago", s / 3600);
	else
		snprintf(buf, len, "%" PRId64 "d ago", s / 86400);
}

struct status_out {
	bool json;
	unsigned models;
};

static void status_line(const char *line, void *userdata)
{
	struct status_out *o = userdata;
	char name[80] = "", pinned[16] = "", warming[8] = "", dir[4096] = "";
	char size_h[32], cached_h[32], last[32];

	if (strncmp(line, "cache ", 6) == 0) {
		uint64_t total = field_u64(line, "volume_bytes"),
			 used = field_u64(line, "used_bytes");
		uint64_t cache = field_u64(line, "cache_bytes");

		field(line, "dir", dir, sizeof(dir));
		if (o->json) {
			printf("{\n  \"cache\": {\"dir\": \"%s\", \"volume_bytes\": %" PRIu64
			       ", \"used_bytes\": %" PRIu64 ", \"cache_bytes\": %" PRIu64
			       ", \"files\": %" PRIu64 ", \"high_watermark\": %" PRIu64
			       ", \"low_watermark\": %" PRIu64 ", \"culled_files\": %" PRIu64
			       ", \"purged_files\": %" PRIu64 ", \"evicted_files\": %" PRIu64
			       "},\n  \"models\": [",
			       dir, total, used, cache, field_u64(line, "files"),
			       field_u64(line, "high_watermark"), field_u64(line, "low_watermark"),
			       field_u64(line, "culled_files"), field_u64(line, "purged_files"),
			       field_u64(line, "evicted_files"));
		} else {
			char t[32], u[32], c[32];
			human(total, t, sizeof(t));
			human(used, u, sizeof(u));
			human(cache, c, sizeof(c));
			printf("cache %s: volume %s, %s used (%" PRIu64 "%%; cull above %" PRIu64
			       "%% down to %" PRIu64 "%%), cache files %s\n\n",
			       dir, t, u, total ? used * 100 / total : 0,
			       field_u64(line, "high_watermark"), field_u64(line, "low_watermark"),
			       c);
			printf("%-24s %10s %10s %7s %-7s %-10s %6s %7s %6s\n", "MODEL", "SIZE",
			       "CACHED", "CACHED%", "PINNED", "LAST USE", "MOUNTS", "WARMING",
			       "ERRORS");
		}
		return;
	}
	if (strncmp(line, "model ", 6) != 0) {
		if (!o->json)
			puts(line);
		return;
	}
	{
		uint64_t size = field_u64(line, "size"), cached = field_u64(line, "cached");
		double pct = size ? 100.0 * (double)cached / (double)size : 0;
		char lu[32] = "0";

		field(line, "name", name, sizeof(name));
		field(line, "pinned", pinned, sizeof(pinned));
		field(line, "warming", warming, sizeof(warming));
		field(line, "last_use_ms", lu, sizeof(lu));
		if (o->json) {
			printf("%s\n    {\"name\": \"%s\", \"size_bytes\": %" PRIu64
			       ", \"cached_bytes\": %" PRIu64 ", \"cached_percent\": %.1f"
			       ", \"pinned\": %s, \"pinned_by\": \"%s\", \"last_use_ms\": %s"
			       ", \"mounts\": %" PRIu64 ", \"open_objects\": %" PRIu64
			       ", \"warming\": %s, \"errors\": %" PRIu64 "}",
			       o->models ? "," : "", name, size, cached, pct,
			       streq(pinned, "no") ? "false" : "true",
			       streq(pinned, "config") ? "config"
			       : streq(pinned, "yes")  ? "runtime"
						       : "",
			       lu, field_u64(line, "mounts"), field_u64(line, "open_objects"),
			       streq(warming, "yes") ? "true" : "false", field_u64(line, "errors"));
		} else {
			human(size, size_h, sizeof(size_h));
			human(cached, cached_h, sizeof(cached_h));
			ago(strtoll(lu, NULL, 10), last, sizeof(last));
			printf("%-24s %10s %10s %6.1f%% %-7s %-10s %6" PRIu64 " %7s %6" PRIu64 "\n",
			       name, size_h, cached_h, pct, pinned, last, field_u64(line, "mounts"),
			       warming, field_u64(line, "errors"));
		}
		o->models++;
	}
}

static void status_usage(FILE *f)
{
	fputs("Usage: blobcachectl status [--json]\n"
	      "\n"
	      "Cache usage and, per model of the catalogue: size, bytes cached and %, pinned,\n"
	      "last use, mounts, warm in progress, failed READs.\n"
	      "\n"
	      "Options:\n"
	      "  -j, --json   machine-readable output (stable keys, see blobcachectl(1))\n"
	      "  -h, --help   show this help and exit\n",
	      f);
}

int ctl_space_status(const char *run_dir, int argc, char **argv)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct status_out o = { 0 };
	char *req[] = { (char *)"status" };
	int opt, r;

	while ((opt = getopt_long(argc, argv, "jh", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			o.json = true;
			break;
		case 'h':
			status_usage(stdout);
			return EXIT_SUCCESS;
		default:
			status_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		status_usage(stderr);
		return EXIT_USAGE;
	}
	r = call(run_dir, 1, req, status_line, &o);
	if (r == EXIT_SUCCESS && o.json)
		printf("%s]\n}\n", o.models ? "\n  " : "");
	return r;
}

/* ---- warm ---- */

struct warm_out {
	bool tty;
	struct timespec start;
	bool bar_drawn;
};

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

static void warm_line(const char *line, void *userdata)
{
	struct warm_out *o = userdata;
	uint64_t done, total;

	if (sscanf(line, "progress %" SCNu64 " %" SCNu64, &done, &total) == 2) {
		double secs = MAX(since(&o->start), 0.001);
		double pct = total ? 100.0 * (double)done / (double)total : 100.0;
		double rate = (double)done / (1 << 20) / secs;

		if (o->tty) {
			char bar[31];
			size_t fill = (size_t)(pct * 30 / 100);
			memset(bar, '#', fill);
			memset(bar + fill, '.', 30 - fill);
			bar[30] = '\0';
			fprintf(stderr, "\r[%s] %5.1f%%  %" PRIu64 "/%" PRIu64 " MiB  %.1f MiB/s ",
				bar, pct, done >> 20, total >> 20, rate);
			o->bar_drawn = true;
		} else {
			printf("progress %" PRIu64 "/%" PRIu64 " bytes %.1f%% %.1f MiB/s\n", done,
			       total, pct, rate);
		}
		return;
	}
	if (o->bar_drawn) {
		fputc('\n', stderr);
		o->bar_drawn = false;
	}
	puts(line);
}

static void warm_usage(FILE *f)
{
	fputs("Usage: blobcachectl warm MODEL\n"
	      "\n"
	      "Fill every chunk of every blob of MODEL into the cache now (ahead of a\n"
	      "deployment). Uses the model's mount if it is mounted, else mounts it privately\n"
	      "for the time of the warm. A progress bar is shown on a terminal, progress lines\n"
	      "otherwise. Ctrl-C cancels (what is filled stays cached).\n",
	      f);
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

int ctl_space_warm(const char *run_dir, int argc, char **argv)
{
	struct warm_out o = { .tty = isatty(STDERR_FILENO) };
	struct sigaction sa = { .sa_handler = on_sigint };
	char *req[] = { (char *)"warm", NULL };
	int r;

	if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
		warm_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (argc != 2 || argv[1][0] == '-') {
		warm_usage(stderr);
		return EXIT_USAGE;
	}
	req[1] = argv[1];
	clock_gettime(CLOCK_MONOTONIC, &o.start);
	/* Ctrl-C interrupts the read from the daemon (no SA_RESTART): the connection closes and
	 * the daemon cancels the warm. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	{
		char err[512] = "";
		r = ctl_call(run_dir, 2, req, warm_line, &o, err, sizeof(err));
		fflush(stdout);
		if (o.bar_drawn)
			fputc('\n', stderr);
		if (interrupted) {
			log_error("warm of %s cancelled (what was filled stays cached)", argv[1]);
			return 130;
		}
		if (r < 0) {
			log_error("warm: %s", err);
			return EXIT_FAILURE;
		}
	}
	return EXIT_SUCCESS;
}

/* ---- evict, pin, unpin ---- */

static void print_line(const char *line, void *userdata)
{
	(void)userdata;
	puts(line);
}

int ctl_space_model_verb(const char *run_dir, int argc, char **argv)
{
	if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
		printf("Usage: blobcachectl %s MODEL\n", argv[0]);
		return EXIT_SUCCESS;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "Usage: blobcachectl %s MODEL\n", argv[0]);
		return EXIT_USAGE;
	}
	return call(run_dir, 2, argv, print_line, NULL);
}
