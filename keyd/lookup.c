/*
 * lookup - the answers of cables-keyd (lookup.h): from the store (keys held
 * locally, fresh discovered ones), else from the caches and flights
 * (cache.c), else from the discovery sources (sources.c), and only when
 * those found none from a pinned harvested certificate.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "addr.h"
#include "keydproto.h"
#include "keydstats.h"
#include "khproto.h"
#include "log.h"
#include "lookup.h"
#include "metrics.h"
#include "peer.h"
#include "policy.h"
#include "smime.h"
#include "keyd_private.h"

/* How often a marked domain is looked up again in the background (unresponsive_retest_due). */
#define RETEST_EVERY_S 60

static struct keyd_conf *
conf_new(struct config *cfg, struct dns_resolver *res, X509_STORE *anchors)
{
	struct keyd_conf *c = xcalloc(1, sizeof(*c));

	c->cfg = cfg;
	c->res = res;
	c->anchors = anchors;
	c->refs = 1;
	return c;
}

/* Drop a reference (k->lock held); the last one frees. */
static void
conf_drop(struct keyd_conf *c)
{
	if (--c->refs > 0)
		return;
	dns_resolver_free(c->res);
	X509_STORE_free(c->anchors);
	config_free(c->cfg);
	free(c);
}

struct keyd_conf *
keyd_conf_get(struct keyd *k)
{
	struct keyd_conf *c;

	pthread_mutex_lock(&k->lock);
	c = k->conf;
	c->refs++;
	pthread_mutex_unlock(&k->lock);
	return c;
}

void
keyd_conf_put(struct keyd *k, struct keyd_conf *c)
{
	pthread_mutex_lock(&k->lock);
	conf_drop(c);
	pthread_mutex_unlock(&k->lock);
}

/* The default probe (keyd_set_probe()): the resolver's, dns.h. */
static bool
probe_dns(struct keyd_conf *c, const char *zone, unsigned int timeout_ms, char *why, size_t why_len)
{
	return dns_probe(c->res, zone, timeout_ms, why, why_len);
}

/* The default TXT lookup (keyd_set_txt()): the resolver's. */
static cables_status
txt_dns(struct keyd_conf *c, const char *name, time_t now, unsigned int timeout_ms, struct dns_answer *out,
    struct cables_err *err)
{
	return dns_lookup_name(c->res, name, DNS_RR_TXT, now, timeout_ms, out, err);
}

struct keyd *
keyd_new(struct config *cfg, struct keystore *ks, struct dns_resolver *res, X509_STORE *anchors, const char *gpg_home)
{
	struct keyd *k = xcalloc(1, sizeof(*k));

	k->conf = conf_new(cfg, res, anchors);
	k->ks = ks;
	k->gpg_home = gpg_home;
	k->certs = smime_cache_new(4096);
	k->sources = discovery_sources;
	k->nsources = discovery_nsources;
	k->probe = probe_dns;
	k->txt = txt_dns;
	k->retest_every_s = RETEST_EVERY_S;
	k->probe_sent_ms = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_mutex_init(&k->probe_lock, NULL);
	pthread_mutex_init(&k->gpg_lock, NULL);
	pthread_mutex_init(&k->pin_lock, NULL);
	pthread_cond_init(&k->landed, NULL);
	return k;
}

