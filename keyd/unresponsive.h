/*
 * unresponsive - the domains whose key lookups recently got no answer.
 *
 * When a discovery at a domain ends with no server answering (a DNS query
 * timed out: dns_answer.unanswered; a resolver's SERVFAIL counts neither
 * way, as resolvers answer it for their own troubles too), keyd
 * marks the domain for UnresponsiveTime.  The milter asks at RCPT time
 * (request=check, keydproto.h) and temp-fails that recipient alone while
 * the mark lasts, instead of accepting it and then temp-failing the whole
 * message when the lookup times out at its end.  Any answer from the
 * domain's servers (records, proven absence, even a bogus answer) clears
 * the mark: the servers answer again.  A bogus answer never sets one.
 *
 * A domain that answered a moment ago (within the quiet time the caller
 * gives: keyd's is twice LookupTimeout) is not marked by a query that got
 * none: that is keyd's resolver or its path failing under load (one
 * sender's 1,000 lookups, a forwarder that dropped another domain's
 * queries), not the domain, and marking it would defer mail that a retry
 * a second later would deliver.  The answers are kept by a hash of the
 * domain in UNRESPONSIVE_ANSWERS slots, a later domain overwriting an
 * earlier one in its slot (then a failure of the earlier one may mark it).
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

#define UNRESPONSIVE_ANSWERS 8192

struct unresponsive_answer {
	unsigned long long hash;	/* of the domain, lower case; 0: free */
	time_t at;
};

struct unresponsive {
	struct unresponsive_slot slots[UNRESPONSIVE_SLOTS];
	struct unresponsive_answer answers[UNRESPONSIVE_ANSWERS];	/* when a domain last answered */
	unsigned long marked, cleared, spared;	/* counters for request=stats (spared: answered a moment ago) */
};

/* Empty the table. */
void unresponsive_init(struct unresponsive *u);

/*
 * A lookup at domain got no answer at now: mark it until now + hold_s
 * (hold_s 0: marks are off, nothing is kept), unless it answered within
 * the last quiet_s.  A mark that exists is extended.  A domain longer than
 * UNRESPONSIVE_DOMAIN_MAX - 1 is not kept.  True when the domain was not
 * marked before (for one log line per mark).
 */
bool unresponsive_mark(struct unresponsive *u, const char *domain, time_t now, unsigned long hold_s,
    unsigned long quiet_s, const char *reason);

/* A server of domain answered at now: its mark, if any, is gone, and the answer remembered. */
void unresponsive_answered(struct unresponsive *u, const char *domain, time_t now);

/*
 * Is domain marked at now?  If so, *until and reason (may be NULL) say
 * till when and why ("N lookups got no answer since T: REASON").
 */
bool unresponsive_get(const struct unresponsive *u, const char *domain, time_t now, time_t *until, char *reason,
    size_t reason_len);

#endif
