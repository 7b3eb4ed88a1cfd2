/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Health and metrics endpoint for orchestrators (libmicrohttpd, driven by the daemon's event
 * loop: handlers run in the loop thread and read the counters directly). GET/HEAD only:
 *   /livez    200 while the event loop turns
 *   /readyz   200 when the device is bound, no request is older than its deadline and the
 *             origin's last fetch did not fail; 503 with the reasons otherwise
 *   /metrics  Prometheus text format
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/fill.h"
#include "frontend/ondemand.h"
#include "frontend/ublk.h"
#include "core/origin.h"
#include "core/space.h"

struct loop;
struct probe;

/* What the endpoint reports, gathered by the daemon. */
struct probe_source {
	const struct fill_stats *fill;
	const struct ondemand_stats *ondemand;
	const struct origin_http_stats *http; /* NULL for the file origin */
	uint64_t request_timeout_ms;
	bool bound;
	/* Optional (NULL: none): more readiness reasons, appended to why (returns false when
	 * not ready), and more metrics; called with extra. The managed mounts use them. */
	bool (*extra_ready)(const void *extra, char *why, size_t why_len);
	void (*extra_metrics)(const void *extra, FILE *f);
	const void *extra;
	const struct space_report *space; /* cache usage; NULL: not reported */
	const struct ublk_stats *ublk;	  /* the ublk front end's; NULL: on-demand mode */
};
typedef void (*probe_gather_fn)(void *userdata, struct probe_source *out);

/* Pure: is the daemon ready? If not, writes the reasons (one per line) into why. */
bool probe_ready(const struct probe_source *s, uint64_t now_ms, char *why, size_t why_len);

/* Pure: the counters in the Prometheus text exposition format (version 0.0.4). */
void probe_format_metrics(const struct probe_source *s, FILE *f);

/* Listen on "ADDRESS:PORT" (IPv4, e.g. 127.0.0.1:9464). Returns 0 or -errno (logged). */
int probe_start(struct loop *loop, const char *listen, probe_gather_fn gather, void *userdata,
		struct probe **out);
void probe_stop(struct probe *p);