void
keyd_free(struct keyd *k)
{
	if (k == NULL)
		return;
	keyd_wait_retests(k);
	keyd_cache_clear(k);
	conf_drop(k->conf);
	smime_cache_free(k->certs);
	pthread_cond_destroy(&k->landed);
	pthread_mutex_destroy(&k->gpg_lock);
	pthread_mutex_destroy(&k->pin_lock);
	pthread_mutex_destroy(&k->probe_lock);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void
keyd_reconfigure(struct keyd *k, struct config *cfg, struct dns_resolver *res, X509_STORE *anchors)
{
	pthread_mutex_lock(&k->lock);
	conf_drop(k->conf);
	k->conf = conf_new(cfg, res, anchors);
	/* What was cached was judged under the old rules (DNSSEC mode, anchors, TTL bounds). */
	keyd_cache_clear(k);
	pthread_mutex_unlock(&k->lock);
}


bool
keyd_record_usable(const struct key_record *r, const struct addr_opts *ao, struct smime_cache *certs, time_t now,
    char *why, size_t why_len)
{
	struct cables_err err;
	X509 *cert;
	bool ok;

	if (strcmp(r->format, "pgp") == 0) {
		if (r->not_after > (long long)now)
			return true;
		snprintf(why, why_len, "expired");
		return false;
	}
	cert = smime_cache_cert(certs, r->public_data, r->public_len);
	ok = cert != NULL && smime_cert_check(cert, r->address, ao, now, &err) == CABLES_OK;
	if (!ok)
		snprintf(why, why_len, "%s", cert == NULL ? "stored certificate cannot be decoded" : err.msg);
	X509_free(cert);
	return ok;
}

/* A lookup's result= line, counted (keydstats.h). */
static void
answer(struct buf *out, const char *addr, enum keyd_outcome o, const char *reason)
{
	keydstats_lookup(o);
	keyd_result_format(out, addr, o, reason);
}

/*
 * A lookup's result= line without keys: with encrypting= when norm's
 * domain must not get plaintext (downgrade.c).
 */
static void
answer_keyless(struct keyd *k, struct keyd_conf *c, struct buf *out, const char *norm, enum keyd_outcome o,
    const char *reason, time_t now)
{
	long long since;
	bool failed;
	struct cables_err why;
	enum keyd_encrypting e = keyd_downgrade_check(k, c, norm, o, reason, now, &since, &failed, &why);

	if (failed) {
		/* No key, and no telling whether the domain requires encryption: the MTA asks again. */
		o = KEYD_OUTCOME_TEMPFAIL;
		reason = why.msg;
	}
	keydstats_lookup(o);
	keyd_result_encrypting_format(out, norm, o, e, since, reason);
}

/*
 * Append r's "key=" line (keydproto.h) to out, counted (keydstats.h) when
 * it goes into an answer; false for a row whose format or source keyd does
 * not know.
 */
static bool
key_line(const char *norm, const struct key_record *r, bool answer, struct buf *out)
{
	struct keyd_key key;

	memset(&key, 0, sizeof(key));
	if (!keyd_format_parse(r->format, &key.format) || !keyd_source_parse(r->source, &key.source))
		return false;
	strlcpy_c(key.address, norm, sizeof(key.address));
	key.trust = keyd_trust_of(key.source);
	strlcpy_c(key.fingerprint, r->fingerprint, sizeof(key.fingerprint));
	key.expires = r->not_after;
	keyd_key_format(out, &key);
	if (answer)
		keydstats_key(key.source, key.trust);
	return true;
}

/* Is r the pinned key of its address and format?  *failed (err) when the store could not say. */
static bool
pinned(struct keyd *k, const char *norm, const struct key_record *r, bool *failed, struct cables_err *err)
{
	struct key_pin p;
	cables_status st;
	bool is;

	if ((st = keystore_pin_get(k->ks, norm, r->format, &p, err)) != CABLES_OK) {
		*failed |= st != CABLES_ERR_NOTFOUND;
		return false;
	}
	is = strcmp(p.fingerprint, r->fingerprint) == 0;
	key_pin_release(&p);
	return is;
}

/*
 * Which store rows an answer is made of: keys held locally (imported,
 * generated) and discovered keys while fresh, or else (discovery found
 * none) the pinned harvested certificate.
 */
enum store_rank { STORE_HELD, STORE_HARVESTED };

/*
 * What store_keys() wrote is a lookup's answer: its keys are counted
 * (keydstats.h), and discovered says whether one came from a discovery
 * (a positive cache hit when no discovery ran for this lookup).
 */
struct answered {
	bool discovered;
	bool store_failed;	/* the key store did not answer (PostgreSQL down) */
	char why[CABLES_ERR_MAX];
	const char *proof;	/* a key's source that proves its domain encrypts (downgrade.c), or NULL */
};

/*
 * The epoch key of norm that the key server gave with the long-term key
 * just answered, as a "key=" line with source peer-epoch: only if the same
 * discovery confirmed it (last_seen since then) and it is usable now.  The
 * milter encrypts to it alone as ForwardSecrecy says.
 */
static size_t
peer_epoch_line(struct keyd *k, struct keyd_conf *c, const char *norm, time_t since, time_t now, struct buf *out)
{
	struct key_list keys;
	size_t n = 0;
	bool done[2] = { false, false };	/* one S/MIME, one OpenPGP epoch key */

	if (keystore_epoch_list(k->ks, norm, true, &keys, NULL) != CABLES_OK)
		return 0;
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		size_t f = strcmp(r->format, "pgp") == 0;
		char why[CABLES_ERR_MAX];

		if (!done[f] && strcmp(r->source, KEYSTORE_PEER_EPOCH_SOURCE) == 0 && r->last_seen >= (long long)since &&
		    keyd_record_usable(r, &c->cfg->addr, k->certs, now, why, sizeof(why)) &&
		    key_line(norm, r, false, out)) {
			done[f] = true;
			n++;
		}
	}
	key_list_release(&keys);
	return n;
}

/*
 * The usable keys of norm in the store of rank, as "key=" lines; keys from
 * DNS only while their TTL lasts, a harvested one only while pinned.
 * answer: NULL when the lines are not handed out (request=check).
 */
