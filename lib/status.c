/* status - status codes and error details; see status.h. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "status.h"

const char *
cables_strerror(cables_status st)
{
	switch (st) {
	case CABLES_OK:			return "ok";
	case CABLES_ERR_ARG:		return "bad argument";
	case CABLES_ERR_SYNTAX:		return "syntax error";
	case CABLES_ERR_IO:		return "I/O error";
	case CABLES_ERR_NOTFOUND:	return "not found";
	case CABLES_ERR_EXISTS:		return "already exists";
	case CABLES_ERR_TOOBIG:		return "too big";
	case CABLES_ERR_UNUSABLE:	return "unusable";
	case CABLES_ERR_CRYPTO:		return "cryptographic failure";
	case CABLES_ERR_DB:		return "key store error";
	case CABLES_ERR_INTERNAL:	return "internal error";
	}
	return "unknown status";
}

cables_status
cables_fail(struct cables_err *err, cables_status st, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return st;
}

cables_status
cables_fail_ssl(struct cables_err *err, cables_status st, const char *fmt, ...)
{
	va_list ap;
	unsigned long e;
	size_t len;
	char reason[160];

	e = ERR_peek_last_error();
	ERR_clear_error();
	if (err == NULL)
		return st;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (e != 0) {
		ERR_error_string_n(e, reason, sizeof(reason));
		len = strlen(err->msg);
		snprintf(err->msg + len, sizeof(err->msg) - len, " (%s)",
		    ERR_reason_error_string(e) != NULL ?
		    ERR_reason_error_string(e) : reason);
	}
	return st;
}
