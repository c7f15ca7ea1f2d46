/*
 * unresponsive - the domains whose DNS servers do not answer, and the
 * evidence a mark is made from.
 *
 * A mark says "the servers of this domain do not answer": while it lasts
 * (UnresponsiveTime), the milter temp-fails that domain's recipients alone
 * at RCPT time (request=check, keydproto.h) instead of accepting them and
 * then temp-failing the whole message when the lookup times out at its
 * end.  A wrong mark defers mail that would have gone through, so a mark
 * is made from evidence about the domain, never from keyd's resolver being
 * slow.  keyd (lookup.c) marks domain D when, for one lookup at D:
 *
 *  1. a query for D's names timed out, none got any answer (an answer of
 *     any kind, NXDOMAIN, NODATA and bogus included), and no other lookup
 *     at D got one during that lookup's window (its start to now):
 *     unresponsive_silent_since() says so.  A domain of which some names
 *     answer while others time out is slow, not dead;
 *  2. and, after D's first query timed out, the resolver answered a query
 *     that no cache could answer, about another zone (the probe: a random
 *     name, asked through the same libunbound context as D's queries, so
 *     through the same queue, forwarder and opinion of the forwarder, with
 *     aggressive NSEC off), and a query for D asked after that answer
 *     timed out all the same.  An overloaded or stalled resolver answers
 *     no probe in time; one that recovers answers D's next query; either
 *     way nothing is marked.
 *
 * One such lookup is a strike; the mark needs UNRESPONSIVE_STRIKES of them
 * since D's last answer, within UnresponsiveTime: two witnesses, so that a
 * resolver that loses packets at random (each strike needs every try of
 * a query for D lost while a probe got through) marks nobody by bad luck.
 * A message with two or more recipients at a dead domain brings two
 * strikes at once (their lookups run side by side); a lone recipient's
 * domain is marked at the message's first retry.
 *
 * SERVFAIL counts neither way (a resolver answers it for its own troubles
 * too: a forwarder it holds for down, a validation it gave up).  Any answer
 * from D's servers clears D's mark.
 *
 * The evidence of answers is kept in UNRESPONSIVE_ANSWERS slots by a hash
 * of the domain, each with the time of its last write (times only grow):
 * a slot written before the window began proves D silent since; a slot
 * written since by D proves an answer; a slot written since by another
 * domain (a collision) proves nothing, and nothing is marked.  So a lost
 * answer never makes a mark; it can only spare one.
 *
 * The marks have a fixed number of slots (UNRESPONSIVE_SLOTS, by a hash of
 * the domain, a short probe window): a sender who names addresses at many
 * dead domains costs no memory, and a mark pushed out early only means the
 * domain is tried again at the end of a message, as without marks.  The
 * struct is the caller's (embedded in struct keyd, under its lock);
 * nothing here locks, logs or reads a clock: times are given, marks in
 * seconds of the wall clock, evidence in milliseconds of a monotonic one.
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
#define UNRESPONSIVE_ANSWERS 8192
#define UNRESPONSIVE_RECENT 4

#define UNRESPONSIVE_STRIKES 2

struct unresponsive_slot {
	char domain[UNRESPONSIVE_DOMAIN_MAX];	/* lower case; "" when free */
	time_t since;		/* the first strike */
	time_t until;		/* the mark lasts while now < until; 0: strikes only, not marked yet */
	unsigned long failures;	/* strikes: lookups that got no answer (with the evidence above) */
	time_t retested;	/* the last re-test of a marked domain (unresponsive_retest_due) */
	char reason[UNRESPONSIVE_REASON_MAX];
};

struct unresponsive_answer {
	unsigned long long hash;	/* of the domain, lower case; 0: never written */
	long long at_ms;	/* the last write */
};

struct unresponsive {
	struct unresponsive_slot slots[UNRESPONSIVE_SLOTS];
	struct unresponsive_answer answers[UNRESPONSIVE_ANSWERS];
	char recent[UNRESPONSIVE_RECENT][UNRESPONSIVE_DOMAIN_MAX];	/* domains that answered last, newest first */
	unsigned long marked, cleared, spared;	/* counters for request=stats (spared: timed out, not marked) */
};

/* Empty the table. */
void unresponsive_init(struct unresponsive *u);

/*
 * A strike against domain (the caller has the evidence above): with the
 * strikes-th since its last answer (the earlier ones within hold_s), it
 * is marked until now + hold_s (hold_s 0: marks are off, nothing is
 * kept).  A mark that exists is extended.  A domain longer than
 * UNRESPONSIVE_DOMAIN_MAX - 1 is not kept.  True when this strike marked
 * it (for one log line per mark).
 */
bool unresponsive_mark(struct unresponsive *u, const char *domain, time_t now, unsigned long hold_s,
    unsigned int strikes, const char *reason);

/* A server of domain answered (at now, at_ms): its mark, if any, is gone, and the answer kept as evidence. */
void unresponsive_answered(struct unresponsive *u, const char *domain, time_t now, long long at_ms);

enum unresponsive_evidence {
	UNRESPONSIVE_SILENT,	/* no answer from domain's servers since the time asked */
	UNRESPONSIVE_ANSWERED,	/* one came */
	UNRESPONSIVE_UNKNOWN,	/* its slot was taken by another domain since: treat as answered */
};

/* Did domain's servers answer since since_ms (condition 1)? */
enum unresponsive_evidence unresponsive_silent_since(const struct unresponsive *u, const char *domain,
    long long since_ms);

/*
 * The domain other than domain whose servers answered last (at any time),
 * for the probe of condition 2: true with it in out, false when none did.
 */
bool unresponsive_other(const struct unresponsive *u, const char *domain, char *out, size_t out_len);

/*
 * Is domain marked at now?  If so, *until and reason (may be NULL) say
 * till when and why ("N lookups at D got no answer in the last S s: REASON").
 */
/*
 * Is domain marked and its last re-test at least every_s ago (or none)?
 * Then the re-test is noted as begun now and the caller looks the domain
 * up once, in the background: any answer ends the mark at once
 * (unresponsive_answered), so a domain that is back does not wait out
 * UnresponsiveTime.  At most one re-test per domain per every_s.
 */
bool unresponsive_retest_due(struct unresponsive *u, const char *domain, time_t now, unsigned long every_s);
bool unresponsive_get(const struct unresponsive *u, const char *domain, time_t now, time_t *until, char *reason,
    size_t reason_len);

#endif
