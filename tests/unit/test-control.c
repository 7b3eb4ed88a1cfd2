// SPDX-License-Identifier: GPL-2.0-or-later
/* The control socket: a real socket and event loop, blobcachectl's client in a thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ops/control.h"
#include "cli/ctlclient.h"
#include "core/loop.h"

static char dir[] = "/tmp/test-control-XXXXXX";

struct client {
	int argc;
	char *argv[8];
	char out[4096];
	char err[512];
	int r;
	struct loop *loop;
	bool quit; /* quit the loop when done */
};

static void collect(const char *line, void *userdata)
{
	struct client *c = userdata;
	size_t n = strlen(c->out);

	snprintf(c->out + n, sizeof(c->out) - n, "%s|", line);
}

static void *client_thread(void *arg)
{
	struct client *c = arg;

	c->r = ctl_call(dir, c->argc, c->argv, collect, c, c->err, sizeof(c->err));
	if (c->quit)
		loop_quit(c->loop, 0);
	return NULL;
}

static int echo(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	for (int i = 1; i < argc; i++)
		control_reply(conn, "%s", argv[i]);
	control_reply(conn, "OK");	 /* must not end the answer */
	control_reply(conn, "ERR nope"); /* nor this */
	return 0;
}

static int refuse(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	control_error(conn, "model '%s' is not in the catalogue", argc > 1 ? argv[1] : "");
	return -ENOENT;
}

/* Answers later, from a timer: the warm-with-progress shape. */
static struct control_conn *pending;
static int progress;

static void tick(struct loop *loop, void *userdata)
{
	if (!pending)
		return;
	control_reply(pending, "progress %d", ++progress);
	if (progress == 3) {
		control_finish(pending, 0);
		pending = NULL;
	}
}

static int later(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	pending = conn;
	progress = 0;
	return CONTROL_LATER;
}

static void run_client(struct loop *loop, struct client *c)
{
	pthread_t t;

	c->loop = loop;
	c->quit = true;
	assert_int_equal(pthread_create(&t, NULL, client_thread, c), 0);
	assert_int_equal(loop_run(loop), 0);
	pthread_join(t, NULL);
}

static void requests_answers_errors_and_later(void **state)
{
	struct loop *loop;
	struct control *ctl;
	char path[256];
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(control_start(loop, path, &ctl), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(control_register(ctl, "echo", "echo WORDS: print them", echo, NULL), 0);
	assert_int_equal(control_register(ctl, "refuse", "refuse MODEL", refuse, NULL), 0);
	assert_int_equal(control_register(ctl, "later", "later", later, NULL), 0);
	assert_true(loop_add_periodic(loop, 20, tick, NULL) >= 0);

	struct client a = { .argc = 3, .argv = { "echo", "a", "b" } };
	run_client(loop, &a);
	assert_int_equal(a.r, 0);
	assert_string_equal(a.out, "a|b|OK|ERR nope|");

	struct client b = { .argc = 2, .argv = { "refuse", "gpt" } };
	run_client(loop, &b);
	assert_int_equal(b.r, -EREMOTEIO);
	assert_string_equal(b.err, "model 'gpt' is not in the catalogue");

	struct client c = { .argc = 1, .argv = { "frobnicate" } };
	run_client(loop, &c);
	assert_int_equal(c.r, -EREMOTEIO);
	assert_non_null(strstr(c.err, "unknown command 'frobnicate'"));

	struct client d = { .argc = 1, .argv = { "later" } };
	run_client(loop, &d);
	assert_int_equal(d.r, 0);
	assert_string_equal(d.out, "progress 1|progress 2|progress 3|");

	struct client e = { .argc = 1, .argv = { "help" } };
	run_client(loop, &e);
	assert_int_equal(e.r, 0);
	assert_non_null(strstr(e.out, "echo WORDS: print them|"));

	struct client f = { .argc = 2, .argv = { "echo", "two words" } };
	assert_int_equal(ctl_call(dir, f.argc, f.argv, collect, &f, f.err, sizeof(f.err)), -EINVAL);

	control_stop(ctl);
	assert_int_equal(stat(path, &st), -1);
	struct client g = { .argc = 1, .argv = { "help" } };
	assert_int_equal(ctl_call(dir, g.argc, g.argv, collect, &g, g.err, sizeof(g.err)), -ENOENT);
	assert_non_null(strstr(g.err, "blobcached is not running"));
	loop_free(loop);
	rmdir(dir);
}

/* A client that disconnects while its request runs cancels it; the daemon carries on. */
static bool cancelled;

static void on_cancel(struct control_conn *conn, void *userdata)
{
	cancelled = true;
	pending = NULL;
}

static int later_cancellable(struct control_conn *conn, int argc, char **argv, void *userdata)
{
	pending = conn;
	control_set_cancel(conn, on_cancel, NULL);
	return CONTROL_LATER;
}

static void stop_when_cancelled(struct loop *loop, void *userdata)
{
	if (cancelled)
		loop_quit(loop, 0);
}

static void disconnect_cancels(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct loop *loop;
	struct control *ctl;
	int fd;

	strcpy(dir, "/tmp/test-control-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir);
	assert_int_equal(loop_new(&loop), 0);
	assert_int_equal(control_start(loop, sa.sun_path, &ctl), 0);
	assert_int_equal(control_register(ctl, "wait", "wait", later_cancellable, NULL), 0);
	assert_true(loop_add_periodic(loop, 10, stop_when_cancelled, NULL) >= 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(write(fd, "wait\n", 5), 5);
	/* let the daemon take the request, then hang up */
	for (int i = 0; i < 50 && !pending; i++) {
		struct client dummy = { .argc = 1, .argv = { "help" } };
		run_client(loop, &dummy);
	}
	assert_non_null(pending);
	close(fd);
	assert_int_equal(loop_run(loop), 0);
	assert_true(cancelled);
	assert_null(pending);
	control_stop(ctl);
	loop_free(loop);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(requests_answers_errors_and_later),
		cmocka_unit_test(disconnect_cancels),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
