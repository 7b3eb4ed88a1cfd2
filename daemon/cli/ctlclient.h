/* SPDX-License-Identifier: GPL-2.0-or-later */
/* blobcachectl's side of the control socket (protocol in control.h). */
#pragma once

#include <stddef.h>

#define CTL_DEFAULT_RUN_DIR "/run/blobcached"

/* Called for each output line (without the newline). */
typedef void (*ctl_line_fn)(const char *line, void *userdata);

/*
 * Send argv[0..argc-1] as one request to run_dir/control.sock and pass each output line to fn.
 * Returns 0 on "OK"; on "ERR msg" returns -EREMOTEIO with msg in err; -errno when the daemon
 * cannot be reached (err names the cause and the fix).
 */
int ctl_call(const char *run_dir, int argc, char **argv, ctl_line_fn fn, void *userdata, char *err,
	     size_t err_len);
