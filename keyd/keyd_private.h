/*
 * keyd_private - the state of cables-keyd's lookups (struct keyd), shared by
 * the files of keyd/ that implement lookup.h (lookup.c: the lookups, which
 * ask the caches and the flights of cache.c, then the discovery sources of
 * sources.c; pins.c: pins; store.c: the store's writer).  Nothing outside
 * keyd/ includes it.
 *
 * k->lock guards the caches, the flights, the counters and k->conf; a lookup
 * holds its configuration with keyd_conf_get() / keyd_conf_put().
 */
#ifndef CABLES_KEYD_PRIVATE_H
#define CABLES_KEYD_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include <openssl/x509.h>

#include "config.h"
#include "dns.h"
#include "keydproto.h"
#include "keystore.h"
#include "lookup.h"
#include "status.h"
#include "unresponsive.h"

struct smime_cache;

/* Slots, by a hash of the address: a list of a few thousand members stays cached. */
#define NEG_CACHE 16384
#define POS_CACHE 16384

/* What one configuration sets up; lookups begun under it hold a reference. */
struct keyd_conf {
	struct config *cfg;
	struct dns_resolver *res;
	X509_STORE *anchors;
	unsigned int refs;	/* lookups using it, plus one while it is in force */
};

struct neg_entry {
	char *addr;		/* normalised */
	time_t until;
	char reason[128];
};

/* Keys of addr found in DNS may be handed out until then. */
struct pos_entry {
	char *addr;
	time_t until;
	time_t since;		/* when the discovery that set it ran: only keys it confirmed (last_seen) count */
};

/* What a discovery answers when it found nothing usable. */
struct keyd_verdict {
	enum keyd_outcome outcome;
	bool key_change;	/* a key change held back by On-KeyChange: its action decides, not DowngradeMemory */
	bool found;		/* discovery stored keys: the store must answer with them, never "no key" */
	char reason[CABLES_ERR_MAX + 192];
};

/* A DNS lookup under way; later lookups of the same address wait for its outcome. */
struct flight {
	char *addr;
	unsigned int users;	/* the lookup that asks, and those waiting */
	bool done;
	struct keyd_verdict verdict;	/* none, tempfail or reject, and why, when nothing usable came */
	struct flight *next;
};

struct discovery_source;

/* Did the resolver answer a random name under zone ("" the root) within timeout_ms?  why says what happened. */
typedef bool keyd_probe_fn(struct keyd_conf *c, const char *zone, unsigned int timeout_ms, char *why, size_t why_len);

/* Look up the TXT records at name (a domain's _cables-policy, downgrade.c), as dns_lookup_name() does. */
typedef cables_status keyd_txt_fn(struct keyd_conf *c, const char *name, time_t now, unsigned int timeout_ms,
    struct dns_answer *out, struct cables_err *err);

struct keyd {
	struct keyd_conf *conf;
	const struct discovery_source *sources;	/* discovery_sources, or a test's */
	size_t nsources;
	struct keystore *ks;
	const char *gpg_home;
	struct smime_cache *certs;	/* parsed certificates, by the digest of their DER */
	pthread_mutex_t lock;	/* everything below, and conf */
	pthread_cond_t landed;	/* a flight is done */
	pthread_mutex_t gpg_lock;	/* keyd's gpg home: one user at a time */
	pthread_mutex_t pin_lock;	/* a pin's read, decision and write, with the key's store */
	struct flight *flights;
	struct neg_entry neg[NEG_CACHE];
	struct pos_entry pos[POS_CACHE];
	struct unresponsive unresponsive;	/* domains whose DNS servers do not answer */
	unsigned long checks, checks_unresponsive, probes;
	unsigned long retest_every_s;	/* a marked domain's background re-test, at most this often; 0: none */
	unsigned int retests;	/* re-tests running (keyd_free waits for them; landed is signalled) */
	/* The resolver's probe (unresponsive.h, condition 2): dns_probe(), or a test's. */
	keyd_probe_fn *probe;
	keyd_txt_fn *txt;	/* _cables-policy lookups: the resolver's, or a test's */
	keyd_epoch_fn *epoch_check;	/* keyd_set_epoch_check(); NULL: no epoch key is served */
	void *epoch_arg;
	keyd_vouch_fn *vouch;		/* keyd_set_vouch(); NULL: no local user's key is served */
	void *vouch_arg;
	pthread_mutex_t probe_lock;	/* the four below: one probe at a time */
	long long probe_sent_ms;	/* monotonic_ms() when the last probe was sent; -1: none yet */
	long long probe_answered_ms;	/* and when it ended */
	bool probe_alive;	/* it was answered */
	char probe_why[160];
	unsigned long lookups, from_store, from_dns, negative_hits, none, tempfail, bogus, insecure, dns_lookups,
	    shared, replaced, peer_asked, peer_failed, key_changes, from_harvest;
};