static size_t
store_keys(struct keyd *k, struct keyd_conf *c, const char *norm, enum store_rank rank, time_t now,
    struct buf *out, struct answered *answer)
{
	struct key_list keys;
	struct cables_err err = { "" };
	size_t n = 0;
	int fresh = -1;
	time_t since = 0;
	bool peer_answered = false, pin_failed = false;

	if (keystore_lookup(k->ks, norm, NULL, &keys, &err) != CABLES_OK) {
		if (answer != NULL) {
			answer->store_failed = true;
			strlcpy_c(answer->why, err.msg, sizeof(answer->why));
		}
		return 0;
	}
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		bool discovered = key_source_discovered(r->source);
		bool harvested = strcmp(r->source, "harvested") == 0;
		char why[CABLES_ERR_MAX];

		if (harvested != (rank == STORE_HARVESTED) || (harvested && !pinned(k, norm, r, &pin_failed, &err)))
			continue;
		if (discovered && fresh < 0)
			fresh = keyd_cache_fresh(k, norm, now, &since);
		/* A discovered key only while fresh, and only if the last discovery confirmed it. */
		if ((discovered && (fresh == 0 || r->last_seen < (long long)since)) ||
		    !keyd_record_usable(r, &c->cfg->addr, k->certs, now, why, sizeof(why)))
			continue;
		if (!key_line(norm, r, answer != NULL, out))
			continue;
		if (discovered && answer != NULL)
			answer->discovered = true;
		if (answer != NULL && answer->proof == NULL && keyd_source_proves_encrypting(r->source))
			answer->proof = keyd_source_proves_encrypting_name(r->source);
		peer_answered |= strcmp(r->source, "peer") == 0;
		n++;
	}
	key_list_release(&keys);
	if (pin_failed && n == 0 && answer != NULL) {
		answer->store_failed = true;
		strlcpy_c(answer->why, err.msg, sizeof(answer->why));
	}
	if (peer_answered)
		n += peer_epoch_line(k, c, norm, since, now, out);
	return n;
}

void
keyd_note_answered(struct discovery *d)
{
	d->answered = true;
	pthread_mutex_lock(&d->k->lock);
	unresponsive_answered(&d->k->unresponsive, strrchr(d->norm, '@') + 1, time(NULL), monotonic_ms());
	pthread_mutex_unlock(&d->k->lock);
}

/*
 * Condition 2 of a strike (unresponsive.h): did the resolver answer a query
 * that no cache could answer, sent after since_ms (when a query of d's
 * timed out)?  If so, *answered_ms says when.  One probe at a time; a
 * lookup whose query timed out before a probe was sent takes its outcome
 * (many dead domains cost a probe per round, not one each).  The probe
 * asks under the domain that answered last (a zone of its own, reached
 * the way d's would be), else the root.
 */
bool
keyd_resolver_answers(struct discovery *d, long long since_ms, long long *answered_ms, char *why, size_t why_len)
{
	struct keyd *k = d->k;
	char zone[UNRESPONSIVE_DOMAIN_MAX] = "";
	bool alive;

	pthread_mutex_lock(&k->probe_lock);
	if (k->probe_sent_ms <= since_ms) {
		pthread_mutex_lock(&k->lock);
		(void)unresponsive_other(&k->unresponsive, strrchr(d->norm, '@') + 1, zone, sizeof(zone));
		pthread_mutex_unlock(&k->lock);
		k->probe_sent_ms = monotonic_ms();
		k->probe_alive = k->probe(d->c, zone, (unsigned int)d->c->cfg->lookup_timeout_ms, k->probe_why,
		    sizeof(k->probe_why));
		k->probe_answered_ms = monotonic_ms();
		keyd_sanitize(k->probe_why);
		keyd_count(k, &k->probes);
	}
	alive = k->probe_alive;
	*answered_ms = k->probe_answered_ms;
	strlcpy_c(why, k->probe_why, why_len);
	pthread_mutex_unlock(&k->probe_lock);
	return alive;
}

/*
 * What a lookup that got no DNS answer says about its domain's servers
 * (unresponsive.h): a strike against the domain (the second marks it for
 * UnresponsiveTime) when no query for its names got an answer since this
 * lookup began, here or in another lookup there (condition 1:
 * source_dns() keeps every answer as it comes, and clears the mark), and
 * when a query of this lookup asked after the resolver answered a fresh
 * query for another zone timed out all the same (condition 2:
 * source_dns() probes at the first timeout).  A resolver that stalled for
 * a while, or drops queries under load, answers no probe then, or answers
 * the domain's next query; a SERVFAIL neither marks nor spares (dns.h); a
 * lookup never begun marks nothing.
 */
