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

/*
 * What the decision was, for the counters (counters.h): outcome_set()
 * derives it from the verdict (passed, temp-failed, rejected); the code
 * that did the work refines it with outcome_classify().
 */
enum outcome_class {
	CLASS_NONE,		/* undecided */
	CLASS_PASSED,		/* nothing to do: delivered as it came (or with forged fields removed) */
	CLASS_ENCRYPTED,
	CLASS_SIGNED,		/* left unencrypted, clear-signed */
	CLASS_PLAINTEXT,	/* left unencrypted because the policy allows it (encrypt, On-*Error accept) */
	CLASS_DECRYPTED,
	CLASS_VERIFIED,		/* signed, not encrypted, signature checked */
	CLASS_NOT_DECRYPTED,	/* delivered still encrypted (or unchecked) with the reason (On-DecryptError accept) */
	CLASS_HELD,		/* quarantined: in the MTA's hold queue */
	CLASS_TEMPFAILED,
	CLASS_REJECTED,
	CLASS_OWN_COPY,		/* a copy this milter re-injected, passing again */
	CLASS_COUNT
};

struct outcome {
	enum verdict verdict;
	enum outcome_class cls;
	const char *format;	/* the handler's name ("smime", "pgp") when a format did the work, else NULL */
	const char *what;	/* log word: pass, plaintext, encrypted, signed, decrypted, ... */
	char detail[512];	/* log detail */
	const char *rcode;	/* SMTP reply for tempfail/reject */
	const char *xcode;
	char reply[256];
};

void outcome_set(struct outcome *out, enum verdict v, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Refine the class (after outcome_set); format is a handler's name or NULL. */
void outcome_classify(struct outcome *out, enum outcome_class cls, const char *format);
/* Its word for the counters' verdict label ("encrypted", "temp-failed", ...). */
const char *outcome_class_name(enum outcome_class cls);
/* An SMTP reply text: control characters dropped, '%' doubled for libmilter. */
void outcome_reply(struct outcome *out, const char *rcode, const char *xcode, const char *text);

/* On-InternalError (action); accept only when accept_allowed and no recipient requires encryption. */
void outcome_internal_error(struct outcome *out, enum fail_action action, bool accept_allowed,
    bool has_require, const char *reason);

#endif
