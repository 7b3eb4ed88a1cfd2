/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache volume's health (reliability B5). Every CACHEVOL_INTERVAL_MS a pool thread checks
 * the cache directory: statvfs (a filesystem that went read-only after I/O errors), then a
 * 4 KiB write + fdatasync + O_DIRECT read-back of <cache_dir>/.blobcached-probe, so that both
 * directions reach the device. A failed probe, a probe that has not returned for
 * CACHEVOL_HUNG_MS, or a chunk write of the fill core that failed after the last good probe
 * makes /readyz 503 with the reason; the next good probe (within CACHEVOL_INTERVAL_MS of the
 * volume answering again) makes it ready again. The daemon never serves bytes it could not
 * write and read back: readers get EIO from the failed requests meanwhile.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/fill.h"

#define CACHEVOL_INTERVAL_MS 2000
#define CACHEVOL_HUNG_MS     10000

struct loop;
struct cachevol;

/* The state of a cachefiles cache in /proc/fs/fscache/caches: '-' (none), 'P', 'A' (active),
 * 'E' (stopped after an I/O error), 'W' (withdrawn); 0: no line of that tag. */
typedef char cachevol_cache_state;
/* Pure: the state of the cache named tag in the text of /proc/fs/fscache/caches, or 0. */
char cachevol_parse_caches(const char *text, const char *tag);

/* What the probes found (loop_now_ms() times; 0: never). */
struct cachevol_state {
	uint64_t last_ok_ms;
	uint64_t last_error_ms;
	int last_errno;		   /* positive */
	const char *last_step;	   /* "statvfs", "open", "write", "fdatasync", "read", "compare" */
	uint64_t running_since_ms; /* a probe is running since then; 0: none */
	uint64_t probes, failures;
	char cache_state; /* on-demand: the kernel's cache of our tag ('A', 'E' ...), 0: not checked
			   */
};

/* Pure: is the volume usable, given the probes and the fill core's last failed cache write? If
 * not, appends one reason line (with the fix where there is one) to why. */
bool cachevol_verdict(const struct cachevol_state *st, uint64_t fill_error_ms, int fill_errno,
		      uint64_t now_ms, const char *dir, char *why, size_t why_len);

/* Called once, in the loop thread, when cachefiles stopped the cache after I/O errors and the
 * volume answers again: the binding is dead and only binding anew serves again. */
typedef void (*cachevol_dead_fn)(void *userdata);

/* tag: on-demand mode, the cachefiles tag whose state is checked; NULL in ublk mode. */
int cachevol_start(struct loop *loop, const char *cache_dir, const char *tag,
		   const struct fill_stats *fill, cachevol_dead_fn dead, void *userdata,
		   struct cachevol **out);
void cachevol_free(struct cachevol *cv);
/* For the probe endpoint (extra readiness, metrics). */
bool cachevol_ready(const struct cachevol *cv, char *why, size_t why_len);
void cachevol_metrics(const struct cachevol *cv, FILE *f);
