/*
 * log - logging for the programs (never called from library code).
 *
 * One destination per process: LogFile when set, else stderr when running
 * in the foreground, else syslog with LogFacility.  Each call writes one
 * line with a single write(2), so lines from concurrent threads never mix.
 * Message decisions are logged as "<queue-id>: <what>: <detail>".
 */
#ifndef CABLES_LOG_H
#define CABLES_LOG_H

#include <stdbool.h>

#include "status.h"

/* Returns CABLES_OK, or CABLES_ERR_IO when file cannot be opened (logging then goes to stderr). */
cables_status log_open(const char *ident, const char *facility, const char *file,
    bool foreground, struct cables_err *err);
void log_close(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

void log_set_debug(bool on);

#endif
