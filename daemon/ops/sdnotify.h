/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Running as a systemd service (Type=notify): readiness and status (sd_notify), the watchdog,
 * and the fd store that keeps the bound /dev/cachefiles open across restarts of the service,
 * as the device holder (holder.h) does outside systemd. Everything here is a no-op when the
 * daemon was not started by systemd (no NOTIFY_SOCKET).
 */
#pragma once

#include <stdbool.h>

#include "core/loop.h"

/* Whether a service manager listens to our notifications (NOTIFY_SOCKET is set). */
bool sdn_under_systemd(void);

/* Whether the bound device is kept in systemd's fd store rather than by a device holder: under
 * systemd, with a store configured (FileDescriptorStoreMax > 0, which systemd 254+ exports as
 * $FDSTORE; older versions export nothing, so blobcached.service also sets
 * BLOBCACHED_FDSTORE=1). */
bool sdn_fdstore_enabled(void);

/* The fd stored under NAME by an earlier run of the service (handed back by systemd as
 * LISTEN_FDS), or -ENOENT. Other fds passed are closed. Call once, before any thread starts. */
int sdn_fdstore_take(const char *name);

/* Store fd under NAME (FDSTORE=1, FDNAME=, FDPOLL=0). Returns 0 or -errno. */
int sdn_fdstore_put(int fd, const char *name);
/* Drop the stored fds named `name` (the next start binds anew). Returns 0 or -errno. */
int sdn_fdstore_remove(const char *name);

/* READY=1 with a STATUS= line; starts the watchdog keep-alive (WATCHDOG=1 at half of
 * WatchdogSec, from a timer of loop, so it stops when the loop stops turning). */
int sdn_ready(struct loop *loop, const char *status);

/* STATUS=<text>. */
void sdn_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1 with a STATUS= line. */
void sdn_stopping(const char *status);
