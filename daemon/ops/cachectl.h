/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache's control verbs (see blobcachectl(1)): status, warm, evict, pin, unpin. They speak
 * the control socket's protocol and ask the core (core/space.h) for figures and actions; in
 * on-demand mode warm also mounts a model privately (under run_dir/warm/) when it is not
 * mounted, in a worker thread, since a mount waits on OPENs that the loop thread answers (in
 * ublk mode the front end gives the sinks of an unmounted model's cache files).
 */
#pragma once

#include <stdbool.h>

struct loop;
struct config;
struct models;
struct fill;
struct space;
struct control;
struct cachectl;
struct mounts;

/* Detach warm mounts a killed daemon left, register the verbs on ctl. Returns 0 or -errno
 * (logged). */
int cachectl_start(struct loop *loop, const struct config *cfg, struct models *models,
		   struct fill *fill, struct space *space, struct control *ctl,
		   struct cachectl **out);

/* Start the preloads ([model NAME] preload = yes): each model is filled in the background, with
 * few chunks in flight, once it is in the catalogue (again when it is re-published) and, if the
 * daemon mounts it, once that mount is in place; a failure is retried every 30 s. Call once the
 * managed mounts are started. In ublk mode a model need not be mounted: its blobs are filled
 * straight into their cache files. Returns 0 or -errno (logged). */
int cachectl_start_preloads(struct cachectl *cc, struct mounts *mounts);

/* "off", "waiting", "running", "done" or "failed" (cc may be NULL). */
const char *cachectl_preload_state(const struct cachectl *cc, const char *model);

void cachectl_free(struct cachectl *cc);
