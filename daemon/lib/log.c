// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.h"

#include <stdarg.h>
#include <pthread.h>

static int log_level = LOG_INFO;
static bool syslog_prefix;
static const char *log_ident = "blobcached";

void log_set_level(int level)
{
	log_level = level;
}

int log_get_level(void)
{
	return log_level;
}

void log_set_syslog_prefix(bool on)
{
	syslog_prefix = on;
}

void log_set_ident(const char *ident)
{
	log_ident = ident;
}

int log_full_errno(int level, int err, const char *fmt, ...)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int saved = errno;
	char buf[1024];
	va_list ap;

	if (err < 0)
		err = -err;
	if (level > log_level) {
		errno = saved;
		return -err;
	}
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&lock);
	if (syslog_prefix)
		fprintf(stderr, "<%d>", level);
	else
		fprintf(stderr, "%s: ", log_ident);
	if (err)
		fprintf(stderr, "%s: %s\n", buf, strerror(err));
	else
		fprintf(stderr, "%s\n", buf);
	pthread_mutex_unlock(&lock);
	errno = saved;
	return -err;
}
