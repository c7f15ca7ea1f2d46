/* outcome - decisions, replies and their fail-safe rules; see outcome.h. */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>

#include "khclient.h"
#include "outcome.h"

void
outcome_set(struct outcome *out, enum verdict v, const char *what, const char *fmt, ...)
{
	va_list ap;

	static const enum outcome_class by_verdict[] = {
		[VERDICT_CONTINUE] = CLASS_NONE, [VERDICT_ACCEPT] = CLASS_PASSED, [VERDICT_MODIFIED] = CLASS_PASSED,
		[VERDICT_TEMPFAIL] = CLASS_TEMPFAILED, [VERDICT_REJECT] = CLASS_REJECTED,
	};

	out->verdict = v;
	out->cls = by_verdict[v];
	out->format = NULL;
	out->what = what;
	va_start(ap, fmt);
	vsnprintf(out->detail, sizeof(out->detail), fmt, ap);
	va_end(ap);
	out->rcode = out->xcode = NULL;
	out->reply[0] = '\0';
}

void
outcome_classify(struct outcome *out, enum outcome_class cls, const char *format)
{
	out->cls = cls;
	out->format = format;
}

const char *
outcome_class_name(enum outcome_class cls)
{
	static const char *const names[CLASS_COUNT] = {
		[CLASS_NONE] = "undecided", [CLASS_PASSED] = "passed", [CLASS_ENCRYPTED] = "encrypted",
		[CLASS_SIGNED] = "signed", [CLASS_PLAINTEXT] = "plaintext-by-policy", [CLASS_DECRYPTED] = "decrypted",
		[CLASS_VERIFIED] = "verified", [CLASS_NOT_DECRYPTED] = "not-decrypted", [CLASS_HELD] = "held",
		[CLASS_TEMPFAILED] = "temp-failed", [CLASS_REJECTED] = "rejected", [CLASS_OWN_COPY] = "own-copy",
	};

	return cls < CLASS_COUNT ? names[cls] : "undecided";
}

void
outcome_reply(struct outcome *out, const char *rcode, const char *xcode, const char *text)
{
	size_t k = 0;

	out->rcode = rcode;
	out->xcode = xcode;
	for (const char *p = text; *p != '\0' && k + 2 < sizeof(out->reply); p++) {
		if ((unsigned char)*p < 32 || *p == 0x7f)
			continue;
		if (*p == '%')
			out->reply[k++] = '%';
		out->reply[k++] = *p;
	}
	out->reply[k] = '\0';
}

void
outcome_internal_error(struct outcome *out, enum fail_action a, bool accept_allowed,
    bool has_require, const char *reason)
{
	if (khclient_outage()) {
		/* Its own class: the message needed the keyholder and it was down; it waits, whatever the policy. */
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "keyholder unavailable: %s (temp-failed whatever "
		    "On-InternalError says)", reason);
		outcome_reply(out, "451", "4.3.0", "Cables: private-key service unavailable, please try again later");
		return;
	}
	if (a == ACTION_QUARANTINE || a == ACTION_HOLD || (a == ACTION_ACCEPT && (!accept_allowed || has_require)))
		a = ACTION_TEMPFAIL;
	switch (a) {
	case ACTION_ACCEPT:
		outcome_set(out, VERDICT_ACCEPT, "plaintext", "internal error: %s (On-InternalError accept)", reason);
		outcome_classify(out, CLASS_PLAINTEXT, NULL);
		break;
	case ACTION_REJECT:
		outcome_set(out, VERDICT_REJECT, "reject", "internal error: %s", reason);
		outcome_reply(out, "550", "5.3.0", "Cables: internal error while processing the message");
		break;
	case ACTION_TEMPFAIL:
	case ACTION_QUARANTINE:
	case ACTION_HOLD:
		outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "internal error: %s", reason);
		outcome_reply(out, "451", "4.3.0", "Cables: internal error, please try again later");
		break;
	}
}