static void
note_unanswered(struct keyd *k, struct keyd_conf *c, const struct discovery *d)
{
	const char *domain = strrchr(d->norm, '@') + 1;
	bool fresh = false;

	/* A key found another way (a Peer, a key server) says the domain is reachable where it counts. */
	if (d->answered || d->any || !d->unanswered || c->cfg->unresponsive_time_ms == 0)
		return;
	pthread_mutex_lock(&k->lock);
	if (d->silent_after_alive &&
	    unresponsive_silent_since(&k->unresponsive, domain, d->started_ms) == UNRESPONSIVE_SILENT)
		fresh = unresponsive_mark(&k->unresponsive, domain, time(NULL), c->cfg->unresponsive_time_ms / 1000,
		    UNRESPONSIVE_STRIKES, d->unanswered_why);
	else
		k->unresponsive.spared++;
	pthread_mutex_unlock(&k->lock);
	if (fresh)
		log_warnx("keyd: %s: its DNS servers do not answer (%s; the resolver does: %s): recipients there are "
		    "deferred at RCPT for %lu s (UnresponsiveTime)", domain, d->unanswered_why, d->alive_why,
		    c->cfg->unresponsive_time_ms / 1000);
}

/*
 * Ask the sources (k->sources, discovery_sources unless a test set others) for
 * the keys of norm; they store those that are trusted and usable.  When
 * none is, v gets the answer: tempfail, reject or none, and why.
 */
static void
discover(struct keyd *k, struct keyd_conf *c, const char *norm, const char *const *others, size_t nothers, time_t now,
    struct keyd_verdict *v)
{
	struct discovery d;

	memset(&d, 0, sizeof(d));
	d.k = k;
	d.c = c;
	d.norm = norm;
	d.others = others;
	d.nothers = nothers;
	d.now = now;
	d.started_ms = monotonic_ms();
	d.deadline = d.started_ms + (long long)c->cfg->lookup_timeout_ms;
	d.held.action = ACTION_ACCEPT;
	d.proven_none = d.cacheable = true;
	d.none_ttl = ~0UL;
	d.best = -1;
	for (size_t i = 0; i < k->nsources; i++)
		k->sources[i].lookup(&d);
	keyd_sanitize(d.reason);
	keyd_cache_remember(&d);
	note_unanswered(k, c, &d);
	v->found = d.any;
	if (!d.any && d.held.action != ACTION_ACCEPT) {
		keyd_sanitize(d.held.why);
		v->outcome = d.held.action == ACTION_REJECT ? KEYD_OUTCOME_REJECT : KEYD_OUTCOME_TEMPFAIL;
		v->key_change = true;
		snprintf(v->reason, sizeof(v->reason), "%s", d.held.why);
	} else {
		v->outcome = d.tempfail ? KEYD_OUTCOME_TEMPFAIL : KEYD_OUTCOME_NONE;
		v->key_change = false;
		snprintf(v->reason, sizeof(v->reason), "%s", d.reason);
	}
}

/*
 * Discovery found no key for norm (proven absence, an unsigned zone, no key
 * server, no WKD), now or in the negative cache: the pinned certificate
 * harvested from norm's signed mail, if any, is the answer (found).  Only
 * then: a key norm's domain publishes outranks anything learnt from mail,
 * and a failed discovery (bogus DNSSEC, no answer, a key server that
 * fails) stays a temporary failure.  Falling back there would let whoever
 * can break the answers on the path (strip signatures, drop packets) turn
 * a certificate they got harvested into the key of norm's mail; waiting
 * costs them nothing they could not cause anyway.
 */
static bool
harvested_keys(struct keyd *k, struct keyd_conf *c, const char *norm, time_t now, struct buf *out)
{
	struct answered harvested = { false };

	if (store_keys(k, c, norm, STORE_HARVESTED, now, out, &harvested) > 0) {
		keyd_count(k, &k->from_harvest);
		answer(out, norm, KEYD_OUTCOME_FOUND, NULL);
		return true;
	}
	if (!harvested.store_failed)
		return false;
	keyd_count(k, &k->tempfail);
	answer(out, norm, KEYD_OUTCOME_TEMPFAIL, harvested.why);
	return true;
}

