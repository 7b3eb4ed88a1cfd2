/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The catalogue from the origin ([origin] catalogue = yes; off by default). Every
 * catalogue_refresh a pool thread reads the origin's models/index (written by blobcachectl
 * publish and unpublish) and each models/NAME.model it lists, through the origin (file or
 * HTTP, with its credentials and TLS settings), checks each entry as the daemon would load it,
 * and writes the changed ones into [daemon] catalogue atomically; the models layer picks them
 * up without a restart. Entries it wrote are listed in <state_dir>/origin-catalogue: only
 * those are updated or removed (when the index no longer lists them). A local entry of the
 * same name, placed by hand, wins. An index or entry that cannot be read or is refused changes
 * nothing (the entries in place stay), and is logged once until it changes.
 *
 * Trust: whoever can write the origin's models/ defines what every such node mounts under a
 * name. The blobs are still verified against the digests of the entry.
 */
#pragma once

#include <stdint.h>
#include <stdio.h>

struct loop;
struct origin;
struct catsync;

struct catsync_stats {
	uint64_t syncs, sync_failures;
	uint64_t added, updated, removed, refused;
	uint64_t models; /* entries from the origin in the catalogue now */
};

int catsync_start(struct loop *loop, struct origin *origin, const char *catalogue_dir,
		  const char *state_dir, uint64_t refresh_ms, struct catsync **out);
void catsync_free(struct catsync *cs);
const struct catsync_stats *catsync_get_stats(const struct catsync *cs);
void catsync_metrics(const struct catsync *cs, FILE *f);
