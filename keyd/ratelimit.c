/* ratelimit - token buckets, one per client key; see ratelimit.h. */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "ratelimit.h"
#include "util.h"

#define KEY_MAX 256
#define PROBES 8

struct slot {
	char key[KEY_MAX];	/* "" when free */
	double tokens;
	double at;		/* when tokens was last brought up to date */
};

struct ratelimit {
	double rate, burst;
	size_t nslots;
	uint64_t seed;
	struct slot *slots;
};

struct ratelimit *
ratelimit_new(size_t slots, double rate, double burst)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));

	rl->rate = rate;
	rl->burst = burst >= 1 ? burst : 1;
	rl->nslots = slots > PROBES ? slots : PROBES;
	rl->slots = xcalloc(rl->nslots, sizeof(*rl->slots));
	if (RAND_bytes((unsigned char *)&rl->seed, sizeof(rl->seed)) != 1)
		rl->seed = (uint64_t)(uintptr_t)rl;	/* still a table that works; only the spread is weaker */
	return rl;
}

void
ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	free(rl->slots);
	free(rl);
}

/* FNV-1a over the key, started from the seed and mixed at the end. */
static uint64_t
hash(const struct ratelimit *rl, const char *key)
{
	uint64_t h = 14695981039346656037ULL ^ rl->seed;

	for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* s's tokens brought up to now. */
static double
refilled(const struct ratelimit *rl, const struct slot *s, double now)
{
	double t = s->tokens + (now > s->at ? now - s->at : 0) * rl->rate;

	return t > rl->burst ? rl->burst : t;
}

enum ratelimit_verdict
ratelimit_take(struct ratelimit *rl, const char *key, double now)
{
	char k[KEY_MAX];
	uint64_t h;
	struct slot *s = NULL, *idle = NULL;

	if (rl->rate == 0)
		return RATELIMIT_OK;
	strlcpy_c(k, key, sizeof(k));
	h = hash(rl, k);
	for (size_t i = 0; i < PROBES && s == NULL; i++) {
		struct slot *c = &rl->slots[(h + i) % rl->nslots];

		if (strcmp(c->key, k) == 0)
			s = c;
		else if (idle == NULL && (c->key[0] == '\0' || refilled(rl, c, now) >= rl->burst))
			idle = c;	/* free, or its client would get nothing more from a fresh bucket */
	}
	if (s == NULL) {
		if (idle == NULL)
			return RATELIMIT_FULL;
		s = idle;
		strlcpy_c(s->key, k, sizeof(s->key));
		s->tokens = rl->burst;
		s->at = now;
	}
	s->tokens = refilled(rl, s, now);
	s->at = now;
	if (s->tokens < 1)
		return RATELIMIT_LIMITED;
	s->tokens -= 1;
	return RATELIMIT_OK;
}

const char *
ratelimit_verdict_name(enum ratelimit_verdict v)
{
	switch (v) {
	case RATELIMIT_OK:
		return "ok";
	case RATELIMIT_LIMITED:
		return "limited";
	case RATELIMIT_FULL:
		return "full";
	}
	return "?";
}
