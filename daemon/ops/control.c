// SPDX-License-Identifier: GPL-2.0-or-later
/* The control socket for blobcachectl: see control.h for the protocol. */
#include "ops/control.h"

#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "core/loop.h"
#include "macros.h"

#define MAX_REQUEST 4096
#define MAX_ARGS    32
#define MAX_OUTPUT  (1 << 20) /* queued output past this is dropped (a client not reading) */
#define MAX_CONNS   64

struct verb {
	char *name, *usage;
	control_fn fn;
	void *userdata;
};

enum conn_state {
	CONN_READING, /* waiting for the request line */
	CONN_RUNNING, /* a CONTROL_LATER handler owns it */
	CONN_DONE,    /* final line queued: close once written */
};

struct control_conn {
	struct control *ctl;
	int fd;
	enum conn_state state;
	char in[MAX_REQUEST];
	size_t in_len;
	char *out;
	size_t out_len, out_cap, out_off;
	char err[256];
	control_cancel_fn cancel;
	void *cancel_data;
	struct control_conn *next;
};

struct control {
	struct loop *loop;
	int fd;
	char *path;
	struct verb *verbs;
	size_t n_verbs;
	struct control_conn *conns;
	unsigned n_conns;
};

static void conn_free(struct control_conn *c)
{
	struct control *ctl = c->ctl;

	for (struct control_conn **p = &ctl->conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	ctl->n_conns--;
	loop_remove_fd(ctl->loop, c->fd);
	close(c->fd);
	free(c->out);
	free(c);
}

/* The client is gone or misbehaved: tell a running handler, then free. */
static void conn_abort(struct control_conn *c)
{
	if (c->state == CONN_RUNNING && c->cancel) {
		control_cancel_fn fn = c->cancel;
		c->cancel = NULL;
		fn(c, c->cancel_data);
	}
	conn_free(c);
}

/* Write what is queued. Returns false if the conn was freed. */
static bool conn_flush(struct control_conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			conn_abort(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->state == CONN_DONE) {
			conn_free(c);
			return false;
		}
	}
	loop_modify_fd(c->ctl->loop, c->fd,
		       (c->out_len ? EPOLLOUT : 0) | (c->state == CONN_DONE ? 0 : EPOLLIN) |
			       EPOLLRDHUP);
	return true;
}

