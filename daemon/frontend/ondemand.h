/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel front end: cachefiles on-demand mode on /dev/cachefiles. Binds the cache, answers
 * OPEN from the catalogue, turns READ into fill_read() on the object's cache file, completes
 * READs, and handles CLOSE. Everything about where bytes come from lives in the fill core.
 */
#pragma once

#include <stdbool.h>
#include <stdio.h>

struct loop;
struct fill;
struct models;
struct config;
struct ondemand;

struct ondemand_stats {
	unsigned long long opens, opens_refused, closes, reads, reads_failed, bad_messages;
	/* CLOSEs of objects the previous daemon had open (queued before it died): nothing to do */
	unsigned long long closes_stale;
	unsigned long long objects; /* open now */
};

/* Open /dev/cachefiles (path `dev`), configure and bind it for on-demand mode. Returns the
 * bound fd, or -errno with the cause and the fix logged. */
int ondemand_bind(const char *dev, const struct config *cfg);

/* Serve the bound device devfd (ownership passes). `restored`: the fd comes from the device
 * holder, bound by an earlier daemon: write `restore` so the kernel re-sends pending requests.
 * cfg gives the cache directory and the state directory (records of name-keyed cache files,
 * ondemand_records.h); it is read here only. */
int ondemand_start(struct loop *loop, int devfd, bool restored, const struct config *cfg,
		   struct fill *fill, struct models *models, struct ondemand **out);
void ondemand_stop(struct ondemand *od);
const struct ondemand_stats *ondemand_get_stats(const struct ondemand *od);

struct space;
struct space_kernel_ops;

/* Report OPEN/READ/CLOSE of each cache file to the space manager (before serving). */
void ondemand_set_space(struct ondemand *od, struct space *sp);
/* The kernel actions of the space manager: `cull` in the file's directory, and the sink of an
 * open object (for warm). userdata is the struct ondemand. */
extern const struct space_kernel_ops ondemand_space_ops;

/* One line per open object: object id, blob digest, size, origin bytes. */
void ondemand_print_objects(const struct ondemand *od, FILE *f);

/* Did ondemand_start() take over a previous daemon's binding (`restore` accepted)? If not, the
 * mounts made through the old binding are dead. */
bool ondemand_resumed(const struct ondemand *od);
