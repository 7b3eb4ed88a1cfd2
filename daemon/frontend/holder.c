// SPDX-License-Identifier: GPL-2.0-or-later
#include "frontend/holder.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "log.h"
#include "core/loop.h"
#include "macros.h"

#define SOCKET_NAME "device.sock"
#define PID_NAME    "holder.pid"

/* Replies: one byte, with the fd attached to 'F'. */
#define REPLY_FD   'F'
#define REPLY_BUSY 'B'

static int socket_path(const char *run_dir, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", run_dir, SOCKET_NAME) >=
	    sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int send_reply(int conn, char what, int fd, pid_t attached)
{
	char buf[1 + sizeof(pid_t)];
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	buf[0] = what;
	memcpy(buf + 1, &attached, sizeof(attached));
	if (fd >= 0) {
		struct cmsghdr *c;
		memset(&control, 0, sizeof(control));
		msg.msg_control = control.space;
		msg.msg_controllen = sizeof(control.space);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(conn, &msg, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

int holder_attach(const char *run_dir, int *conn, int *other_pid)
{
	_cleanup_close_ int s = -EBADF;
	struct sockaddr_un sa;
	char buf[1 + sizeof(pid_t)];
	union {
		char space[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control.space,
			      .msg_controllen = sizeof(control.space) };
	struct cmsghdr *c;
	pid_t pid;
	ssize_t n;
	int fd, r;

	r = socket_path(run_dir, &sa);
	if (r < 0)
		return r;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return errno == ECONNREFUSED || errno == ENOENT ? -ENOENT : -errno;
	do
		n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != (ssize_t)sizeof(buf))
		return -EPROTO;
	memcpy(&pid, buf + 1, sizeof(pid));
	if (buf[0] == REPLY_BUSY) {
		if (other_pid)
			*other_pid = (int)pid;
		return -EBUSY;
	}
	c = CMSG_FIRSTHDR(&msg);
	if (buf[0] != REPLY_FD || !c || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EPROTO;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	*conn = TAKE_FD(s);
	return fd;
}

/* ---- the holder process ---- */

static void write_pid_file(const char *run_dir)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", run_dir, PID_NAME);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) == 0)
		rename(tmp, path);
}

static void holder_cleanup(const char *run_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", run_dir, SOCKET_NAME);
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", run_dir, PID_NAME);
	unlink(path);
}

static volatile sig_atomic_t terminate;

static void on_terminate(int sig)
{
	terminate = sig;
}

/* Accept daemons, hand one at a time the device, watch it; exit when none came back within the
 * grace period, or on SIGTERM/SIGINT (a full stop: the cache is withdrawn at once). Never
 * reads the device. */
static int holder_main(const char *run_dir, int listen_fd, int devfd, uint64_t grace_ms,
		       holder_expire_fn expire)
{
	int attached = -1;
	pid_t attached_pid = 0;
	uint64_t detached_since = 0; /* 0: a daemon is attached (or the first one is coming) */

	log_set_ident("blobcached-holder");
	write_pid_file(run_dir);
	for (;;) {
		struct pollfd p[2] = { { .fd = listen_fd, .events = POLLIN },
				       { .fd = attached, .events = POLLIN } };
		int timeout = -1, n;

		if (attached < 0) {
			uint64_t now = loop_now_ms();
			if (!detached_since)
				detached_since = now;
			if (now - detached_since >= grace_ms) {
				log_notice(
					"no blobcached attached for %llu ms: releasing the cache "
					"(pending reads fail with EIO)",
					(unsigned long long)grace_ms);
				break;
			}
			timeout = (int)(grace_ms - (now - detached_since));
		}
		{
			sigset_t none;
			struct timespec ts = { .tv_sec = timeout / 1000,
					       .tv_nsec = (long)(timeout % 1000) * 1000000 };
			sigemptyset(&none);
			n = ppoll(p, attached >= 0 ? 2 : 1, timeout < 0 ? NULL : &ts, &none);
		}
		if (terminate) {
			log_notice("signal %d: releasing the cache (pending reads fail with EIO)",
				   (int)terminate);
			break;
		}
		if (n < 0 && errno != EINTR)
			break;
		if (n <= 0)
			continue;
		if (attached >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char c;
			if (read(attached, &c, 1) <= 0) {
				log_notice("blobcached (pid %d) detached; keeping the cache for "
					   "%llu ms",
					   (int)attached_pid, (unsigned long long)grace_ms);
				close(attached);
				attached = -1;
				attached_pid = 0;
				detached_since = loop_now_ms();
			}
		}
		if (p[0].revents & POLLIN) {
			struct ucred cred;
			socklen_t len = sizeof(cred);
			int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (conn < 0)
				continue;
			if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
			    cred.uid != geteuid()) {
				close(conn); /* only the daemon's own user gets the device */
				continue;
			}
			if (attached >= 0) {
				send_reply(conn, REPLY_BUSY, -1, attached_pid);
				close(conn);
				continue;
			}
			if (send_reply(conn, REPLY_FD, devfd, 0) < 0) {
				close(conn);
				continue;
			}
			attached = conn;
			attached_pid = cred.pid;
			detached_since = 0;
		}
	}
	holder_cleanup(run_dir);
	if (expire)
		expire(devfd, run_dir);
	close(devfd);
	return 0;
}

int holder_spawn(const char *run_dir, int devfd, uint64_t grace_ms, holder_expire_fn expire,
		 int *conn)
{
	_cleanup_close_ int listen_fd = -EBADF;
	struct sockaddr_un sa;
	int other = 0, fd, r;
	pid_t pid;

	r = socket_path(run_dir, &sa);
	if (r < 0)
		return r;
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0)
		return -errno;
	unlink(sa.sun_path); /* a stale socket: no holder answered on it */
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(listen_fd, 8) < 0)
		return -errno;
	chmod(sa.sun_path, 0600);

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The holder: its own session (a signal to the daemon's group does not reach it),
		 * nothing of the daemon's but the device, the socket and stderr for logging. */
		sigset_t none;
		int keep_listen = 3, keep_dev = 4;

		setsid();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_IGN);
		{
			/* Blocked but while in ppoll (holder_main): none is missed. */
			struct sigaction act = { .sa_handler = on_terminate };
			sigset_t term;
			sigaction(SIGTERM, &act, NULL);
			sigaction(SIGINT, &act, NULL);
			sigemptyset(&term);
			sigaddset(&term, SIGTERM);
			sigaddset(&term, SIGINT);
			sigprocmask(SIG_BLOCK, &term, NULL);
		}
		if (dup2(listen_fd, 10) < 0 || dup2(devfd, 11) < 0 || dup2(10, keep_listen) < 0 ||
		    dup2(11, keep_dev) < 0)
			_exit(1);
		close_range(5, ~0U, 0);
		fcntl(keep_listen, F_SETFD, FD_CLOEXEC);
		fcntl(keep_dev, F_SETFD, FD_CLOEXEC);
		_exit(holder_main(run_dir, keep_listen, keep_dev, grace_ms, expire) < 0 ? 1 : 0);
	}
	/* Attach as the first daemon. */
	fd = holder_attach(run_dir, conn, &other);
	if (fd < 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return fd;
	}
	close(fd); /* the same device as devfd */
	log_info("device holder started (pid %d): a restarted blobcached resumes the cache",
		 (int)pid);
	return 0;
}
