/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache's control verbs (see blobcachectl(1)): status, warm, evict, pin, unpin. They speak
 * the control socket's protocol and ask the core (core/space.h) for figures and actions; warm
 * also mounts a model privately (under run_dir/warm/) when it is not mounted, in a worker
 * thread, since a mount waits on OPENs that the loop thread answers.
 */
#pragma once

struct loop;
struct config;
struct models;
struct fill;
struct space;
struct control;
struct cachectl;

/* Detach warm mounts a killed daemon left, register the verbs on ctl. Returns 0 or -errno
 * (logged). */
int cachectl_start(struct loop *loop, const struct config *cfg, struct models *models,
		   struct fill *fill, struct space *space, struct control *ctl,
		   struct cachectl **out);
void cachectl_free(struct cachectl *cc);
