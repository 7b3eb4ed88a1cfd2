/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Network links going down and up (libnl route socket subscribed to RTNLGRP_LINK, in the event
 * loop): the storage network coming back is the moment to re-check the mounts, not a second
 * later at the next probe.
 */
#pragma once

#include <stdbool.h>

struct loop;
struct linkwatch;

/* Called in the loop thread when a link's state changes: up is true when it is up and running
 * (IFF_UP and IFF_RUNNING), false when it stopped being so. */
typedef void (*linkwatch_fn)(const char *ifname, bool up, void *userdata);

/* Subscribe and learn the current state of every link (no callback for it). Returns 0 and
 * *out, or -errno (libnl's errors converted). */
int linkwatch_start(struct loop *loop, linkwatch_fn fn, void *userdata, struct linkwatch **out);
void linkwatch_stop(struct linkwatch *w);

/* Pure: is a link with these interface flags up for our purpose (IFF_UP and IFF_RUNNING)? */
bool linkwatch_flags_up(unsigned flags);
