/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blobcachectl's cache commands, run against the daemon whose control socket is in run_dir.
 * Each takes the command's argv (argv[0] is the command) and returns an exit status. */
#pragma once

int ctl_space_status(const char *run_dir, int argc, char **argv);
int ctl_space_warm(const char *run_dir, int argc, char **argv);
/* evict, pin, unpin: one MODEL argument, the daemon's answer printed. */
int ctl_space_model_verb(const char *run_dir, int argc, char **argv);
