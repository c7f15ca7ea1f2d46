/*
 * unresponsive - the domains whose key lookups recently got no answer.
 *
 * When a discovery at a domain ends with no server answering (a DNS query
 * timed out or the resolver said SERVFAIL: dns_answer.unanswered), keyd
 * marks the domain for UnresponsiveTime.  The milter asks at RCPT time
 * (request=check, keydproto.h) and temp-fails that recipient alone while
 * the mark lasts, instead of accepting it and then temp-failing the whole
 * message when the lookup times out at its end.  Any answer from the
 * domain's servers (records, proven absence, even a bogus answer) clears
 * the mark: the servers answer again.  A bogus answer never sets one.
 *
 * The table has a fixed number of slots (UNRESPONSIVE_SLOTS, by a hash of
 * the domain, a short probe window): a sender who names addresses at many
 * dead domains costs no memory, and a mark pushed out early only means
 * the domain is tried again at the end of a message, as without marks.
 * The struct is the caller's (embedded in struct keyd, under its lock);
 * nothing here locks, logs or reads the clock: times are given.
 */
#ifndef CABLES_UNRESPONSIVE_H
#define CABLES_UNRESPONSIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define UNRESPONSIVE_SLOTS 1024
#define UNRESPONSIVE_PROBE 8
#define UNRESPONSIVE_DOMAIN_MAX 256
#define UNRESPONSIVE_REASON_MAX 160

struct unresponsive_slot {
	char domain[UNRESPONSIVE_DOMAIN_MAX];	/* lower case; "" when free */
	time_t since;		/* the first failure of this mark */
	time_t until;		/* the mark lasts while now < until */
	unsigned long failures;	/* lookups that got no answer while marked */
	char reason[UNRESPONSIVE_REASON_MAX];
};

struct unresponsive {
	struct unresponsive_slot slots[UNRESPONSIVE_SLOTS];
	unsigned long marked, cleared;	/* counters for request=stats */
};

/* Empty the table. */
void unresponsive_init(struct unresponsive *u);

/*
 * A lookup at domain got no answer at now: mark it until now + hold_s
 * (hold_s 0: marks are off, nothing is kept).  A mark that exists is
 * extended.  A domain longer than UNRESPONSIVE_DOMAIN_MAX - 1 is not kept.
 * True when the domain was not marked before (for one log line per mark).
 */
bool unresponsive_mark(struct unresponsive *u, const char *domain, time_t now, unsigned long hold_s,
    const char *reason);

/* A server of domain answered: its mark, if any, is gone. */
void unresponsive_clear(struct unresponsive *u, const char *domain);

/*
 * Is domain marked at now?  If so, *until and reason (may be NULL) say
 * till when and why ("N lookups got no answer since T: REASON").
 */
bool unresponsive_get(const struct unresponsive *u, const char *domain, time_t now, time_t *until, char *reason,
    size_t reason_len);

#endif
