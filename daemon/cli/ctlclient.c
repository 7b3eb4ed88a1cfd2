// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/ctlclient.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macros.h"

int ctl_call(const char *run_dir, int argc, char **argv, ctl_line_fn fn, void *userdata, char *err,
	     size_t err_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	_cleanup_fclose_ FILE *in = NULL;
	char req[4096], *line = NULL;
	size_t len = 0, cap = 0;
	ssize_t n;
	int r = -EPROTO;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", run_dir) >=
	    sizeof(sa.sun_path))
		return snprintf(err, err_len, "%s: path too long", run_dir), -ENAMETOOLONG;
	for (int i = 0; i < argc; i++) {
		int w = snprintf(req + len, sizeof(req) - len, "%s%s", i ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(req) - len - 1)
			return snprintf(err, err_len, "request too long"), -E2BIG;
		if (strpbrk(argv[i], " \t\n") || !argv[i][0])
			return snprintf(err, err_len, "argument '%s' is empty or has blanks",
					argv[i]),
			       -EINVAL;
		len += (size_t)w;
	}
	req[len++] = '\n';
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return snprintf(err, err_len, "socket: %s", strerror(errno)), -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		if (r == -ENOENT || r == -ECONNREFUSED)
			snprintf(err, err_len,
				 "blobcached is not running (no %s); start it with "
				 "`systemctl start blobcached`, or give --run-dir",
				 sa.sun_path);
		else if (r == -EACCES || r == -EPERM)
			snprintf(err, err_len, "%s: %s (run blobcachectl as root)", sa.sun_path,
				 strerror(-r));
		else
			snprintf(err, err_len, "%s: %s", sa.sun_path, strerror(-r));
		return r;
	}
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n < 0)
			return snprintf(err, err_len, "send: %s", strerror(errno)), -errno;
	}
	in = fdopen(fd, "r");
	if (!in)
		return -ENOMEM;
	fd = -EBADF; /* owned by in */
	while ((n = getline(&line, &cap, in)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (streq(line, "OK")) {
			r = 0;
			break;
		}
		if (strncmp(line, "ERR ", 4) == 0) {
			snprintf(err, err_len, "%s", line + 4);
			r = -EREMOTEIO;
			break;
		}
		/* Output lines that would read as a verdict are sent with a leading space. */
		if (fn)
			fn(line[0] == ' ' &&
					   (streq(line + 1, "OK") || !strncmp(line + 1, "ERR ", 4))
				   ? line + 1
				   : line,
			   userdata);
	}
	if (r == -EPROTO)
		snprintf(err, err_len,
			 "blobcached closed the connection without an answer "
			 "(did it stop? see its log)");
	free(line);
	return r;
}
