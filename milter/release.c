/* release - the milter's release thread for held messages; see release.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "held.h"
#include "hold.h"
#include "keystore.h"
#include "log.h"
#include "milter.h"
#include "release.h"

/*
 * Records acted on side by side: each is a sendmail(1) process that mostly
 * waits for Postfix.  Two, as keyd's look used to release (bench/hold):
 * one released a quarter slower.
 */
#define RELEASE_WORKERS 2

static struct {
	struct keystore *ks;
	struct hold_keysrc keys;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool running, stopping;
	char hostname[256];
} rel = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

/* One pass over the due records with an action, shared by the workers. */
struct pass {
	struct held_env env;
	struct held_record *due;
	size_t n;
	atomic_size_t next;
};

static void *
work(void *arg)
{
	struct pass *p = arg;
	struct held_result res;
	struct cables_err err;
	cables_status st;
	size_t i;

	while (!rel.stopping && (i = atomic_fetch_add(&p->next, 1)) < p->n) {
		const struct held_record *h = &p->due[i];

		/* The time of this act: after slow ones, claims and backoffs must not be written from the pass's start. */
		st = held_act_due(&p->env, h->id, time(NULL), &res, &err);
		if (st == CABLES_ERR_NOTFOUND || (st == CABLES_OK && res.outcome == HELD_TAKEN))
			continue;	/* another milter took it, or it was held again meanwhile */
		if (st != CABLES_OK)
			log_warnx("%s: held %s: %s", h->queue_id, h->id, err.msg);
		else if (res.outcome == HELD_FAILED)
			log_warnx("%s: held %s: %s: %s (tried again later)", h->queue_id, h->id,
			    held_outcome_name(res.outcome), res.detail);
		else
			log_info("%s: held %s: %s: %s", h->queue_id, h->id, held_outcome_name(res.outcome), res.detail);
	}
	return NULL;
}

/* Act on every due record with an action; records of other milters' claims are left to them. */
static void
act_once(void)
{
	void *ref;
	const struct config *cfg = milter_config_get(&ref);
	/* A message the milter takes is at most MaxMessageSize; the seal adds a few dozen bytes. */
	struct pass p = { { rel.ks, cfg->mail_command, rel.hostname, (long long)(cfg->hold_time_ms / 1000), NULL, NULL,
	    hold_message_key, &rel.keys, cfg->max_message_size != 0 ? cfg->max_message_size + 4096 : 0 }, NULL, 0, 0 };
	pthread_t workers[RELEASE_WORKERS];
	size_t started = 0;
	struct cables_err err;

	if (keystore_held_list(rel.ks, HELD_DUE_ACTIONS, time(NULL), &p.due, &p.n, &err) != CABLES_OK) {
		log_warnx("held messages: %s", err.msg);
		milter_config_put(ref);
		return;
	}
	/* A worker that cannot start is no loss: the others, or this thread, take its share. */
	for (size_t i = 1; i < RELEASE_WORKERS && p.n > i; i++)
		if (pthread_create(&workers[started], NULL, work, &p) == 0)
			started++;
	work(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	held_list_release(p.due, p.n);
	milter_config_put(ref);
}

static void *
run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&rel.lock);
	while (!rel.stopping) {
		struct timespec until;

		pthread_mutex_unlock(&rel.lock);
		act_once();
		pthread_mutex_lock(&rel.lock);
		/* Once a second, as keyd looks: a handed-over record goes out within about two. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		while (!rel.stopping)
			if (pthread_cond_timedwait(&rel.wake, &rel.lock, &until) != 0)
				break;
	}
	pthread_mutex_unlock(&rel.lock);
	return NULL;
}

cables_status
release_start(const struct config *cfg, const struct kh_transport *keyholder, struct cables_err *err)
{
	cables_status st;
	int rc;

	if ((st = keystore_open(&rel.ks, cfg->key_store, false, err)) != CABLES_OK)
		return st;
	rel.keys.keyholder = keyholder;
	rel.keys.seal_key = NULL;
	if (gethostname(rel.hostname, sizeof(rel.hostname) - 1) != 0 || rel.hostname[0] == '\0')
		snprintf(rel.hostname, sizeof(rel.hostname), "localhost");
	rel.stopping = false;
	if ((rc = pthread_create(&rel.thread, NULL, run, NULL)) != 0) {
		keystore_close(rel.ks);
		rel.ks = NULL;
		return cables_fail(err, CABLES_ERR_INTERNAL, "held messages: cannot start the release thread: %s",
		    strerror(rc));
	}
	rel.running = true;
	return CABLES_OK;
}

void
release_stop(void)
{
	if (!rel.running)
		return;
	pthread_mutex_lock(&rel.lock);
	rel.stopping = true;
	pthread_cond_signal(&rel.wake);
	pthread_mutex_unlock(&rel.lock);
	pthread_join(rel.thread, NULL);
	keystore_close(rel.ks);
	rel.ks = NULL;
	rel.running = false;
}
