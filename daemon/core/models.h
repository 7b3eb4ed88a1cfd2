/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's view of the catalogue directory: loaded at start, re-read when the directory
 * changes (a model published while the daemon runs is found without a restart), kept if a
 * re-read fails. Part of the fill core. */
#pragma once

#include "catalogue.h"

struct models;

int models_new(const char *dir, struct models **out);
void models_free(struct models *m);

/* Resolve a cookie key (not NUL-terminated). Re-reads the directory first if its change time
 * moved. NULL if unknown. The pointer is valid until the next models_* call. */
const struct catalogue_blob *models_resolve(struct models *m, const char *key, size_t len,
					    const struct catalogue_model **model_out);

const struct catalogue *models_catalogue(struct models *m);