/* A key change held back by On-KeyChange (tempfail or reject), for the lookup's answer. */
struct held {
	int action;		/* ACTION_TEMPFAIL or ACTION_REJECT; ACTION_ACCEPT: nothing held */
	char why[300];
};

/*
 * The pin of r's address and format, before r (a discovered key) is stored:
 * true when r may be stored and used.  A change held back by On-KeyChange
 * (or a pin that cannot be read) is put in held, if not NULL.  The caller
 * holds k->pin_lock (a pin's read, decision and write, with the key's store).
 */
bool keyd_pin_check(struct keyd *k, struct keyd_conf *c, const struct key_record *r, time_t now, struct held *held);

/*
 * downgrade.c: "No downgrade" (doc/key-exchange.md).  A key from source
 * proves its domain encrypts (dns-dnssec, peer, peer-epoch); such a key
 * handed out for norm remembers (or refreshes) its domain.
 */
bool keyd_source_proves_encrypting(const char *source);
/* The same source as a constant (it outlives the key it came from: the memory's source), or NULL. */
const char *keyd_source_proves_encrypting_name(const char *source);
void keyd_downgrade_seen(struct keyd *k, struct keyd_conf *c, const char *norm, const char *source, time_t now);
/*
 * A lookup of norm (a remote address) ends with outcome o and no key:
 * must its domain not get plaintext?  KEYD_ENCRYPTING_REMEMBERED (*since:
 * first seen; the administrator is told once, with reason) when its domain
 * is remembered within DowngradeMemory and the lookup failed or norm had a
 * key (its pin), else KEYD_ENCRYPTING_PUBLISHED for a signed
 * _cables-policy p=require (asked on "none" only; remembered as source
 * "policy"), else _NO.  When that query gets a bogus answer or none,
 * *failed is set and why says so: the lookup is a tempfail, as the
 * statement may have been stripped on the path.
 */
enum keyd_encrypting keyd_downgrade_check(struct keyd *k, struct keyd_conf *c, const char *norm, enum keyd_outcome o,
    const char *reason, time_t now, long long *since, bool *failed, struct cables_err *why);
/* The pinned key was (from was_source) changed to r (On-KeyChange action): tell AdminAddress once per pair. */
void keyd_key_change_alert(struct keyd *k, struct keyd_conf *c, const struct key_record *r, const char *was,
    const char *was_source, const char *action, time_t now);

/* One address's discovery: what its sources found so far. */
struct discovery {
	struct keyd *k;
	struct keyd_conf *c;
	const char *norm;	/* the address, normalised */
	const char *const *others;	/* the request's addresses (a key server is asked about its domain's) */
	size_t nothers;
	time_t now;
	long long deadline;	/* monotonic_ms(): LookupTimeout from the discovery's start */
	struct held held;	/* a key change held back by On-KeyChange */
	bool any;		/* a key was stored: the lookup answers from the store */
	bool tempfail;		/* a source failed (no answer, a key server that failed) */
	bool proven_none;	/* every DNS answer so far proved absence */
	bool cacheable;		/* "no key" may be negative-cached: only proofs and unsigned answers so far */
	bool answered;		/* a query for the domain's names got an answer (any rcode but SERVFAIL, bogus too) */
	bool unanswered;	/* a query timed out: unresponsive.h */
	long long started_ms;	/* monotonic_ms() at the start: the window of unresponsive.h's condition 1 */
	bool probed;		/* the resolver was probed (at the first timeout) */
	long long alive_ms;	/* when it answered the probe; 0: it did not */
	bool silent_after_alive;	/* a query asked after alive_ms timed out: condition 2 */
	char alive_why[160];
	char unanswered_why[128];
	unsigned long ttl;	/* of the keys found, seconds */
	unsigned long none_ttl;	/* of the answers that said "no key" (the SOA minimum); ~0UL: none yet */
	char reason[CABLES_ERR_MAX + 128];	/* why no key, the most telling reason so far */
	int best;		/* how telling reason is (see source_dns) */
};

