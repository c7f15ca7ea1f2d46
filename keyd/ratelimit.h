/*
 * ratelimit - token buckets keyed by a client name (an IP address, an
 * asking domain), for the key-exchange endpoint (xserver.c).
 *
 * Each bucket holds its key: two clients never share a budget.  The table
 * is a fixed number of slots (open addressing, a few probes from a hash
 * seeded at creation, so a client cannot choose which slots it lands in).
 * A slot is reused only when its bucket has refilled completely (its
 * client has been idle long enough that a fresh bucket gives it nothing
 * more); when every probed slot holds an active client the new client is
 * refused (RATELIMIT_FULL), never merged with one of them.
 *
 * Not thread-safe: the caller holds its own lock.  Time is the caller's
 * (seconds, any monotonic origin) so tests can use a fixed clock.
 */
#ifndef CABLES_RATELIMIT_H
#define CABLES_RATELIMIT_H

#include <stddef.h>

enum ratelimit_verdict {
	RATELIMIT_OK,		/* a token was taken */
	RATELIMIT_LIMITED,	/* the client's bucket is empty */
	RATELIMIT_FULL,		/* no slot for a new client: every candidate is in use */
};

struct ratelimit;

/* rate tokens a second, at most burst (>= 1), slots buckets; rate 0: everything is RATELIMIT_OK. */
struct ratelimit *ratelimit_new(size_t slots, double rate, double burst);
void ratelimit_free(struct ratelimit *rl);

/* Take one token from key's bucket at time now (keys longer than 255 bytes are cut). */
enum ratelimit_verdict ratelimit_take(struct ratelimit *rl, const char *key, double now);

const char *ratelimit_verdict_name(enum ratelimit_verdict v);

#endif
