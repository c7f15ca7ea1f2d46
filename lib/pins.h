/*
 * pins - the decision every learnt key goes through before it is stored:
 * keys cables-keyd discovers (DNS, a domain's key server, WKD) and
 * certificates the milter harvests from signed mail.
 *
 * Per address and format the first key seen is pinned.  The same key again
 * refreshes the pin.  A different key from a more trusted source replaces
 * the pin (pin_trust_rank: a DNSSEC record > a domain-signed key-server
 * answer > WKD > the rest, harvested certificates among the rest); the
 * same key from a more trusted source raises the pin's source.  A
 * harvested key never replaces a pin from DNSSEC, a key server or WKD
 * (PIN_HELD, action reject, whatever On-KeyChange says).  Any other
 * different key is a key change, decided by the address's
 * On-KeyChange: accept re-pins to the new key (and counts the change);
 * tempfail and reject keep the pin and record the new key as offered, so
 * that cables-keyctl pins shows it.  pin_check reads, decides and writes
 * the pin; the caller stores the key (or not) and logs, and serialises
 * pin_check with its own store writes.
 */
#ifndef CABLES_PINS_H
#define CABLES_PINS_H

#include <time.h>

#include "keystore.h"
#include "policy.h"
#include "status.h"

enum pin_verdict {
	PIN_NEW,	/* no pin yet: r is pinned now */
	PIN_SAME,	/* r is the pinned key: the pin is refreshed */
	PIN_RAISED,	/* r comes from a more trusted source: it replaces the pinned key */
	PIN_CHANGED,	/* a key change that On-KeyChange accept let through: r is pinned now */
	PIN_HELD,	/* a key change held back (On-KeyChange tempfail or reject): r is offered, not pinned */
};

struct pin_result {
	enum pin_verdict verdict;
	enum fail_action action;	/* On-KeyChange, for PIN_CHANGED and PIN_HELD */
	char was[65];			/* the fingerprint pinned before ("" for PIN_NEW) */
	char was_source[32];		/* its source */
};

/* How far a source is trusted for pins: dns-dnssec 3, peer 2, wkd 1, anything else 0. */
int pin_trust_rank(const char *source);

/*
 * Decide the pin of r->address and r->format for key r (address
 * normalised, fingerprint and source set), on the address's On-KeyChange
 * in policy, and write it; res says what was decided.  r may be stored
 * and used unless the verdict is PIN_HELD.  A pin that cannot be read is an
 * error, and nothing is written (fail closed: the caller does not store r).
 */
cables_status pin_check(struct keystore *ks, const struct policy_table *policy, const struct key_record *r,
    time_t now, struct pin_result *res, struct cables_err *err);

/* Does the verdict let r be stored and used? */
#define PIN_ALLOWS(v) ((v) != PIN_HELD)

#endif
