/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Capabilities: once the cache is bound, the daemon keeps only what serving needs (see
 * caps.c for the list and why) in its effective, permitted and bounding sets.
 */
#pragma once

/* Drop every other capability from the calling thread (call it before any thread starts:
 * capabilities are per thread). Logs what was kept. Returns 0 or -errno. */
int caps_drop_to_serving(void);
