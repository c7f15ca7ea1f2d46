#ifndef CABLES_KHBUCKETS_H
#define CABLES_KHBUCKETS_H

/*
 * Rate buckets, three per address (doc/privsep.md, "Authorisation"): a
 * signature takes a token from the address's sign bucket (an exchange
 * signature from its domain's, "@DOMAIN"); a decryption (RSA, OAEP, ECDH)
 * needs a token in the decrypt bucket, which it keeps only when it
 * succeeds: a failed one gives it back and takes one from the failure
 * bucket instead.  So junk that fails to unwrap, which anyone can send,
 * never spends what the user's valid mail and outgoing signatures need.
 * Each holds its limit a minute, as much in a burst; a limit of 0 = none.
 */

#include <stdbool.h>

#include "config.h"
#include "khproto.h"
#include "status.h"

enum bucket_class {
	BUCKET_SIGN,
	BUCKET_DECRYPT,
	BUCKET_FAILURE,
	BUCKET_CLASSES
};

/* The limits are c's (KeyholderSignRateLimit, ...); c must outlive the buckets. */
void buckets_init(const struct config *c);
/* Class k's limit a minute; 0: none. */
double bucket_cap(enum bucket_class k);
/* May address spend one more operation of class k?  Takes the token.  Not thread-safe: under the caller's lock. */
bool bucket_take(const char *address, enum bucket_class k);
/* Give back a token of class k that bucket_take() took.  Under the caller's lock. */
void bucket_give(const char *address, enum bucket_class k);
/* KH_LIMITED, with err naming class k's limit. */
enum kh_status bucket_limited(enum bucket_class k, struct cables_err *err);

#endif