static void queue(struct control_conn *c, const char *s, size_t len)
{
	if (c->out_len + len > MAX_OUTPUT)
		return; /* the final line still fits: control_finish() makes room */
	if (c->out_len + len > c->out_cap) {
		size_t cap = MAX(c->out_cap * 2, c->out_len + len + 256);
		char *p = realloc(c->out, cap);
		if (!p)
			return;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
}

void control_reply(struct control_conn *c, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = MIN(n, (int)sizeof(line) - 2);
	/* A line of output must never read as the final line. */
	if (streq(line, "OK") || strncmp(line, "ERR ", 4) == 0)
		queue(c, " ", 1);
	for (int i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';
	queue(c, line, (size_t)n);
}

void control_error(struct control_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
}

void control_set_cancel(struct control_conn *c, control_cancel_fn fn, void *userdata)
{
	c->cancel = fn;
	c->cancel_data = userdata;
}

void control_finish(struct control_conn *c, int err)
{
	char line[300];

	if (c->state == CONN_DONE)
		return;
	if (err == 0)
		snprintf(line, sizeof(line), "OK\n");
	else
		snprintf(line, sizeof(line), "ERR %s\n", c->err[0] ? c->err : strerror(-err));
	for (char *p = line; p[1]; p++)
		if (*p == '\n')
			*p = ' ';
	c->state = CONN_DONE;
	c->cancel = NULL;
	/* The final line always fits: drop output beyond the bound rather than the verdict. */
	if (c->out_len + strlen(line) > MAX_OUTPUT)
		c->out_len = 0;
	queue(c, line, strlen(line));
	conn_flush(c);
}

static int verb_help(struct control_conn *c, int argc, char **argv, void *userdata)
{
	struct control *ctl = userdata;

	for (size_t i = 0; i < ctl->n_verbs; i++)
		control_reply(c, "%s", ctl->verbs[i].usage);
	return 0;
}

static void dispatch(struct control_conn *c)
{
	char *argv[MAX_ARGS + 1];
	int argc = 0, r;
	char *save = NULL;

	for (char *w = strtok_r(c->in, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (argc == MAX_ARGS) {
			control_error(c, "too many arguments (at most %d)", MAX_ARGS - 1);
			control_finish(c, -E2BIG);
			return;
		}
		argv[argc++] = w;
	}
	argv[argc] = NULL;
	if (argc == 0) {
		control_error(c, "empty request; try 'help'");
		control_finish(c, -EINVAL);
		return;
	}
	for (size_t i = 0; i < c->ctl->n_verbs; i++) {
		struct verb *v = &c->ctl->verbs[i];
		if (!streq(v->name, argv[0]))
			continue;
		c->state = CONN_RUNNING;
		r = v->fn(c, argc, argv, v->userdata);
		if (r == CONTROL_LATER)
			return;
		control_finish(c, r < 0 ? r : 0);
		return;
	}
	control_error(c,
		      "unknown command '%s'; try 'help' (is blobcachectl newer than the daemon?)",
		      argv[0]);
	control_finish(c, -EINVAL);
}

static void on_conn(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct control_conn *c = userdata;

	if (events & EPOLLOUT) {
		if (!conn_flush(c))
			return;
	}
	if (c->state == CONN_READING && (events & EPOLLIN)) {
		ssize_t n =
			recv(fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, MSG_DONTWAIT);
		char *nl;

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			conn_free(c);
			return;
		}
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		nl = memchr(c->in, '\n', c->in_len);
		if (!nl) {
			if (c->in_len == sizeof(c->in) - 1) {
				control_error(c, "request longer than %d bytes", MAX_REQUEST - 1);
				control_finish(c, -E2BIG);
			}
			return;
		}
		*nl = '\0';
		dispatch(c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) {
		/* A running request whose client went away is cancelled; a finished one whose
		 * output cannot be delivered is dropped. */
		if (c->state != CONN_READING || (events & (EPOLLHUP | EPOLLERR)))
			conn_abort(c);
	}
}

static void on_listen(struct loop *loop, int fd, uint32_t events, void *userdata)
{
	struct control *ctl = userdata;
	struct control_conn *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd < 0)
		return;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != 0 && cred.uid != geteuid())) {
		static const char msg[] = "ERR permission denied: run blobcachectl as root\n";
		if (send(cfd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to tell */
		}
		close(cfd);
		return;
	}
	if (ctl->n_conns >= MAX_CONNS) {
		static const char msg[] = "ERR busy: too many control connections\n";
		if (send(cfd, msg, sizeof(msg) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		}
		close(cfd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return;
	}
	c->ctl = ctl;
	c->fd = cfd;
	if (loop_add_fd(ctl->loop, cfd, EPOLLIN | EPOLLRDHUP, on_conn, c) < 0) {
		close(cfd);
		free(c);
		return;
	}
	c->next = ctl->conns;
	ctl->conns = c;
	ctl->n_conns++;
}

int control_register(struct control *ctl, const char *verb, const char *usage, control_fn fn,
		     void *userdata)
{
	struct verb *v = realloc(ctl->verbs, (ctl->n_verbs + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	ctl->verbs = v;
	v = &ctl->verbs[ctl->n_verbs];
	v->name = strdup(verb);
	v->usage = strdup(usage);
	if (!v->name || !v->usage) {
		free(v->name);
		free(v->usage);
		return -ENOMEM;
	}
	v->fn = fn;
	v->userdata = userdata;
	ctl->n_verbs++;
	return 0;
}

int control_start(struct loop *loop, const char *path, struct control **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct control *ctl;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error("control socket path %s is too long (set a shorter [daemon] "
				 "run_dir)",
				 path),
		       -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->loop = loop;
	ctl->path = strdup(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (!ctl->path || ctl->fd < 0) {
		r = ctl->path ? -errno : -ENOMEM;
		goto fail;
	}
	/* Only one daemon serves a cache (the device is exclusive), so a socket left here is
	 * stale. */
	unlink(path);
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(ctl->fd, 16) < 0) {
		r = -errno;
		log_error_errno(r, "cannot listen on the control socket %s", path);
		goto fail;
	}
	r = loop_add_fd(loop, ctl->fd, EPOLLIN, on_listen, ctl);
	if (r < 0)
		goto fail;
	r = control_register(ctl, "help", "help: list the commands", verb_help, ctl);
	if (r < 0) {
		loop_remove_fd(loop, ctl->fd);
		goto fail;
	}
	*out = ctl;
	return 0;
fail:
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl->path);
	free(ctl);
	return r;
}

void control_stop(struct control *ctl)
{
	if (!ctl)
		return;
	while (ctl->conns)
		conn_abort(ctl->conns);
	loop_remove_fd(ctl->loop, ctl->fd);
	close(ctl->fd);
	unlink(ctl->path);
	for (size_t i = 0; i < ctl->n_verbs; i++) {
		free(ctl->verbs[i].name);
		free(ctl->verbs[i].usage);
	}
	free(ctl->verbs);
	free(ctl->path);
	free(ctl);
}
