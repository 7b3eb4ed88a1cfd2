/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging to stderr (journald picks it up under systemd) with a level threshold. */
#pragma once

#include "macros.h"
#include <syslog.h>

/* Levels are syslog's: LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG. */
void log_set_level(int level);
int log_get_level(void);
/* Prefix each line with "<N>" so that journald keeps the level (set when run by systemd). */
void log_set_syslog_prefix(bool on);
void log_set_ident(const char *ident);

/* Log a message; returns -abs(err) so that callers can `return log_error_errno(r, ...)`.
 * err == 0 logs without an errno suffix and returns 0. */
int log_full_errno(int level, int err, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...)		log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)		log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)		log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warn(...)		log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)		log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_warn_errno(e, ...)	log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
