/*
 * cache - cables-keyd's answer caches (keys found, proven or unsigned
 * absence), its flights (one discovery per address or key-server domain at
 * a time, later lookups wait for it) and its counters; see keyd_private.h.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyd_private.h"
#include "policy.h"
#include "util.h"

void
keyd_count(struct keyd *k, unsigned long *counter)
{
	pthread_mutex_lock(&k->lock);
	(*counter)++;
	pthread_mutex_unlock(&k->lock);
}

void
keyd_cache_clear(struct keyd *k)
{
	for (size_t i = 0; i < NEG_CACHE; i++) {
		free(k->neg[i].addr);
		k->neg[i].addr = NULL;
	}
	for (size_t i = 0; i < POS_CACHE; i++) {
		free(k->pos[i].addr);
		k->pos[i].addr = NULL;
	}
}

static size_t
slot(const char *addr, size_t n)
{
	size_t h = 5381;

	for (const char *p = addr; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % n;
}

void
keyd_store_changed(struct keyd *k, const char *norm)
{
	struct neg_entry *n;
	struct pos_entry *p;

	pthread_mutex_lock(&k->lock);
	if (norm == NULL) {
		keyd_cache_clear(k);
	} else {
		n = &k->neg[slot(norm, NEG_CACHE)];
		p = &k->pos[slot(norm, POS_CACHE)];
		if (n->addr != NULL && strcmp(n->addr, norm) == 0) {
			free(n->addr);
			n->addr = NULL;
		}
		if (p->addr != NULL && strcmp(p->addr, norm) == 0) {
			free(p->addr);
			p->addr = NULL;
		}
	}
	pthread_mutex_unlock(&k->lock);
}

bool
keyd_cache_fresh(struct keyd *k, const char *norm, time_t now, time_t *since)
{
	struct pos_entry *e;
	bool fresh;

	pthread_mutex_lock(&k->lock);
	e = &k->pos[slot(norm, POS_CACHE)];
	fresh = e->addr != NULL && strcmp(e->addr, norm) == 0 && e->until >= now;
	*since = fresh ? e->since : 0;
	pthread_mutex_unlock(&k->lock);
	return fresh;
}

void
keyd_cache_keys(struct keyd *k, const char *norm, time_t now, time_t until)
{
	struct pos_entry *e = &k->pos[slot(norm, POS_CACHE)];

	free(e->addr);
	e->addr = xstrdup(norm);
	e->until = until;
	e->since = now;
}

bool
keyd_cache_none(struct keyd *k, const char *norm, time_t now, char *reason, size_t reason_len)
{
	struct neg_entry *e = &k->neg[slot(norm, NEG_CACHE)];

	if (e->addr == NULL || strcmp(e->addr, norm) != 0 || e->until <= now)
		return false;
	snprintf(reason, reason_len, "%s", e->reason);
	return true;
}

unsigned long
keyd_cache_ttl(const struct config *cfg, unsigned long ttl_s)
{
	unsigned long ms = ttl_s * 1000;

	if (ms < cfg->cache_min_ttl_ms)
		ms = cfg->cache_min_ttl_ms;
	if (ms > cfg->cache_max_ttl_ms)
		ms = cfg->cache_max_ttl_ms;
	return ms / 1000;
}

void
keyd_cache_remember(struct discovery *d)
{
	struct keyd *k = d->k;

	pthread_mutex_lock(&k->lock);
	k->dns_lookups++;
	if (d->any) {
		keyd_cache_keys(k, d->norm, d->now, d->now + (time_t)keyd_cache_ttl(d->c->cfg, d->ttl));
	} else if (d->cacheable && !d->tempfail && d->held.action == ACTION_ACCEPT) {
		struct neg_entry *e = &k->neg[slot(d->norm, NEG_CACHE)];

		free(e->addr);
		e->addr = xstrdup(d->norm);
		e->until = d->now + (time_t)keyd_cache_ttl(d->c->cfg, d->none_ttl == ~0UL ? 0 : d->none_ttl);
		strlcpy_c(e->reason, d->reason, sizeof(e->reason));
	}
	pthread_mutex_unlock(&k->lock);
}

struct flight *
keyd_flight_join(struct keyd *k, const char *key)
{
	for (struct flight *f = k->flights; f != NULL; f = f->next) {
		if (strcmp(f->addr, key) == 0) {
			f->users++;
			return f;
		}
	}
	return NULL;
}

struct flight *
keyd_flight_begin(struct keyd *k, const char *key)
{
	struct flight *f = xcalloc(1, sizeof(*f));

	f->addr = xstrdup(key);
	f->users = 1;
	f->next = k->flights;
	k->flights = f;
	return f;
}

void
keyd_flight_land(struct keyd *k, struct flight *f)
{
	f->done = true;
	pthread_cond_broadcast(&k->landed);
}

void
keyd_flight_leave(struct keyd *k, struct flight *f)
{
	if (--f->users > 0)
		return;
	for (struct flight **pp = &k->flights; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	free(f->addr);
	free(f);
}

void
keyd_flight_wait(struct keyd *k, struct flight *f, const struct timespec *start, unsigned long timeout_ms)
{
	struct timespec until = *start;

	until.tv_sec += (time_t)(timeout_ms / 1000);
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!f->done && pthread_cond_timedwait(&k->landed, &k->lock, &until) == 0)
		;
}
