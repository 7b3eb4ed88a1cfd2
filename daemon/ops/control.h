/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: run_dir/control.sock, a Unix stream socket for blobcachectl.
 *
 * Protocol (text, one request per connection):
 *   client: VERB [ARG...]\n          (words separated by single spaces; at most 4 KiB)
 *   daemon: zero or more lines of output, then exactly one final line:
 *           "OK" or "ERR <message>"  and closes the connection.
 * Output lines never start with "OK" or "ERR " alone on a line (control_reply() guards it).
 * A handler may answer later (warm with progress): it returns CONTROL_LATER and calls
 * control_finish() when done; control_set_cancel() tells it when the client went away.
 * Only root (or the daemon's own uid) may connect: checked with SO_PEERCRED.
 */
#pragma once

#include <stdbool.h>

struct loop;
struct control;
struct control_conn;

#define CONTROL_LATER 1

/* Handler of one verb, run in the loop thread. argv[0] is the verb. Returns 0 (finished: "OK"),
 * -errno (finished: "ERR" with the message given to control_error(), or strerror), or
 * CONTROL_LATER (the handler calls control_finish() itself, later or already). A handler that
 * returns 0 or -errno must not call control_finish(). */
typedef int (*control_fn)(struct control_conn *conn, int argc, char **argv, void *userdata);
typedef void (*control_cancel_fn)(struct control_conn *conn, void *userdata);

/* Listen on path (replacing a stale socket). Returns 0 and *out, or -errno. */
int control_start(struct loop *loop, const char *path, struct control **out);
void control_stop(struct control *ctl);

/* Register VERB. usage is one line for `help` ("warm MODEL: fill the whole model"). */
int control_register(struct control *ctl, const char *verb, const char *usage, control_fn fn,
		     void *userdata);

/* One line of output (no newline needed). */
void control_reply(struct control_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The message of the final "ERR" line of a handler that returns -errno. */
void control_error(struct control_conn *conn, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Finish a CONTROL_LATER request: err 0 → "OK", else "ERR <message or strerror>". The conn is
 * freed once its output is written; do not use it afterwards. */
void control_finish(struct control_conn *conn, int err);
/* Called (once, in the loop thread) if the client disconnects before control_finish(); the
 * handler must then drop its reference and never call control_finish(). */
void control_set_cancel(struct control_conn *conn, control_cancel_fn fn, void *userdata);
