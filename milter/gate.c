/* gate - the re-injection listener's verify-only mode; see gate.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "reinject.h"
#include "util.h"

#define GATE_BUCKETS 4096

struct seen {
	char mac[65];
	long long expires;
	struct seen *next;
};

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen *buckets[GATE_BUCKETS];
static size_t nseen;
static time_t gate_started;

void
gate_setup(time_t started)
{
	gate_started = started;
}

void
gate_release(void)
{
	pthread_mutex_lock(&gate_lock);
	for (size_t i = 0; i < GATE_BUCKETS; i++)
		while (buckets[i] != NULL) {
			struct seen *s = buckets[i];

			buckets[i] = s->next;
			free(s);
		}
	nseen = 0;
	pthread_mutex_unlock(&gate_lock);
}

/* Drop the expired entries of one bucket. */
static void
bucket_expire(struct seen **b, long long now)
{
	while (*b != NULL) {
		if ((*b)->expires < now) {
			struct seen *s = *b;

			*b = s->next;
			free(s);
			nseen--;
		} else {
			b = &(*b)->next;
		}
	}
}

/* Record a marker's MAC until t + lifetime; was it there already, or is the memory full? */
static enum gate_seen
seen_add(const struct reinject_stamp *st, long lifetime, long long now)
{
	unsigned long h = 0;
	struct seen **b, *s;
	enum gate_seen r = GATE_NEW;

	/* The MAC is uniform: its first characters are hash enough. */
	for (size_t i = 0; i < 8; i++)
		h = h * 16 + (unsigned long)(st->mac[i] <= '9' ? st->mac[i] - '0' : st->mac[i] - 'a' + 10);
	b = &buckets[h % GATE_BUCKETS];
	pthread_mutex_lock(&gate_lock);
	bucket_expire(b, now);
	for (s = *b; s != NULL; s = s->next)
		if (strcmp(s->mac, st->mac) == 0)
			r = GATE_SEEN_BEFORE;
	if (r == GATE_NEW && nseen >= GATE_SEEN_MAX)
		for (size_t i = 0; i < GATE_BUCKETS; i++)
			bucket_expire(&buckets[i], now);
	if (r == GATE_NEW && nseen >= GATE_SEEN_MAX)
		r = GATE_FULL;
	if (r == GATE_NEW) {
		s = xcalloc(1, sizeof(*s));
		memcpy(s->mac, st->mac, sizeof(s->mac));
		s->expires = st->t + lifetime;
		s->next = *b;
		*b = s;
		nseen++;
	}
	pthread_mutex_unlock(&gate_lock);
	return r;
}

enum gate_seen
gate_remember(const struct reinject_stamp *st, long lifetime, time_t now, const char **why)
{
	enum gate_seen r;

	if (st->t < (long long)gate_started) {
		*why = "the marker was made before cables-milter started";
		return GATE_SEEN_BEFORE;
	}
	r = seen_add(st, lifetime, (long long)now);
	*why = r == GATE_SEEN_BEFORE ? "the marker has been used before (a replayed copy)" :
	    r == GATE_FULL ? "too many copies in flight to remember another" : NULL;
	return r;
}

/* Why m's marker does not let it pass, or NULL when it verifies (*stamp set). */
static const char *
marker_problem(const struct message *m, const struct milter_env *env, struct reinject_stamp *stamp)
{
	const char **rcpts;
	struct reinject_received r;
	bool ok;

	if (m->outer[OUTER_MARKER] == 0)
		return "no marker";
	if (m->outer[OUTER_MARKER] > 1)
		return "more than one marker";
	if (env->marker_key == NULL)
		return "no ReinjectKey to check the marker";
	if (m->body_status != CABLES_OK)
		return "the message could not be read";
	rcpts = xcalloc(m->nrcpts + 1, sizeof(*rcpts));
	for (size_t i = 0; i < m->nrcpts; i++)
		rcpts[i] = m->rcpts[i].addr;
	r.sender = m->sender;
	r.rcpts = rcpts;
	r.nrcpts = m->nrcpts;
	r.headers = m->headers;
	r.body = m->body;
	ok = reinject_marker_verify(env->marker_key, m->marker, env->now, REINJECT_GATE_WINDOW, &r, stamp);
	free(rcpts);
	if (!ok)
		return "the marker does not verify (forged, stale, or for another sender, recipients, header or body)";
	return NULL;
}

void
gate_check(const struct message *m, const struct milter_env *env, struct outcome *out)
{
	struct reinject_stamp stamp;
	const char *why = marker_problem(m, env, &stamp);

	if (why == NULL) {
		switch (gate_remember(&stamp, REINJECT_GATE_WINDOW, env->now, &why)) {
		case GATE_NEW:
			outcome_set(out, VERDICT_ACCEPT, "pass", "re-injection: a copy made by Cables");
			outcome_classify(out, CLASS_OWN_COPY, NULL);
			return;
		case GATE_FULL:
			outcome_set(out, VERDICT_TEMPFAIL, "tempfail", "re-injection: %s", why);
			outcome_reply(out, "451", "4.3.2", "Cables: too many copies in flight, try again");
			return;
		case GATE_SEEN_BEFORE:
			break;
		}
	}
	outcome_set(out, VERDICT_REJECT, "reject", "re-injection: %s", why);
	outcome_reply(out, "550", "5.7.1", "Cables: only copies made by Cables are taken on this port");
}
