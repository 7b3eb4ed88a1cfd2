/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel front end: cachefiles on-demand mode on /dev/cachefiles. Binds the cache, answers
 * OPEN from the catalogue, turns READ into fill_read() on the object's cache file, completes
 * READs, and handles CLOSE. Everything about where bytes come from lives in the fill core.
 */
#pragma once

#include <stdio.h>

struct loop;
struct fill;
struct models;
struct config;
struct ondemand;

struct ondemand_stats {
	unsigned long long opens, opens_refused, closes, reads, reads_failed, bad_messages;
	unsigned long long objects; /* open now */
};

/* Open /dev/cachefiles (path `dev`), configure and bind it for on-demand mode. Errors are logged
 * with their cause and fix and returned as -errno. */
int ondemand_start(struct loop *loop, const char *dev, const struct config *cfg, struct fill *fill,
		   struct models *models, struct ondemand **out);
void ondemand_stop(struct ondemand *od);
const struct ondemand_stats *ondemand_get_stats(const struct ondemand *od);

/* One line per open object: object id, blob digest, size, origin bytes. */
void ondemand_print_objects(const struct ondemand *od, FILE *f);
