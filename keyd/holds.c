/* holds - keyd's look at held messages; see holds.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "held.h"
#include "holds.h"
#include "keyd_private.h"
#include "keydproto.h"
#include "log.h"
#include "metrics.h"

/* Released records are kept this long, so that the resubmitted copy still finds its record (hold.h). */
#define RELEASED_KEPT (24 * 3600)

static struct {
	struct keyd *k;
	struct keystore *ks;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running, stopping, woken;
	char hostname[256];
} holds = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static atomic_ulong n_released, n_returned, n_failed, n_waiting;

/* keyd's own lookup, as the key check of held_try(). */
static bool
has_key(void *arg, const char *addr, char *why, size_t why_len)
{
	struct keyd *k = arg;
	struct keyd_conf *c = keyd_conf_get(k);
	enum key_format want = (enum key_format)policy_get(&c->cfg->policy, addr, PA_FORMAT, NULL);
	struct keyd_lookup_reply reply = { NULL, 0 };
	struct buf out;
	struct cables_err err;
	time_t now = time(NULL);
	bool found = false;

	buf_init(&out);
	keyd_lookup(k, addr, &addr, 1, now, &out);
	if (keyd_lookup_reply_parse(out.data, out.len, &reply, &err) != CABLES_OK)
		snprintf(why, why_len, "%s", err.msg);
	else
		found = held_reply_has_key(&reply, want, now, why, why_len);
	keyd_lookup_reply_release(&reply);
	buf_release(&out);
	keyd_conf_put(k, c);
	return found;
}

/*
 * Records looked at side by side: each look is lookups (DNS, peers) and
 * maybe a held notice (a sendmail(1) process that mostly waits for
 * Postfix).  Four took a third of the milter's throughput for mail that
 * was never held (bench/hold).
 */
#define HOLDS_WORKERS 2

/* One pass over the due records, shared by the workers. */
struct pass {
	struct held_env env;
	struct held_record *due;
	size_t n;
	atomic_size_t next;
	time_t now;
};

static void *
work(void *arg)
{
	struct pass *p = arg;
	struct held_result res;
	struct cables_err err;
	cables_status st;
	size_t i;

	while (!holds.stopping && (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		const struct held_record *h = &p->due[i];

		/* The time of this look: a pass of slow lookups must not write claims and backoffs from its start. */
		st = held_try_due(&p->env, h->id, time(NULL), &res, &err);
		/* Another keyd on the store (or keyctl held) took it, released or returned it meanwhile. */
		if (st == CABLES_ERR_NOTFOUND || (st == CABLES_OK && res.outcome == HELD_TAKEN))
			continue;
		if (st != CABLES_OK) {
			log_warnx("%s: held %s: %s", h->queue_id, h->id, err.msg);
			atomic_fetch_add(&n_failed, 1);
			continue;
		}
		/* keyd only hands the message to the milter (held.h): it never reads it. */
		if (res.outcome == HELD_TO_RELEASE)
			atomic_fetch_add(&n_released, 1);
		else if (res.outcome == HELD_TO_RETURN)
			atomic_fetch_add(&n_returned, 1);
		/* Every look is logged: with the backoff, at most one line per record every 10 minutes. */
		log_info("%s: held %s: %s: %s", h->queue_id, h->id, held_outcome_name(res.outcome), res.detail);
	}
	return NULL;
}

static void
look_once(void)
{
	struct keyd_conf *c = keyd_conf_get(holds.k);
	struct pass p = { { holds.ks, c->cfg->mail_command, holds.hostname, (long long)(c->cfg->hold_time_ms / 1000),
	    has_key, holds.k, NULL, NULL, 0 }, NULL, 0, 0, time(NULL) };
	pthread_t workers[HOLDS_WORKERS];
	size_t started = 0, all = 0;
	struct held_record *list;
	struct cables_err err;

	if (keystore_held_list(holds.ks, HELD_DUE, p.now, &p.due, &p.n, &err) != CABLES_OK) {
		log_warnx("held messages: %s", err.msg);
		keyd_conf_put(holds.k, c);
		return;
	}
	/* A worker that cannot start is no loss: the others, or this thread, take its share. */
	for (size_t i = 1; i < HOLDS_WORKERS && p.n > i; i++)
		if (pthread_create(&workers[started], NULL, work, &p) == 0)
			started++;
	work(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	held_list_release(p.due, p.n);
	keystore_held_prune(holds.ks, p.now - RELEASED_KEPT, NULL);
	if (keystore_held_list(holds.ks, HELD_ALL, p.now, &list, &all, NULL) == CABLES_OK)
		held_list_release(list, all);
	atomic_store(&n_waiting, all);
	keyd_conf_put(holds.k, c);
}

static void *
run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&holds.lock);
	while (!holds.stopping) {
		struct timespec until;

		pthread_mutex_unlock(&holds.lock);
		look_once();
		pthread_mutex_lock(&holds.lock);
		/* Once a second: a record's next_try is in seconds, and a new one is due at once. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!holds.stopping && !holds.woken)
			if (pthread_cond_timedwait(&holds.wake, &holds.lock, &until) != 0)
				break;
		holds.woken = false;
	}
	pthread_mutex_unlock(&holds.lock);
	return NULL;
}

cables_status
holds_start(struct keyd *k, struct keystore *ks, struct cables_err *err)
{
	int rc;

	holds.k = k;
	holds.ks = ks;
	if (gethostname(holds.hostname, sizeof(holds.hostname) - 1) != 0 || holds.hostname[0] == '\0')
		snprintf(holds.hostname, sizeof(holds.hostname), "localhost");
	holds.stopping = false;
	if ((rc = pthread_create(&holds.thread, NULL, run, NULL)) != 0)
		return cables_fail(err, CABLES_ERR_INTERNAL, "held messages: cannot start a thread: %s", strerror(rc));
	holds.running = true;
	return CABLES_OK;
}

void
holds_stop(void)
{
	if (!holds.running)
		return;
	pthread_mutex_lock(&holds.lock);
	holds.stopping = true;
	pthread_cond_signal(&holds.wake);
	pthread_mutex_unlock(&holds.lock);
	pthread_join(holds.thread, NULL);
	holds.running = false;
}

void
holds_wake(void)
{
	pthread_mutex_lock(&holds.lock);
	holds.woken = true;
	pthread_cond_signal(&holds.wake);
	pthread_mutex_unlock(&holds.lock);
}

void
holds_stats(struct buf *out)
{
	buf_printf(out, "held_waiting=%lu\nheld_released=%lu\nheld_returned=%lu\nheld_failed=%lu\n",
	    atomic_load(&n_waiting), atomic_load(&n_released), atomic_load(&n_returned), atomic_load(&n_failed));
}

void
holds_metrics(struct buf *out)
{
	metric_family(out, "cables_keyd_held_messages", "gauge",
	    "Messages held for encryption keys (On-KeyNotFound hold), as of keyd's last look.");
	metric_sample(out, "cables_keyd_held_messages", "", atomic_load(&n_waiting));
	metric_family(out, "cables_keyd_held_total", "counter",
	    "Held messages cables-keyd found every key for (released: handed to cables-milter, which resubmits "
	    "them) or whose HoldTime passed (returned: cables-milter sends them back), and failed looks.");
	metric_sample(out, "cables_keyd_held_total", "outcome=\"released\"", atomic_load(&n_released));
	metric_sample(out, "cables_keyd_held_total", "outcome=\"returned\"", atomic_load(&n_returned));
	metric_sample(out, "cables_keyd_held_total", "outcome=\"failed\"", atomic_load(&n_failed));
}