void
keyd_lookup(struct keyd *k, const char *addr, const char *const *others, size_t nothers, time_t now, struct buf *out)
{
	struct keyd_conf *c = keyd_conf_get(k);
	char *norm = addr_normalize(addr, &c->cfg->addr);
	struct keyd_verdict v;
	struct timespec start;
	char why[sizeof(((struct neg_entry *)0)->reason)], cached[sizeof(why) + 16];
	struct flight *f;
	struct answered held = { false };

	clock_gettime(CLOCK_REALTIME, &start);
	keyd_count(k, &k->lookups);
	if (norm == NULL) {
		answer(out, addr, KEYD_OUTCOME_NONE, "not an address");
		goto out;
	}
	if (store_keys(k, c, norm, STORE_HELD, now, out, &held) > 0) {
		if (held.proof != NULL)
			keyd_downgrade_seen(k, c, norm, held.proof, now);
		keyd_count(k, &k->from_store);
		if (held.discovered)
			keydstats_cache_hit(true);
		answer(out, norm, KEYD_OUTCOME_FOUND, NULL);
		goto out;
	}
	/* A store that cannot say whether it holds a key is no "no key": never plaintext on its account. */
	if (held.store_failed) {
		keyd_count(k, &k->tempfail);
		answer(out, norm, KEYD_OUTCOME_TEMPFAIL, held.why);
		goto out;
	}
	pthread_mutex_lock(&k->lock);
	if (keyd_cache_none(k, norm, now, why, sizeof(why))) {
		k->negative_hits++;
		pthread_mutex_unlock(&k->lock);
		keydstats_cache_hit(false);
		if (harvested_keys(k, c, norm, now, out))
			goto out;
		keyd_count(k, &k->none);
		snprintf(cached, sizeof(cached), "%s (cached)", why);
		answer_keyless(k, c, out, norm, KEYD_OUTCOME_NONE, cached, now);
		goto out;
	}
	/* One DNS query per address at a time: later lookups wait for its outcome. */
	if ((f = keyd_flight_join(k, norm)) != NULL) {
		k->shared++;
		keyd_flight_wait(k, f, &start, c->cfg->lookup_timeout_ms);
	} else {
		f = keyd_flight_begin(k, norm);
		pthread_mutex_unlock(&k->lock);
		discover(k, c, norm, others, nothers, now, &v);
		pthread_mutex_lock(&k->lock);
		f->verdict = v;
		keyd_flight_land(k, f);
	}
	if (f->done) {
		v = f->verdict;
	} else {
		v.outcome = KEYD_OUTCOME_TEMPFAIL;
		v.key_change = v.found = false;
		snprintf(v.reason, sizeof(v.reason), "the DNS lookup under way took longer than LookupTimeout");
	}
	keyd_flight_leave(k, f);
	pthread_mutex_unlock(&k->lock);
	if (store_keys(k, c, norm, STORE_HELD, now, out, &held) > 0) {
		if (held.proof != NULL)
			keyd_downgrade_seen(k, c, norm, held.proof, now);
		keyd_count(k, &k->from_dns);
		answer(out, norm, KEYD_OUTCOME_FOUND, NULL);
		goto out;
	}
	/*
	 * Keys discovery stored and the store does not give back (it failed, or
	 * a NOTIFY dropped their cache entry in between) are no "no key" either.
	 */
	if (held.store_failed || v.found) {
		keyd_count(k, &k->tempfail);
		answer(out, norm, KEYD_OUTCOME_TEMPFAIL, held.store_failed ? held.why :
		    "the keys discovery found are not in the key store any more");
		goto out;
	}
	/* Never after a failure (bogus, no answer, a key server down): see harvested_keys(). */
	if (v.outcome == KEYD_OUTCOME_NONE && harvested_keys(k, c, norm, now, out))
		goto out;
	pthread_mutex_lock(&k->lock);
	if (v.outcome == KEYD_OUTCOME_TEMPFAIL)
		k->tempfail++;
	else
		k->none++;
	pthread_mutex_unlock(&k->lock);
	if (v.key_change)
		answer(out, norm, v.outcome, v.reason);	/* On-KeyChange decided */
	else
		answer_keyless(k, c, out, norm, v.outcome, v.reason, now);
out:
	keyd_conf_put(k, c);
	free(norm);
}

struct retest {
	struct keyd *k;
	char *addr;
};

static void *
retest_run(void *arg)
{
	struct retest *r = arg;
	struct buf out;

	buf_init(&out);
	keyd_lookup(r->k, r->addr, NULL, 0, time(NULL), &out);
	buf_release(&out);
	pthread_mutex_lock(&r->k->lock);
	r->k->retests--;
	pthread_cond_broadcast(&r->k->landed);
	pthread_mutex_unlock(&r->k->lock);
	free(r->addr);
	free(r);
	return NULL;
}

