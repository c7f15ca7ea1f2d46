/* batch - the lookups of one request, side by side; see batch.h. */
#include "autoconfig.h"

#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "batch.h"
#include "keydproto.h"

enum lookup_state { WAITING, RUNNING, DONE };

/* Shared by the request's thread and its workers; the last one out frees it. */
struct batch {
	pthread_mutex_t lock;	/* everything below */
	pthread_cond_t changed;	/* a lookup finished */
	batch_lookup_fn *lookup;
	void *arg;
	char **addrs;
	size_t n;
	size_t *domain;		/* per address: the index of the first address of its domain */
	unsigned int *busy;	/* per such index: lookups of that domain running */
	long long *progress;	/* per such index: when a lookup of that domain last finished, or 0 */
	enum lookup_state *state;
	struct buf *outs;	/* per address: its reply lines, read once DONE */
	size_t ndone, first_waiting;
	unsigned int refs;
	long long deadline;	/* monotonic_ms() */
};

static const char *
domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : addr;
}

static size_t
domain_hash(const char *d)
{
	size_t h = 5381;

	for (; *d != '\0'; d++)
		h = h * 33 + (unsigned char)tolower((unsigned char)*d);
	return h;
}

/* b->domain: addresses of one domain (case-insensitive) share the index of the first. */
static void
group_domains(struct batch *b)
{
	size_t room = 2 * b->n + 1, *table = xcalloc(room, sizeof(*table));	/* index + 1, 0: empty */

	for (size_t i = 0; i < b->n; i++) {
		const char *d = domain_of(b->addrs[i]);
		size_t s = domain_hash(d) % room;

		while (table[s] != 0 && strcasecmp(domain_of(b->addrs[table[s] - 1]), d) != 0)
			s = (s + 1) % room;
		if (table[s] == 0)
			table[s] = i + 1;
		b->domain[i] = table[s] - 1;
	}
	free(table);
}

static struct batch *
batch_new(batch_lookup_fn *lookup, void *arg, const char *const *addrs, size_t n, unsigned long deadline_ms)
{
	struct batch *b = xcalloc(1, sizeof(*b));
	pthread_condattr_t ca;

	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->changed, &ca);
	pthread_condattr_destroy(&ca);
	b->lookup = lookup;
	b->arg = arg;
	b->n = n;
	b->addrs = xcalloc(n + 1, sizeof(*b->addrs));
	for (size_t i = 0; i < n; i++)
		b->addrs[i] = xstrdup(addrs[i]);
	b->domain = xcalloc(n + 1, sizeof(*b->domain));
	b->busy = xcalloc(n + 1, sizeof(*b->busy));
	b->progress = xcalloc(n + 1, sizeof(*b->progress));
	b->state = xcalloc(n + 1, sizeof(*b->state));
	b->outs = xcalloc(n + 1, sizeof(*b->outs));
	for (size_t i = 0; i < n; i++)
		buf_init(&b->outs[i]);
	group_domains(b);
	b->deadline = monotonic_ms() + (long long)deadline_ms;
	return b;
}

/* Drop a reference (b->lock held, released here); the last one frees. */
static void
batch_drop(struct batch *b)
{
	bool last = --b->refs == 0;

	pthread_mutex_unlock(&b->lock);
	if (!last)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->addrs[i]);
		buf_release(&b->outs[i]);
	}
	free(b->addrs);
	free(b->domain);
	free(b->busy);
	free(b->progress);
	free(b->state);
	free(b->outs);
	pthread_cond_destroy(&b->changed);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* Wait (b->lock held) for a change, at most until the deadline; false when it has passed. */
static bool
batch_wait(struct batch *b)
{
	struct timespec until;

	if (monotonic_ms() >= b->deadline)
		return false;
	until.tv_sec = (time_t)(b->deadline / 1000);
	until.tv_nsec = (long)(b->deadline % 1000) * 1000000L;
	pthread_cond_timedwait(&b->changed, &b->lock, &until);
	return monotonic_ms() < b->deadline;
}

/*
 * The next address to look up (b->lock held): the first waiting one whose
 * domain may have another lookup.  A domain whose lookups finish (one did
 * within BATCH_SLOW_MS) may have any number; one whose lookups do not
 * (a server that drops queries) at most BATCH_PER_DOMAIN.
 */
static size_t
batch_pick(struct batch *b, bool *waiting)
{
	long long now = monotonic_ms();

	*waiting = false;
	while (b->first_waiting < b->n && b->state[b->first_waiting] != WAITING)
		b->first_waiting++;
	for (size_t i = b->first_waiting; i < b->n; i++) {
		if (b->state[i] != WAITING)
			continue;
		*waiting = true;
		if (b->busy[b->domain[i]] < BATCH_PER_DOMAIN || now - b->progress[b->domain[i]] < BATCH_SLOW_MS)
			return i;
	}
	return SIZE_MAX;
}

static void *
batch_worker(void *arg)
{
	struct batch *b = arg;

	pthread_mutex_lock(&b->lock);
	while (monotonic_ms() < b->deadline) {
		bool waiting;
		size_t i = batch_pick(b, &waiting);

		if (i == SIZE_MAX) {
			if (!waiting || !batch_wait(b))
				break;
			continue;
		}
		b->state[i] = RUNNING;
		b->busy[b->domain[i]]++;
		pthread_mutex_unlock(&b->lock);
		b->lookup(b->arg, b->addrs[i], (const char *const *)b->addrs, b->n, &b->outs[i]);
		pthread_mutex_lock(&b->lock);
		b->busy[b->domain[i]]--;
		b->progress[b->domain[i]] = monotonic_ms();
		b->state[i] = DONE;
		b->ndone++;
		pthread_cond_broadcast(&b->changed);
	}
	batch_drop(b);
	return NULL;
}

size_t
batch_run(batch_lookup_fn *lookup, void *arg, const char *const *addrs, size_t n, unsigned long deadline_ms,
    struct buf *out)
{
	struct batch *b = batch_new(lookup, arg, addrs, n, deadline_ms);
	size_t workers = n < BATCH_WORKERS ? n : BATCH_WORKERS, started = 0, late = 0;

	b->refs = 1;
	for (size_t w = 0; w < workers; w++) {
		pthread_t tid;

		pthread_mutex_lock(&b->lock);
		b->refs++;
		pthread_mutex_unlock(&b->lock);
		if (pthread_create(&tid, NULL, batch_worker, b) != 0) {
			pthread_mutex_lock(&b->lock);
			b->refs--;
			pthread_mutex_unlock(&b->lock);
			break;
		}
		pthread_detach(tid);
		started++;
	}
	if (started == 0 && n > 0) {
		/* No thread to be had: this one does the lookups, one after another, until the deadline. */
		pthread_mutex_lock(&b->lock);
		b->refs++;
		pthread_mutex_unlock(&b->lock);
		batch_worker(b);
	}
	pthread_mutex_lock(&b->lock);
	while (b->ndone < b->n && batch_wait(b))
		;
	for (size_t i = 0; i < b->n; i++) {
		if (b->state[i] == DONE) {
			buf_append(out, b->outs[i].data, b->outs[i].len);
		} else {
			keyd_result_format(out, b->addrs[i], KEYD_OUTCOME_TEMPFAIL, b->state[i] == WAITING ?
			    "the lookup did not finish within LookupTimeout (not begun in time)" :
			    "the lookup did not finish within LookupTimeout");
			late++;
		}
	}
	batch_drop(b);
	return late;
}