/*
 * A discovery source, in the style of Postfix's dict types: asked in table
 * order, each looks at what those before it found (d->any, d->tempfail) to
 * decide whether to ask at all, stores what it finds and says so in d.
 */
struct discovery_source {
	const char *name;
	void (*lookup)(struct discovery *d);
};

/*
 * A query for d's domain got an answer (unresponsive.h): d->answered, and
 * the answer kept at once for the other lookups at the domain to see; the
 * domain's mark, if any, is gone.
 */
void keyd_note_answered(struct discovery *d);

/*
 * A query for d's domain asked at asked_ms timed out (what: which, and
 * why): d->unanswered; at the first timeout the resolver is probed, and a
 * query asked after it answered that times out too is condition 2 of
 * unresponsive.h (d->silent_after_alive).
 */
void keyd_note_timeout(struct discovery *d, long long asked_ms, const char *what);

/*
 * Did the resolver answer a query no cache could answer, sent after
 * since_ms?  *answered_ms says when it ended (lookup.c, unresponsive.h).
 */
bool keyd_resolver_answers(struct discovery *d, long long since_ms, long long *answered_ms, char *why,
    size_t why_len);

/* SMIMEA, OPENPGPKEY, the domain's key server, WKD. */
extern const struct discovery_source discovery_sources[];
extern const size_t discovery_nsources;

/* Tests: ask these sources instead (they must outlive k). */
void keyd_set_sources(struct keyd *k, const struct discovery_source *sources, size_t n);

/* Tests: probe the resolver with this instead of dns_probe(). */
void keyd_set_probe(struct keyd *k, keyd_probe_fn *probe);
/* Tests: look up TXT records (_cables-policy) with this instead of dns_lookup_name(). */
void keyd_set_txt(struct keyd *k, keyd_txt_fn *txt);
/* Re-test marked domains in the background at most every every_s (60 by default; 0: never). */
void keyd_set_retest(struct keyd *k, unsigned long every_s);
/* Until no re-test runs (keyd_free waits so too). */
void keyd_wait_retests(struct keyd *k);

/* The configuration in force, held until keyd_conf_put() (a SIGHUP may replace it meanwhile). */
struct keyd_conf *keyd_conf_get(struct keyd *k);
void keyd_conf_put(struct keyd *k, struct keyd_conf *c);

/*
 * cache.c: the caches, the flights and the counters.  "k->lock held" means
 * the caller holds it; the others take it themselves.
 */

/* One more of a counter. */
void keyd_count(struct keyd *k, unsigned long *counter);

/* Forget every cached answer (k->lock held, or k not yet shared). */
void keyd_cache_clear(struct keyd *k);

/*
 * May keys of norm that were discovered be handed out without asking
 * again?  When so, *since is when the discovery ran: only keys it confirmed
 * (stored then, last_seen >= since) may be.
 */
bool keyd_cache_fresh(struct keyd *k, const char *norm, time_t now, time_t *since);

/* Discovered keys of norm, confirmed at now, may be handed out until until (k->lock held). */
void keyd_cache_keys(struct keyd *k, const char *norm, time_t now, time_t until);

/* Is "no key" for norm cached at now?  If so, reason gets why (k->lock held). */
bool keyd_cache_none(struct keyd *k, const char *norm, time_t now, char *reason, size_t reason_len);

/* A TTL in seconds, clamped by CacheMinTTL/CacheMaxTTL. */
unsigned long keyd_cache_ttl(const struct config *cfg, unsigned long ttl_s);

/* What d's sources found decides the caches: keys for their TTL, "no key" (proven or unsigned) for the SOA minimum. */
void keyd_cache_remember(struct discovery *d);

/*
 * Flights, by key (an address, or "@domain" for a key-server exchange), all
 * with k->lock held: join the one under way (NULL if none), or begin one;
 * its owner lands it when done; every user (the owner too) leaves it, and
 * the last one out frees it.  keyd_flight_wait() waits until f is done or
 * timeout_ms from start (CLOCK_REALTIME) is up.
 */
struct flight *keyd_flight_join(struct keyd *k, const char *key);
struct flight *keyd_flight_begin(struct keyd *k, const char *key);
void keyd_flight_land(struct keyd *k, struct flight *f);
void keyd_flight_wait(struct keyd *k, struct flight *f, const struct timespec *start, unsigned long timeout_ms);
void keyd_flight_leave(struct keyd *k, struct flight *f);

#endif