/* Look addr up once in a thread of its own; its answer (or silence) updates the mark. */
static void
retest_start(struct keyd *k, const char *addr)
{
	struct retest *r = xcalloc(1, sizeof(*r));
	pthread_t tid;

	r->k = k;
	r->addr = xstrdup(addr);
	pthread_mutex_lock(&k->lock);
	k->retests++;
	pthread_mutex_unlock(&k->lock);
	if (pthread_create(&tid, NULL, retest_run, r) != 0) {
		pthread_mutex_lock(&k->lock);
		k->retests--;
		pthread_mutex_unlock(&k->lock);
		free(r->addr);
		free(r);
		return;
	}
	pthread_detach(tid);
}

void
keyd_check(struct keyd *k, const char *addr, time_t now, struct keyd_check *out)
{
	struct keyd_conf *c = keyd_conf_get(k);
	char *norm = addr_normalize(addr, &c->cfg->addr);
	char why[sizeof(((struct neg_entry *)0)->reason)];
	time_t until = 0;
	bool marked, cached, retest = false;
	struct buf scratch;

	memset(out, 0, sizeof(*out));
	strlcpy_c(out->address, norm != NULL ? norm : addr, sizeof(out->address));
	out->state = KEYD_CHECK_CACHED;	/* not an address: a lookup answers "none" at once */
	pthread_mutex_lock(&k->lock);
	k->checks++;
	marked = norm != NULL && unresponsive_get(&k->unresponsive, strrchr(norm, '@') + 1, now, &until, out->reason,
	    sizeof(out->reason));
	cached = norm != NULL && keyd_cache_none(k, norm, now, why, sizeof(why));
	if (marked && !cached && k->retest_every_s > 0)
		retest = unresponsive_retest_due(&k->unresponsive, strrchr(norm, '@') + 1, now, k->retest_every_s);
	pthread_mutex_unlock(&k->lock);
	if (norm == NULL || cached)
		goto out;
	/* Keys held (or found and still fresh): the store, read only; never a query on the network. */
	buf_init(&scratch);
	cached = store_keys(k, c, norm, STORE_HELD, now, &scratch, NULL) > 0;
	buf_release(&scratch);
	/*
	 * A domain with a Peer line is asked through its key server whatever
	 * its DNS does: the end of the message decides, never the mark.
	 */
	if (cached) {
		out->reason[0] = '\0';
	} else if (marked && !peer_configured(c->cfg, strrchr(norm, '@') + 1)) {
		out->state = KEYD_CHECK_UNRESPONSIVE;
		out->retry = until - now > 0 ? (long long)(until - now) : 1;
		keyd_count(k, &k->checks_unresponsive);
		if (retest)
			retest_start(k, norm);
	} else {
		out->state = KEYD_CHECK_LOOKUP;
	}
out:
	if (out->state != KEYD_CHECK_UNRESPONSIVE)
		out->reason[0] = '\0';
	keyd_conf_put(k, c);
	free(norm);
}

void
keyd_set_sources(struct keyd *k, const struct discovery_source *sources, size_t n)
{
	k->sources = sources;
	k->nsources = n;
}

void
keyd_set_probe(struct keyd *k, keyd_probe_fn *probe)
{
	k->probe = probe;
}

void
keyd_set_txt(struct keyd *k, keyd_txt_fn *txt)
{
	k->txt = txt;
}

void
keyd_wait_retests(struct keyd *k)
{
	pthread_mutex_lock(&k->lock);
	while (k->retests > 0)
		pthread_cond_wait(&k->landed, &k->lock);
	pthread_mutex_unlock(&k->lock);
}

void
keyd_set_retest(struct keyd *k, unsigned long every_s)
{
	pthread_mutex_lock(&k->lock);
	k->retest_every_s = every_s;
	pthread_mutex_unlock(&k->lock);
}

unsigned long
keyd_lookup_timeout_ms(struct keyd *k)
{
	unsigned long ms;

	pthread_mutex_lock(&k->lock);
	ms = k->conf->cfg->lookup_timeout_ms;
	pthread_mutex_unlock(&k->lock);
	return ms;
}

void
keyd_stats(struct keyd *k, struct buf *out)
{
	pthread_mutex_lock(&k->lock);
	buf_printf(out, "lookups=%lu\nfrom_store=%lu\nfrom_dns=%lu\nnegative_cache_hits=%lu\nnone=%lu\ntempfail=%lu\n"
	    "bogus=%lu\ninsecure_refused=%lu\ndns_lookups=%lu\nshared_lookups=%lu\nreplaced_in_dns=%lu\npeer_asked=%lu\n"
	    "peer_failed=%lu\nkey_changes=%lu\nfrom_harvest=%lu\nchecks=%lu\nchecks_unresponsive=%lu\n"
	    "unresponsive_marked=%lu\nunresponsive_cleared=%lu\nunresponsive_spared=%lu\nunresponsive_probes=%lu\n", k->lookups,
	    k->from_store, k->from_dns, k->negative_hits, k->none, k->tempfail, k->bogus, k->insecure, k->dns_lookups,
	    k->shared, k->replaced, k->peer_asked, k->peer_failed, k->key_changes, k->from_harvest, k->checks,
	    k->checks_unresponsive, k->unresponsive.marked, k->unresponsive.cleared, k->unresponsive.spared, k->probes);
	pthread_mutex_unlock(&k->lock);
}

