/*
 * epoch - when a local user's epoch keys are made and deleted
 * (doc/key-exchange.md, "Forward secrecy: epoch keys").
 *
 * Pure decisions over the store's rows and a time the caller passes, so
 * that tests move the clock by passing another one.  An epoch key made at
 * t is valid until t + lifetime + overlap (overlap = lifetime / 7); the
 * next one is due when the newest enters its overlap; a key is deleted
 * grace seconds after its expiry.  Times are Unix seconds.
 */
#ifndef CABLES_EPOCH_H
#define CABLES_EPOCH_H

#include <stdbool.h>
#include <stddef.h>

#include "keystore.h"

struct epoch_times {
	long long lifetime;	/* EpochKeyLifetime */
	long long grace;	/* EpochKeyGrace */
};

/* The overlap of an epoch key with its successor. */
long long epoch_overlap(const struct epoch_times *t);

/* When an epoch key that expires at not_after is deleted. */
long long epoch_delete_at(long long not_after, const struct epoch_times *t);

struct epoch_plan {
	bool make;		/* a new epoch key is due */
	long long not_before;	/* its validity, when make */
	long long not_after;
	size_t *doomed;		/* indexes into the list of keys to delete now */
	size_t ndoomed;
};

/*
 * What to do at now for one address and format, given its epoch keys
 * (any order).  p->doomed is malloc'd: epoch_plan_release().
 */
void epoch_plan_make(const struct key_list *epochs, const char *format, long long now,
    const struct epoch_times *t, struct epoch_plan *p);
void epoch_plan_release(struct epoch_plan *p);

#endif
