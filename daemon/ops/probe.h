/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Health and metrics endpoint for orchestrators (libmicrohttpd, driven by the daemon's event
 * loop: handlers run in the loop thread and read the counters directly). GET/HEAD only:
 *   /livez    200 while the event loop turns
 *   /readyz   200 when the device is bound, no request is older than its deadline and the
 *             origin's last fetch did not fail; 503 with the reasons otherwise
 *   /metrics  Prometheus text format
 *   /models   JSON: every catalogue model, its size, cached bytes, managed mount and preload
 *             (answered after a walk of the cache in the scan thread: the connection waits,
 *             the loop does not)
 *   /models/NAME  the same for one model: 200 when it is ready (fully cached and, if the daemon
 *             manages a mount of it, mounted and answering), 503 otherwise, 404 if unknown
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

/* One model, for /models. */
struct probe_model {
	const char *name;
	uint64_t size;	 /* its blobs, page-aligned */
	uint64_t cached; /* bytes of them in the cache */
	bool pinned;
	const char *mount;   /* managed mount point, or NULL */
	bool mount_up;	     /* that mount is in place and answering */
	const char *preload; /* "off", "waiting", "running", "done" or "failed" */
};

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
	/* Optional (NULL: /models answers 404): the models, as a malloc'd array whose strings
	 * stay valid until the request is answered, from the figures as they are (no walk of the
	 * cache). Returns 0 or -errno. */
	int (*list_models)(void *userdata, struct probe_model **out, size_t *n);
	/* Call fn(sp, ctx) in the loop thread once a walk of the cache that starts after this
	 * call has been applied (space_after_scan: the walk runs in the space manager's scan
	 * thread, the loop answers meanwhile); the request is answered then, with fresh figures.
	 * Returns the wait, or NULL (ENOMEM). models_cancel drops a wait not yet called. */
	struct space_wait *(*models_wait)(void *userdata, space_scanned_fn fn, void *ctx);
	void (*models_cancel)(void *userdata, struct space_wait *w);
	void *models_userdata;
	const struct ublk_stats *ublk; /* the ublk front end's; NULL: on-demand mode */
};
typedef void (*probe_gather_fn)(void *userdata, struct probe_source *out);

/* Pure: is the daemon ready? If not, writes the reasons (one per line) into why. */
bool probe_ready(const struct probe_source *s, uint64_t now_ms, char *why, size_t why_len);

/* Pure: is the model ready for its consumers (fully cached; mounted and answering if managed)? */
bool probe_model_ready(const struct probe_model *m);

/* Pure: models as JSON: an object for models[0] alone if `one`, else {"models": [...]}. */
void probe_format_models(const struct probe_model *models, size_t n, bool one, FILE *f);

/* Pure: the counters in the Prometheus text exposition format (version 0.0.4). */
void probe_format_metrics(const struct probe_source *s, FILE *f);

/* Listen on "ADDRESS:PORT" (IPv4, e.g. 127.0.0.1:9464). Returns 0 or -errno (logged). */
int probe_start(struct loop *loop, const char *listen, probe_gather_fn gather, void *userdata,
		struct probe **out);
void probe_stop(struct probe *p);