void
keyd_metrics(struct keyd *k, struct buf *out)
{
	unsigned long shared, replaced, asked, failed, changes, insecure, checks, checks_unresponsive, marked, cleared,
	    spared;

	pthread_mutex_lock(&k->lock);
	checks = k->checks;
	checks_unresponsive = k->checks_unresponsive;
	marked = k->unresponsive.marked;
	cleared = k->unresponsive.cleared;
	spared = k->unresponsive.spared;
	shared = k->shared;
	replaced = k->replaced;
	asked = k->peer_asked;
	failed = k->peer_failed;
	changes = k->key_changes;
	insecure = k->insecure;
	pthread_mutex_unlock(&k->lock);
	keydstats_render(out);
	metric_family(out, "cables_keyd_shared_lookups_total", "counter",
	    "Lookups that waited for another lookup's discovery of the same address.");
	metric_sample(out, "cables_keyd_shared_lookups_total", "", shared);
	metric_family(out, "cables_keyd_insecure_refused_total", "counter",
	    "Unsigned DNS answers with keys not used under DNSSEC require.");
	metric_sample(out, "cables_keyd_insecure_refused_total", "", insecure);
	metric_family(out, "cables_keyd_replaced_in_dns_total", "counter",
	    "Stored keys deleted because their zone no longer publishes them.");
	metric_sample(out, "cables_keyd_replaced_in_dns_total", "", replaced);
	metric_family(out, "cables_keyd_peer_requests_total", "counter", "Requests to other domains' key servers.");
	metric_sample(out, "cables_keyd_peer_requests_total", "result=\"ok\"", asked - failed);
	metric_sample(out, "cables_keyd_peer_requests_total", "result=\"failed\"", failed);
	metric_family(out, "cables_keyd_key_changes_total", "counter", "Key changes met by a pin (On-KeyChange).");
	metric_sample(out, "cables_keyd_key_changes_total", "", changes);
	metric_family(out, "cables_keyd_checks_total", "counter",
	    "RCPT-time checks (request=check), by answer: the domain is marked unresponsive, or not.");
	metric_sample(out, "cables_keyd_checks_total", "result=\"unresponsive\"", checks_unresponsive);
	metric_sample(out, "cables_keyd_checks_total", "result=\"other\"", checks - checks_unresponsive);
	metric_family(out, "cables_keyd_unresponsive_marks_total", "counter",
	    "Domains marked unresponsive (their servers did not answer), marks cleared by an answer, and domains spared "
	    "a mark (they answered within twice LookupTimeout).");
	metric_sample(out, "cables_keyd_unresponsive_marks_total", "event=\"marked\"", marked);
	metric_sample(out, "cables_keyd_unresponsive_marks_total", "event=\"cleared\"", cleared);
	metric_sample(out, "cables_keyd_unresponsive_marks_total", "event=\"spared\"", spared);
}

/* ---- The key-exchange endpoint's source ---- */

/*
 * The address's current S/MIME epoch key into out->epochs: a sender that
 * understands it encrypts to it alone (doc/key-exchange.md, "Forward
 * secrecy: epoch keys").  Served next to the long-term keys that vouch
 * for it, never instead of them.  Which one is cables-keyholder's word
 * (keyd_set_epoch_check): the milter can write epoch rows, only the
 * keyholder can tell one it made (sealed with KeyStoreKey, issued by the
 * current long-term certificate); keyd serves the row whose certificate
 * has the digest it names.  False when it cannot be asked (the answer is
 * then refused whole: one without the epoch key would make the asker drop
 * the one it holds, and fall back to the long-term key).
 */
