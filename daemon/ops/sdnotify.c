// SPDX-License-Identifier: GPL-2.0-or-later
#include "ops/sdnotify.h"

#include <stdarg.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "macros.h"

bool sdn_under_systemd(void)
{
	const char *s = getenv("NOTIFY_SOCKET");

	return s && *s;
}

static bool env_positive(const char *name)
{
	const char *s = getenv(name);
	char *end;
	long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno == 0 && *end == '\0' && v > 0;
}

bool sdn_fdstore_enabled(void)
{
	return sdn_under_systemd() &&
	       (env_positive("FDSTORE") || env_positive("BLOBCACHED_FDSTORE"));
}

int sdn_fdstore_take(const char *name)
{
	char **names = NULL;
	int n, fd = -ENOENT;

	n = sd_listen_fds_with_names(true, &names);
	if (n < 0)
		return log_warn_errno(n, "cannot read the fds passed by systemd"), n;
	for (int i = 0; i < n; i++) {
		int cur = SD_LISTEN_FDS_START + i;

		if (fd < 0 && names && names[i] && strcmp(names[i], name) == 0) {
			fd = cur;
			continue;
		}
		/* Not ours (an older version's, or a second copy): systemd keeps its own. */
		log_notice("closing fd %d ('%s') passed by systemd: not the %s device", cur,
			   names && names[i] ? names[i] : "?", name);
		close(cur);
	}
	if (names) {
		for (int i = 0; i < n; i++)
			free(names[i]);
		free(names);
	}
	return fd;
}

int sdn_fdstore_put(int fd, const char *name)
{
	_cleanup_free_ char *msg = NULL;
	int r;

	/* FDPOLL=0: systemd must not drop the fd on an event: the device polls readable
	 * whenever requests are pending. */
	if (asprintf(&msg, "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name) < 0)
		return -ENOMEM;
	r = sd_pid_notify_with_fds(0, false, msg, &fd, 1);
	if (r < 0)
		return r;
	return r == 0 ? -ENOTCONN : 0;
}

int sdn_fdstore_remove(const char *name)
{
	_cleanup_free_ char *msg = NULL;
	int r;

	if (asprintf(&msg, "FDSTOREREMOVE=1\nFDNAME=%s", name) < 0)
		return -ENOMEM;
	r = sd_notify(false, msg);
	if (r < 0)
		return r;
	return r == 0 ? -ENOTCONN : 0;
}

static void on_watchdog(struct loop *loop, void *userdata)
{
	sd_notify(false, "WATCHDOG=1");
}

int sdn_ready(struct loop *loop, const char *status)
{
	uint64_t usec = 0;
	int r;

	if (!sdn_under_systemd())
		return 0;
	r = sd_watchdog_enabled(false, &usec);
	if (r > 0 && usec > 0) {
		uint64_t ms = MAX(usec / 2000, (uint64_t)1);

		r = loop_add_periodic(loop, ms, on_watchdog, NULL);
		if (r < 0)
			return log_error_errno(r, "cannot start the watchdog timer");
		log_info("systemd watchdog: %llu ms, keep-alive every %llu ms",
			 (unsigned long long)(usec / 1000), (unsigned long long)ms);
	}
	sd_notifyf(false, "READY=1\nSTATUS=%s", status);
	return 0;
}

void sdn_status(const char *fmt, ...)
{
	_cleanup_free_ char *text = NULL;
	va_list ap;
	int r;

	if (!sdn_under_systemd())
		return;
	va_start(ap, fmt);
	r = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (r >= 0)
		sd_notifyf(false, "STATUS=%s", text);
}

void sdn_stopping(const char *status)
{
	if (sdn_under_systemd())
		sd_notifyf(false, "STOPPING=1\nSTATUS=%s", status);
}
