/* unresponsive - domains whose DNS servers do not answer, and the evidence; see unresponsive.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "unresponsive.h"
#include "util.h"

void
unresponsive_init(struct unresponsive *u)
{
	memset(u, 0, sizeof(*u));
}

/* FNV-1a of the domain in lower case; never 0 (a free answer slot). */
static unsigned long long
hash_of(const char *domain)
{
	unsigned long long h = 14695981039346656037ULL;

	for (; *domain != '\0'; domain++)
		h = (h ^ (unsigned char)tolower((unsigned char)*domain)) * 1099511628211ULL;
	return h != 0 ? h : 1;
}

static size_t
slot_of(const char *domain)
{
	return (size_t)(hash_of(domain) % UNRESPONSIVE_SLOTS);
}

static struct unresponsive_answer *
answer_of(const struct unresponsive *u, unsigned long long h)
{
	return (struct unresponsive_answer *)&u->answers[(h >> 16) % UNRESPONSIVE_ANSWERS];
}

/* The slot holding domain's mark (expired or not), or NULL. */
static struct unresponsive_slot *
find(const struct unresponsive *u, const char *domain)
{
	size_t s = slot_of(domain);

	for (size_t i = 0; i < UNRESPONSIVE_PROBE; i++) {
		const struct unresponsive_slot *e = &u->slots[(s + i) % UNRESPONSIVE_SLOTS];

		if (e->domain[0] != '\0' && strcasecmp(e->domain, domain) == 0)
			return (struct unresponsive_slot *)e;
	}
	return NULL;
}

bool
unresponsive_mark(struct unresponsive *u, const char *domain, time_t now, unsigned long hold_s, unsigned int strikes,
    const char *reason)
{
	struct unresponsive_slot *e = find(u, domain), *victim = NULL;
	size_t s = slot_of(domain);

	if (hold_s == 0 || domain[0] == '\0' || strlen(domain) >= UNRESPONSIVE_DOMAIN_MAX)
		return false;
	if (e != NULL && e->until > now) {
		e->failures++;
		e->until = now + (time_t)hold_s;
		strlcpy_c(e->reason, reason, sizeof(e->reason));
		return false;
	}
	/* Strikes counted since its last answer, within hold_s: one more; marked at the last one. */
	if (e != NULL && e->until == 0 && now - e->since <= (time_t)hold_s) {
		e->failures++;
		strlcpy_c(e->reason, reason, sizeof(e->reason));
		if (e->failures < strikes)
			return false;
		e->until = now + (time_t)hold_s;
		u->marked++;
		return true;
	}
	/* Its old slot, else a free or expired one in the window, else the one that ends first. */
	victim = e;
	for (size_t i = 0; victim == NULL && i < UNRESPONSIVE_PROBE; i++) {
		struct unresponsive_slot *c = &u->slots[(s + i) % UNRESPONSIVE_SLOTS];

		if (c->domain[0] == '\0' || (c->until != 0 && c->until <= now) ||
		    (c->until == 0 && now - c->since > (time_t)hold_s))
			victim = c;
	}
	for (size_t i = 0; victim == NULL && i < UNRESPONSIVE_PROBE; i++) {
		struct unresponsive_slot *c = &u->slots[(s + i) % UNRESPONSIVE_SLOTS];

		if (i == 0 || c->until < victim->until)
			victim = c;
	}
	memset(victim, 0, sizeof(*victim));
	for (size_t i = 0; domain[i] != '\0'; i++)
		victim->domain[i] = (char)tolower((unsigned char)domain[i]);
	victim->since = now;
	victim->failures = 1;
	strlcpy_c(victim->reason, reason, sizeof(victim->reason));
	if (strikes > 1)
		return false;
	victim->until = now + (time_t)hold_s;
	u->marked++;
	return true;
}

/* domain, newest first, in the list of those that answered last (once). */
static void
remember_recent(struct unresponsive *u, const char *domain)
{
	size_t i, len = strlen(domain);

	if (len == 0 || len >= UNRESPONSIVE_DOMAIN_MAX)
		return;
	for (i = 0; i < UNRESPONSIVE_RECENT - 1; i++)
		if (strcasecmp(u->recent[i], domain) == 0)
			break;
	memmove(u->recent[1], u->recent[0], i * sizeof(u->recent[0]));
	for (size_t j = 0; j <= len; j++)
		u->recent[0][j] = (char)tolower((unsigned char)domain[j]);
}

void
unresponsive_answered(struct unresponsive *u, const char *domain, time_t now, long long at_ms)
{
	struct unresponsive_slot *e = find(u, domain);
	unsigned long long h = hash_of(domain);
	struct unresponsive_answer *a = answer_of(u, h);

	a->hash = h;
	if (at_ms > a->at_ms)	/* times only grow (see the header) */
		a->at_ms = at_ms;
	remember_recent(u, domain);
	if (e == NULL)
		return;
	if (e->until > now)
		u->cleared++;
	memset(e, 0, sizeof(*e));	/* a mark, or strikes towards one */
}

enum unresponsive_evidence
unresponsive_silent_since(const struct unresponsive *u, const char *domain, long long since_ms)
{
	unsigned long long h = hash_of(domain);
	const struct unresponsive_answer *a = answer_of(u, h);

	if (a->hash == 0 || a->at_ms < since_ms)
		return UNRESPONSIVE_SILENT;
	return a->hash == h ? UNRESPONSIVE_ANSWERED : UNRESPONSIVE_UNKNOWN;
}

bool
unresponsive_other(const struct unresponsive *u, const char *domain, char *out, size_t out_len)
{
	for (size_t i = 0; i < UNRESPONSIVE_RECENT; i++) {
		if (u->recent[i][0] != '\0' && strcasecmp(u->recent[i], domain) != 0) {
			strlcpy_c(out, u->recent[i], out_len);
			return true;
		}
	}
	return false;
}

bool
unresponsive_retest_due(struct unresponsive *u, const char *domain, time_t now, unsigned long every_s)
{
	struct unresponsive_slot *e = find(u, domain);

	if (e == NULL || e->until <= now || (e->retested != 0 && now - e->retested < (time_t)every_s))
		return false;
	e->retested = now;
	return true;
}

bool
unresponsive_get(const struct unresponsive *u, const char *domain, time_t now, time_t *until, char *reason,
    size_t reason_len)
{
	const struct unresponsive_slot *e = find(u, domain);

	if (e == NULL || e->until <= now)
		return false;
	*until = e->until;
	if (reason != NULL)
		snprintf(reason, reason_len, "%lu lookup%s at %s got no answer in the last %lld s: %s", e->failures,
		    e->failures == 1 ? "" : "s", e->domain, (long long)(now - e->since), e->reason);
	return true;
}
