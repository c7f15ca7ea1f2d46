/*
 * outcome - what the milter decided about a message, and the fail-safe
 * rules every decision follows: the verdict the MTA gets, the SMTP reply,
 * and the one log line.
 *
 * outcome_internal_error() applies On-InternalError, except that "accept" becomes
 * tempfail when a recipient requires encryption or when part of a new body
 * was already handed to the MTA: mail is never lost and never leaks.  An
 * error met while the keyholder was unavailable (khclient_outage()) always
 * temp-fails.
 */
#ifndef CABLES_OUTCOME_H
#define CABLES_OUTCOME_H

#include <stdbool.h>

#include "config.h"

enum verdict {
	VERDICT_CONTINUE,	/* undecided: the body is needed */
	VERDICT_ACCEPT,		/* deliver unchanged */
	VERDICT_MODIFIED,	/* deliver as rewritten */
	VERDICT_TEMPFAIL,	/* 4xx: the MTA keeps the message */
	VERDICT_REJECT,		/* 5xx */
};

struct outcome {
	enum verdict verdict;
	const char *what;	/* log word: pass, plaintext, encrypted, signed, decrypted, ... */
	char detail[512];	/* log detail */
	const char *rcode;	/* SMTP reply for tempfail/reject */
	const char *xcode;
	char reply[256];
};

void outcome_set(struct outcome *out, enum verdict v, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* An SMTP reply text: control characters dropped, '%' doubled for libmilter. */
void outcome_reply(struct outcome *out, const char *rcode, const char *xcode, const char *text);

/* On-InternalError (action); accept only when accept_allowed and no recipient requires encryption. */
void outcome_internal_error(struct outcome *out, enum fail_action action, bool accept_allowed,
    bool has_require, const char *reason);

#endif
