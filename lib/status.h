/*
 * status - status codes and error details shared by all library modules.
 *
 * Library functions never log and never exit: they return a cables_status
 * and, on failure, fill a caller-provided struct cables_err with a one-line
 * human-readable detail ("what failed: why").  The detail is meant for the
 * log or for a CLI error message; the status is meant for decisions.
 *
 * A NULL struct cables_err pointer is accepted everywhere and means "the
 * caller does not want the detail".
 */
#ifndef CABLES_STATUS_H
#define CABLES_STATUS_H

#include <stddef.h>

typedef enum cables_status {
	CABLES_OK = 0,
	CABLES_ERR_ARG,		/* bad argument or bad user input */
	CABLES_ERR_SYNTAX,	/* malformed data (config, MIME, DER, ...) */
	CABLES_ERR_IO,		/* file or socket I/O failed */
	CABLES_ERR_NOTFOUND,	/* no such key, address, entry */
	CABLES_ERR_EXISTS,	/* already present */
	CABLES_ERR_TOOBIG,	/* a size limit was exceeded */
	CABLES_ERR_UNUSABLE,	/* a key or certificate may not be used */
	CABLES_ERR_CRYPTO,	/* a cryptographic operation failed */
	CABLES_ERR_DB,		/* the key store database failed */
	CABLES_ERR_INTERNAL,	/* a bug or an impossible state */
} cables_status;

#define CABLES_ERR_MAX 256

struct cables_err {
	char msg[CABLES_ERR_MAX];
};

/* Short name of a status ("ok", "syntax error", ...); never NULL. */
const char *cables_strerror(cables_status st);

/*
 * Set err->msg from a format (when err is not NULL) and return st, so that
 * "return cables_fail(err, CABLES_ERR_IO, "open %s: %s", ...);" reads well.
 */
cables_status cables_fail(struct cables_err *err, cables_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Append the newest OpenSSL error queue entry (if any) to err, and clear the queue. */
cables_status cables_fail_ssl(struct cables_err *err, cables_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
