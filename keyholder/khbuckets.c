/* khbuckets - the keyholder's rate buckets; see khbuckets.h. */
#include "autoconfig.h"

#include <string.h>

#include "khbuckets.h"
#include "util.h"

#define BUCKETS_MAX 1024

struct bucket {
	char address[KH_ADDR_MAX];
	double tokens[BUCKET_CLASSES];
	long long at_ms;
};

static const struct config *conf;
static struct bucket buckets[BUCKETS_MAX];
static size_t nbuckets;

void
buckets_init(const struct config *c)
{
	conf = c;
}

double
bucket_cap(enum bucket_class k)
{
	switch (k) {
	case BUCKET_SIGN: return (double)conf->keyholder_sign_rate_limit;
	case BUCKET_DECRYPT: return (double)conf->keyholder_decrypt_rate_limit;
	default: return (double)conf->keyholder_failure_rate_limit;
	}
}

static const char *
bucket_limit_name(enum bucket_class k)
{
	switch (k) {
	case BUCKET_SIGN: return "KeyholderSignRateLimit";
	case BUCKET_DECRYPT: return "KeyholderDecryptRateLimit";
	default: return "KeyholderFailureRateLimit";
	}
}

/* Tokens b would hold at now in class k, refilled at its limit a minute. */
static double
bucket_level(const struct bucket *b, enum bucket_class k, long long now)
{
	double cap = bucket_cap(k), t = b->tokens[k] + (double)(now - b->at_ms) * cap / 60000.0;

	return t > cap ? cap : t;
}

/*
 * address's buckets, refilled to now; made (full) when it has none.  NULL
 * when the table is full and no address's buckets are all full: then
 * refuse, rather than hand an address a fresh budget by evicting a live one
 * (forgetting full buckets loses nothing).
 */
static struct bucket *
bucket_of(const char *address)
{
	long long now = monotonic_ms();
	struct bucket *b = NULL;
	size_t slot;

	for (size_t i = 0; i < nbuckets && b == NULL; i++)
		if (strcmp(buckets[i].address, address) == 0)
			b = &buckets[i];
	if (b == NULL) {
		slot = nbuckets < BUCKETS_MAX ? nbuckets++ : BUCKETS_MAX;
		for (size_t i = 0; i < BUCKETS_MAX && slot == BUCKETS_MAX; i++) {
			size_t k;

			for (k = 0; k < BUCKET_CLASSES && bucket_level(&buckets[i], k, now) >= bucket_cap(k); k++)
				;
			if (k == BUCKET_CLASSES)
				slot = i;
		}
		if (slot == BUCKETS_MAX)
			return NULL;
		b = &buckets[slot];
		strlcpy_c(b->address, address, sizeof(b->address));
		for (size_t k = 0; k < BUCKET_CLASSES; k++)
			b->tokens[k] = bucket_cap(k);
		b->at_ms = now;
	}
	for (size_t k = 0; k < BUCKET_CLASSES; k++)
		b->tokens[k] = bucket_level(b, k, now);
	b->at_ms = now;
	return b;
}

/* May address spend one more operation of class k?  Takes the token.  Under the caller's lock. */
bool
bucket_take(const char *address, enum bucket_class k)
{
	struct bucket *b;

	if (bucket_cap(k) == 0)
		return true;
	if ((b = bucket_of(address)) == NULL || b->tokens[k] < 1.0)
		return false;
	b->tokens[k] -= 1.0;
	return true;
}

/* Give back a token of class k that bucket_take() took.  Under the caller's lock. */
void
bucket_give(const char *address, enum bucket_class k)
{
	struct bucket *b;

	if (bucket_cap(k) != 0 && (b = bucket_of(address)) != NULL && (b->tokens[k] += 1.0) > bucket_cap(k))
		b->tokens[k] = bucket_cap(k);
}

enum kh_status
bucket_limited(enum bucket_class k, struct cables_err *err)
{
	cables_fail(err, CABLES_ERR_UNUSABLE, "more than %.0f %s a minute (%s)", bucket_cap(k),
	    k == BUCKET_SIGN ? "signatures" : k == BUCKET_DECRYPT ? "decryptions" : "failed decryptions",
	    bucket_limit_name(k));
	return KH_LIMITED;
}

