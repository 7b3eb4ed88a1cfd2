/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The device holder: a small process that keeps the bound /dev/cachefiles fd open across
 * restarts of the daemon. If the device closes, the cache dies and every mounted model fails;
 * while the holder keeps it, a restarted daemon takes the fd back (SCM_RIGHTS over a unix
 * socket in run_dir), writes `restore` (Linux 6.8+), and the kernel re-sends what was pending:
 * readers see a pause, not an error.
 *
 * The holder never reads the device. It hands the fd to one daemon at a time and watches that
 * daemon's connection; when the daemon is gone for longer than the grace period, the holder
 * closes the device (pending reads fail with EIO, never hang) and exits.
 * (Under systemd, the service manager's fd store does the same job.)
 *
 * In ublk mode the holder keeps a /dev/ublk-control fd: the devices outlive the daemon by
 * themselves (user recovery), and what the holder adds is the end of the grace period: its
 * expire function stops them, so that their waiting readers get EIO.
 */
#pragma once

#include <stdint.h>

/* Ask a running holder for the device fd. Returns the fd (>= 0) and the connection the caller
 * must keep open while it serves (*conn); -ENOENT if no holder runs; -EBUSY if another daemon
 * is attached (its pid in *other_pid when known); other -errno on failure. */
int holder_attach(const char *run_dir, int *conn, int *other_pid);

/* Run in the holder when the grace period ends, before it closes devfd and exits. */
typedef void (*holder_expire_fn)(int devfd, const char *run_dir);

/* Start a holder for devfd (which stays open in the caller too) and attach to it. expire: or
 * NULL. Returns 0 and the connection to keep (*conn), or -errno. */
int holder_spawn(const char *run_dir, int devfd, uint64_t grace_ms, holder_expire_fn expire,
		 int *conn);