static bool
current_epoch(struct keyd *k, const char *norm, const char *format, time_t now, struct x_result *out)
{
	struct key_list epochs;
	const struct key_record *best = NULL;
	uint8_t want[32], got[32];
	struct cables_err err = { "" };
	bool found = false;

	if (k->epoch_check == NULL)
		return true;
	if (k->epoch_check(k->epoch_arg, norm, format, want, &found, &err) != CABLES_OK) {
		log_warnx("keyd: %s: the key process could not vouch for an epoch key: %s", norm, err.msg);
		return false;
	}
	if (!found)
		return true;
	if (keystore_epoch_list(k->ks, norm, true, &epochs, NULL) != CABLES_OK)
		return false;
	for (size_t i = 0; i < epochs.count && best == NULL; i++) {
		const struct key_record *r = &epochs.items[i];

		SHA256(r->public_data, r->public_len, got);
		if (strcmp(r->source, KEYSTORE_EPOCH_SOURCE) == 0 && strcmp(r->format, format) == 0 &&
		    r->not_before <= (long long)now && (long long)now < r->not_after &&
		    r->public_len <= X_KEY_MAX && memcmp(got, want, sizeof(got)) == 0)
			best = r;
	}
	if (best != NULL) {
		struct x_key *xk;

		out->epochs = xreallocarray(out->epochs, out->nepochs + 1, sizeof(*out->epochs));
		xk = &out->epochs[out->nepochs++];
		memset(xk, 0, sizeof(*xk));
		strlcpy_c(xk->format, best->format, sizeof(xk->format));
		xk->data = xmalloc(best->public_len);
		memcpy(xk->data, best->public_data, best->public_len);
		xk->len = best->public_len;
		xk->not_after = best->not_after;
	}
	key_list_release(&epochs);
	return true;
}

void
keyd_set_epoch_check(struct keyd *k, keyd_epoch_fn *fn, void *arg)
{
	k->epoch_check = fn;
	k->epoch_arg = arg;
}

void
keyd_set_vouch(struct keyd *k, keyd_vouch_fn *fn, void *arg)
{
	k->vouch = fn;
	k->vouch_arg = arg;
}

/* Does the keyholder vouch for r (its digest is among the n in digests)? */
static bool
vouched(const struct key_record *r, const uint8_t (*digests)[32], size_t n)
{
	uint8_t got[32];

	SHA256(r->public_data, r->public_len, got);
	for (size_t i = 0; i < n; i++)
		if (memcmp(got, digests[i], sizeof(got)) == 0)
			return true;
	return false;
}

bool
keyd_public_keys(struct keyd *k, const char *addr, time_t now, struct x_result *out, bool *incomplete)
{
	struct keyd_conf *c = keyd_conf_get(k);
	char *norm = addr_normalize(addr, &c->cfg->addr);
	const char *at = norm != NULL ? strrchr(norm, '@') : NULL;
	struct key_list keys;
	uint8_t digests[KH_VOUCH_MAX][32];
	size_t ndigests = 0;
	struct cables_err err;
	bool local = at != NULL && domain_list_match(&c->cfg->local_domains, at + 1), serve = local;

	memset(out, 0, sizeof(*out));
	out->address = xstrdup(addr);
	/* Every address costs one store lookup, whether it exists or not. */
	if (norm != NULL && keystore_lookup(k->ks, norm, NULL, &keys, NULL) == CABLES_OK) {
		out->keys = xcalloc(keys.count + 1, sizeof(*out->keys));
		/* The milter can write the store: only keys the keyholder holds are the user's own. */
		if (local && keys.count > 0 && k->vouch != NULL &&
		    k->vouch(k->vouch_arg, norm, digests, &ndigests, &err) != CABLES_OK) {
			log_warnx("keyd: %s: the key process could not vouch for its keys: %s", norm, err.msg);
			*incomplete = true;
			serve = false;
		}
		for (size_t i = 0; serve && k->vouch != NULL && i < keys.count && out->n < KH_VOUCH_MAX; i++) {
			const struct key_record *r = &keys.items[i];
			char why[CABLES_ERR_MAX];
			struct x_key *xk = &out->keys[out->n];

			/* A local user's own keys only (never what was learned from elsewhere), none a client would refuse. */
			if (key_source_discovered(r->source) || r->public_len > X_KEY_MAX ||
			    !vouched(r, (const uint8_t (*)[32])digests, ndigests) ||
			    !keyd_record_usable(r, &c->cfg->addr, k->certs, now, why, sizeof(why)))
				continue;
			strlcpy_c(xk->format, r->format, sizeof(xk->format));
			xk->data = xmalloc(r->public_len + 1);
			memcpy(xk->data, r->public_data, r->public_len);
			xk->len = r->public_len;
			xk->not_after = r->not_after;
			out->n++;
		}
		key_list_release(&keys);
		/* An answer without the epoch key would make the asker drop the one it holds: none at all. */
		if (local && out->n > 0) {
			bool vouched = current_epoch(k, norm, "smime", now, out), pgp = false;

			/* The OpenPGP one only beside a served OpenPGP key (the one whose primary binds it). */
			for (size_t i = 0; i < out->n; i++)
				pgp = pgp || strcmp(out->keys[i].format, "pgp") == 0;
			if (!vouched || (pgp && !current_epoch(k, norm, "pgp", now, out)))
				*incomplete = true;
		}
	}
	free(norm);
	keyd_conf_put(k, c);
	return local;
}
