/*
 * sources - cables-keyd's discovery sources (keyd_private.h): SMIMEA and
 * OPENPGPKEY records in DNS, the domain's Cables key server (peer.h) and
 * its Web Key Directory (wkd.h).  What a source finds trusted and usable is
 * stored (pins permitting), and the keys it stored before and no longer
 * publishes are deleted.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "keydproto.h"
#include "log.h"
#include "peer.h"
#include "pgp.h"
#include "pgp_epoch.h"
#include "policy.h"
#include "smime.h"
#include "smimea.h"
#include "wkd.h"
#include "keyd_private.h"
#include "keydstats.h"

/*
 * The fingerprints of the keys one answer (DNS, a key server) gave, kept to
 * tell which stored ones the source no longer has; held, if not NULL, gets
 * a key change that was held back.  store_failed: a key could not be
 * stored (store_why), so the answer is not known to the store: the lookup
 * fails temporarily (store_failed()) and nothing is deleted on its account.
 */
struct kept {
	char fpr[8][65];
	size_t n;
	struct held *held;
	bool store_failed;
	char store_why[CABLES_ERR_MAX];
};

/* Put r into the store; a failure is logged and noted in kept. */
static bool
put(struct keyd *k, const struct key_record *r, time_t now, struct kept *kept)
{
	struct cables_err err;

	if (keystore_put(k->ks, r, now, &err) == CABLES_OK)
		return true;
	log_warnx("keyd: cannot store the %s key of %s found by discovery: %s", r->format, r->address, err.msg);
	kept->store_failed = true;
	snprintf(kept->store_why, sizeof(kept->store_why), "cannot store a key found: %.200s", err.msg);
	return false;
}

/* A key found could not be stored: a temporary failure, never cached as "no key". */
static void
store_failed(struct discovery *d, const struct kept *kept)
{
	if (!kept->store_failed)
		return;
	d->tempfail = true;
	d->cacheable = false;
	d->proven_none = false;
	snprintf(d->reason, sizeof(d->reason), "%s", kept->store_why);
}

/* Store discovered key r (pins permitting) and keep its fingerprint; one discovery at a time decides pins. */
static void
keep(struct keyd *k, struct keyd_conf *c, const struct key_record *r, time_t now, struct kept *kept)
{
	bool ok;

	pthread_mutex_lock(&k->pin_lock);
	ok = keyd_pin_check(k, c, r, now, kept->held) && put(k, r, now, kept);
	pthread_mutex_unlock(&k->pin_lock);
	if (ok && kept->n < 8)
		strlcpy_c(kept->fpr[kept->n++], r->fingerprint, 65);
}

/* A certificate found for norm (from source), if usable, is stored; kept gets its fingerprint, why says why not. */
static void
store_cert(struct keyd *k, struct keyd_conf *c, const char *norm, X509 *cert, const char *source, time_t now,
    struct kept *kept, char *why, size_t why_len)
{
	struct cables_err err;
	struct key_record r;
	uint8_t *der = NULL;

	memset(&r, 0, sizeof(r));
	if (smime_cert_check(cert, norm, &c->cfg->addr, now, &err) != CABLES_OK) {
		snprintf(why, why_len, "certificate not usable: %s", err.msg);
	} else if ((der = smime_cert_to_der(cert, &r.public_len)) != NULL) {
		r.address = (char *)norm;
		strlcpy_c(r.format, "smime", sizeof(r.format));
		smime_cert_fingerprint(cert, r.fingerprint);
		r.public_data = der;
		smime_cert_validity(cert, &r.not_before, &r.not_after);
		r.source = (char *)source;
		keep(k, c, &r, now, kept);
	}
	free(der);
}

/* The certificates an SMIMEA RRset vouches for, if usable for norm, are stored; why says why none was. */
static void
store_smimea(struct keyd *k, struct keyd_conf *c, const char *norm, const struct dns_answer *a, const char *source,
    time_t now, struct kept *kept, char *why, size_t why_len)
{
	X509 *certs[8];
	size_t n = smimea_select(a->recs, a->n, c->anchors, now, certs, 8, why, why_len);

	for (size_t i = 0; i < n; i++) {
		store_cert(k, c, norm, certs[i], source, now, kept, why, why_len);
		X509_free(certs[i]);
	}
}

/* An OPENPGPKEY record: the key, if usable for norm (gpg checks it in keyd's own home), is stored. */
static void
store_openpgpkey(struct keyd *k, struct keyd_conf *c, const char *norm, const struct dns_record *d,
    const char *source, time_t now, struct kept *kept, char *why, size_t why_len)
{
	struct pgp_key_info info;
	struct cables_err err;
	struct key_record r;
	char fpr[PGP_FPR_LEN + 1];
	cables_status st;

	pthread_mutex_lock(&k->gpg_lock);
	st = pgp_check(k->gpg_home, d->data, d->len, norm, &c->cfg->addr, PGP_USE_ENCRYPT, now, fpr, &err);
	if (st == CABLES_OK)
		st = pgp_inspect(k->gpg_home, d->data, d->len, &info, &err);
	pthread_mutex_unlock(&k->gpg_lock);
	if (st != CABLES_OK) {
		snprintf(why, why_len, "key not usable: %s", err.msg);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.address = (char *)norm;
	strlcpy_c(r.format, "pgp", sizeof(r.format));
	strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
	r.public_data = d->data;
	r.public_len = d->len;
	r.not_before = info.created;
	r.not_after = info.expires != 0 ? info.expires : KEYSTORE_NEVER_EXPIRES;
	r.source = (char *)source;
	keep(k, c, &r, now, kept);
	pgp_key_info_release(&info);
}

/*
 * A source answered for format with authority (the keys in kept, or proven
 * none): keys of norm in that format stored from that source (whose names
 * start with source) that it no longer publishes are deleted.
 */
static void
forget_replaced(struct keyd *k, const char *norm, const char *format, const char *source, const struct kept *kept)
{
	struct key_list keys;

	if (kept->store_failed || keystore_lookup(k->ks, norm, format, &keys, NULL) != CABLES_OK)
		return;
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		bool still = false;
		size_t deleted;

		for (size_t j = 0; j < kept->n && !still; j++)
			still = strcmp(kept->fpr[j], r->fingerprint) == 0;
		if (still || strncmp(r->source, source, strlen(source)) != 0 || keystore_delete(k->ks, norm, r->fingerprint, &deleted, NULL) != CABLES_OK)
			continue;
		log_info("keyd: %s: %s key %.16s is no longer published (%s...): deleted", norm, format, r->fingerprint,
		    source);
		keyd_count(k, &k->replaced);
	}
	key_list_release(&keys);
}

/*
 * The epoch key the key server gave for addr, if it checks out
 * (x_epoch_check) and the long-term certificate that issued it is one we
 * kept (so pins decide for it too), replaces addr's stored peer epoch
 * keys; an answer without one (or with a refused one) removes them, so
 * that ForwardSecrecy decides what happens then (doc/key-exchange.md).
 * The answer being authoritative and fresh is what keeps the epoch key
 * current: keyd asks again when the peer keys' cache time runs out.
 */
/* The public row of a checked OpenPGP epoch key (x_epoch_check()); false if it cannot be read again. */
static bool
pgp_epoch_row(const struct x_result *res, const struct x_key *xk, time_t now, struct key_record *r)
{
	struct pgp_epoch_info info;

	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->keys[i].format, "pgp") == 0 && pgp_epoch_check(xk->data, xk->len, res->keys[i].data,
		    res->keys[i].len, (long long)now, X_EPOCH_VALIDITY_MAX, &info, NULL) == CABLES_OK) {
			strlcpy_c(r->format, "pgp", sizeof(r->format));
			strlcpy_c(r->fingerprint, info.fpr, sizeof(r->fingerprint));
			r->not_before = info.created;
			r->not_after = info.not_after;
			return true;
		}
	return false;
}

static void
keep_peer_epoch(struct keyd *k, const char *addr, const struct x_result *res, const struct kept kept[2], time_t now,
    const struct addr_opts *ao)
{
	struct key_list old;
	struct key_record r;
	char parent[65], fpr[2][65] = { "", "" };	/* the S/MIME and the OpenPGP one kept */
	struct cables_err err;
	X509 *cert = NULL;

	for (size_t j = 0; j < res->nepochs; j++) {
		bool parent_kept = false, pgp = strcmp(res->epochs[j].format, "pgp") == 0;
		const struct kept *kp = &kept[pgp];

		if (fpr[pgp][0] != '\0')
			continue;	/* one per format */
		if (x_epoch_check(res, &res->epochs[j], ao, now, parent, &err) != CABLES_OK) {
			log_warnx("keyd: %s: epoch key offered by the key server refused: %s", addr, err.msg);
			continue;
		}
		for (size_t i = 0; i < kp->n && !parent_kept; i++)
			parent_kept = strcasecmp(kp->fpr[i], parent) == 0;
		memset(&r, 0, sizeof(r));
		if (!parent_kept || (pgp ? !pgp_epoch_row(res, &res->epochs[j], now, &r) :
		    (cert = smime_cert_from_der(res->epochs[j].data, res->epochs[j].len)) == NULL)) {
			log_warnx("keyd: %s: epoch key offered by the key server not used: the %s that issued it "
			    "was not accepted", addr, pgp ? "OpenPGP key" : "certificate");
			continue;
		}
		r.address = (char *)addr;
		if (!pgp) {
			strlcpy_c(r.format, "smime", sizeof(r.format));
			smime_cert_fingerprint(cert, r.fingerprint);
			smime_cert_validity(cert, &r.not_before, &r.not_after);
			X509_free(cert);
			cert = NULL;
		}
		r.public_data = res->epochs[j].data;
		r.public_len = res->epochs[j].len;
		r.source = (char *)KEYSTORE_PEER_EPOCH_SOURCE;
		if (keystore_put(k->ks, &r, now, &err) != CABLES_OK) {
			log_warnx("keyd: %s: storing the epoch key: %s", addr, err.msg);
			continue;
		}
		strlcpy_c(fpr[pgp], r.fingerprint, sizeof(fpr[pgp]));
		log_info("keyd: %s: %sepoch key %.16s from the key server, valid until %lld", addr, pgp ? "OpenPGP " : "",
		    fpr[pgp], r.not_after);
	}
	if (keystore_epoch_list(k->ks, addr, false, &old, NULL) != CABLES_OK)
		return;
	for (size_t i = 0; i < old.count; i++) {
		size_t f = strcmp(old.items[i].format, "pgp") == 0;

		if (strcmp(old.items[i].source, KEYSTORE_PEER_EPOCH_SOURCE) != 0 ||
		    strcmp(old.items[i].fingerprint, fpr[f]) == 0 ||
		    keystore_delete_epoch(k->ks, old.items[i].id, NULL) != CABLES_OK)
			continue;
		/* A downgrade an attacker on the path cannot cause (the answer is signed), but one worth seeing. */
		if (fpr[f][0] == '\0')
			log_warnx("keyd: %s: the key server's answer has no usable epoch key: stored epoch key %.16s "
			    "removed (ForwardSecrecy decides: prefer falls back to the long-term key)", addr,
			    old.items[i].fingerprint);
	}
	key_list_release(&old);
}

/* The keys a key server gave for addr (normalised) into the store (pins permitting); kept gets them. */
static void
keep_peer_keys(struct keyd *k, struct keyd_conf *c, const char *addr, const struct x_result *res, time_t now,
    struct kept kept[2], char *why, size_t why_len)
{
	for (size_t j = 0; j < res->n; j++) {
		const struct x_key *xk = &res->keys[j];

		if (strcmp(xk->format, "smime") == 0) {
			X509 *cert = smime_cert_from_der(xk->data, xk->len);

			if (cert == NULL)
				snprintf(why, why_len, "a certificate in the answer cannot be decoded");
			else
				store_cert(k, c, addr, cert, "peer", now, &kept[0], why, why_len);
			X509_free(cert);
		} else {
			struct dns_record d = { xk->data, xk->len, 0, 0, 0 };

			store_openpgpkey(k, c, addr, &d, "peer", now, &kept[1], why, why_len);
		}
	}
	forget_replaced(k, addr, "smime", "peer", &kept[0]);
	forget_replaced(k, addr, "pgp", "peer", &kept[1]);
	keep_peer_epoch(k, addr, res, kept, now, &c->cfg->addr);
}

/*
 * Ask norm's domain's key server (peer.h), in one request together with
 * the other addresses of the same domain in the client's request (others:
 * as the client gave them), so that mail to many users of one domain costs
 * one exchange.  The signed answer is authoritative for the keys the server
 * gave before (source "peer"): keys it gives are checked and stored (those
 * of the other addresses too, for their own lookups a moment later), those
 * it no longer gives are deleted.  A server that fails (unreachable, a
 * signature by another key, a replay) makes the lookup a temporary failure.
 */
static void
ask_peer(struct discovery *d)
{
	struct keyd *k = d->k;
	struct keyd_conf *c = d->c;
	const char *norm = d->norm;
	time_t now = d->now;
	const char *domain = strrchr(norm, '@') + 1;
	const char *batch[X_ADDRESSES_MAX];
	char *normed[X_ADDRESSES_MAX];
	struct peer_outcome po;
	struct kept kept[2] = { { .n = 0, .held = &d->held }, { .n = 0, .held = &d->held } };
	char why[CABLES_ERR_MAX + 64] = "";
	size_t n = 0, nn = 0;

	if (domain_list_match(&c->cfg->local_domains, domain))
		return;
	batch[n++] = norm;
	for (size_t i = 0; i < d->nothers && n < X_ADDRESSES_MAX; i++) {
		char *o = addr_normalize(d->others[i], &c->cfg->addr);
		bool dup = o == NULL || strcasecmp(strrchr(o, '@') + 1, domain) != 0;

		for (size_t j = 0; j < n && !dup; j++)
			dup = strcmp(batch[j], o) == 0;
		if (dup) {
			free(o);
			continue;
		}
		normed[nn++] = o;
		batch[n++] = o;
	}
	peer_ask(c->cfg, c->res, domain, batch, n, now, d->deadline, &po);
	pthread_mutex_lock(&k->lock);
	k->peer_asked++;
	if (po.status == PEER_FAILED)
		k->peer_failed++;
	pthread_mutex_unlock(&k->lock);
	if (po.status == PEER_FAILED) {
		log_warnx("keyd: %s: key server of %s: %s", norm, domain, po.reason);
		d->tempfail = true;
		d->proven_none = false;
		snprintf(d->reason, sizeof(d->reason), "key server: %.300s", po.reason);
	}
	for (size_t i = 0; po.status == PEER_ANSWERED && i < po.answer.n; i++) {
		struct x_result *res = &po.answer.results[i];
		char *addr = addr_normalize(res->address, &c->cfg->addr);

		if (addr == NULL)
			continue;
		if (strcmp(addr, norm) == 0) {
			keep_peer_keys(k, c, norm, res, now, kept, why, sizeof(why));
		} else {
			/* Another address of the request: its keys, fresh for its own lookup. */
			struct kept other[2] = { { .n = 0, .held = NULL }, { .n = 0, .held = NULL } };
			char other_why[CABLES_ERR_MAX + 64];

			keep_peer_keys(k, c, addr, res, now, other, other_why, sizeof(other_why));
			if (other[0].n + other[1].n > 0) {
				pthread_mutex_lock(&k->lock);
				keyd_cache_keys(k, addr, now, now + (time_t)keyd_cache_ttl(c->cfg, 3600));
				pthread_mutex_unlock(&k->lock);
			}
		}
		free(addr);
	}
	if (po.status == PEER_ANSWERED && kept[0].n + kept[1].n > 0) {
		d->any = true;
		d->ttl = 3600;
		log_info("keyd: %s: %zu key%s from the key server of %s", norm, kept[0].n + kept[1].n,
		    kept[0].n + kept[1].n == 1 ? "" : "s", domain);
	} else if (po.status == PEER_ANSWERED) {
		snprintf(d->reason, sizeof(d->reason), "key server of %s: %s", domain, why[0] != '\0' ? why : "no key for this address");
	}
	store_failed(d, &kept[0]);
	store_failed(d, &kept[1]);
	for (size_t i = 0; i < nn; i++)
		free(normed[i]);
	peer_outcome_release(&po);
}

/*
 * One key-server exchange per domain at a time: the lookups of a request run
 * side by side, and the first to ask a domain's key server asks about all
 * the request's addresses in that domain.  A lookup that finds an exchange
 * with its domain under way waits for it (within the deadline) and asks
 * the server itself only when that exchange gave no keys for norm.
 */
static void
ask_peer_shared(struct discovery *d)
{
	struct keyd *k = d->k;
	const char *norm = d->norm;
	char key[KEYD_ADDRESS_MAX + 8];
	long long left = d->deadline - monotonic_ms();
	struct timespec start;
	struct flight *f;
	time_t since;

	snprintf(key, sizeof(key), "@%s", strrchr(norm, '@') + 1);	/* a domain's flight: no address starts with '@' */
	clock_gettime(CLOCK_REALTIME, &start);
	pthread_mutex_lock(&k->lock);
	if ((f = keyd_flight_join(k, key)) != NULL) {
		keyd_flight_wait(k, f, &start, left > 0 ? (unsigned long)left : 0);
		keyd_flight_leave(k, f);
		pthread_mutex_unlock(&k->lock);
		if (keyd_cache_fresh(k, norm, d->now, &since)) {
			d->any = true;
			d->ttl = 3600;
			return;
		}
	} else {
		f = keyd_flight_begin(k, key);
		pthread_mutex_unlock(&k->lock);
		ask_peer(d);
		pthread_mutex_lock(&k->lock);
		keyd_flight_land(k, f);
		keyd_flight_leave(k, f);
		pthread_mutex_unlock(&k->lock);
		return;
	}
	ask_peer(d);
}

void
keyd_note_timeout(struct discovery *d, long long asked_ms, const char *what)
{
	long long at;
	bool silent;

	if (!d->unanswered)
		strlcpy_c(d->unanswered_why, what, sizeof(d->unanswered_why));
	d->unanswered = true;
	if (d->alive_ms > 0 && asked_ms >= d->alive_ms)
		d->silent_after_alive = true;
	if (d->probed || d->answered || d->c->cfg->unresponsive_time_ms == 0)
		return;
	/* Another lookup there got an answer: slow, not dead, and no probe to add to a busy resolver's load. */
	pthread_mutex_lock(&d->k->lock);
	silent = unresponsive_silent_since(&d->k->unresponsive, strrchr(d->norm, '@') + 1, d->started_ms) ==
	    UNRESPONSIVE_SILENT;
	pthread_mutex_unlock(&d->k->lock);
	if (silent) {
		d->probed = true;
		if (keyd_resolver_answers(d, monotonic_ms(), &at, d->alive_why, sizeof(d->alive_why)))
			d->alive_ms = at;
	}
}

/*
 * The DNS source of one record type: the records of d->norm, stored when
 * trusted and usable (the store is what is answered from); keys stored
 * from DNS that the zone no longer publishes are deleted.
 */
static void
source_dns(struct discovery *d, enum dns_key_type type)
{
	const char *rrtype = type == DNS_SMIMEA ? "SMIMEA" : "OPENPGPKEY", *source;
	const char *format = type == DNS_SMIMEA ? "smime" : "pgp";
	char why[CABLES_ERR_MAX + 64] = "";
	struct kept kept = { .n = 0, .held = &d->held };
	struct keyd *k = d->k;
	struct keyd_conf *c = d->c;
	struct dns_answer a;
	long long asked_ms = monotonic_ms();
	bool trusted;
	int rank;

	if (dns_lookup(c->res, d->norm, type, d->now, &a, NULL) != CABLES_OK) {
		keydstats_dns(type, DNS_TEMPFAIL, false);
		d->cacheable = false;
		return;
	}
	/*
	 * Whether the domain's servers answer at all (unresponsive.h): any
	 * answer (NXDOMAIN, NODATA, bogus, an error rcode) is one, kept at once
	 * for the other lookups at the domain to see; a timeout is not; a
	 * SERVFAIL says neither (a resolver answers it for its own troubles
	 * too, e.g. a forwarder it holds for down after another domain's
	 * queries were dropped).  At the first timeout the resolver is probed;
	 * a query asked after it answered the probe that times out too is the
	 * domain's silence, not the resolver's (condition 2).
	 */
	if (a.unanswered) {
		char what[160];

		snprintf(what, sizeof(what), "%s: %.100s", rrtype, a.reason);
		keyd_note_timeout(d, asked_ms, what);
	} else if (!a.servfail) {
		keyd_note_answered(d);
	}
	keydstats_dns(type, a.status, true);
	trusted = a.status == DNS_SECURE || (a.status == DNS_INSECURE && c->cfg->dnssec == DNSSEC_PREFER);
	pthread_mutex_lock(&k->lock);
	if (a.status == DNS_BOGUS)
		k->bogus++;
	if (a.status == DNS_INSECURE && !trusted)
		k->insecure++;
	pthread_mutex_unlock(&k->lock);
	if (a.status == DNS_BOGUS)
		log_warnx("keyd: %s %s: bogus DNSSEC answer, not used: %s", d->norm, rrtype, a.reason);
	/* Bogus is never "no key": whoever breaks a zone's signatures must not force plaintext. */
	if (a.status == DNS_TEMPFAIL || a.status == DNS_BOGUS)
		d->tempfail = true;
	if (a.status != DNS_SECURE_NONE)
		d->proven_none = false;
	/* "No key" from a proof of absence or from an unsigned zone may be cached; bogus or no answer not. */
	if (a.status != DNS_SECURE_NONE && a.status != DNS_INSECURE)
		d->cacheable = false;
	if (a.ttl < d->none_ttl)
		d->none_ttl = a.ttl;
	source = a.status == DNS_SECURE ? "dns-dnssec" : "dns-insecure";
	if (trusted && type == DNS_SMIMEA)
		store_smimea(k, c, d->norm, &a, source, d->now, &kept, why, sizeof(why));
	for (size_t i = 0; trusted && type == DNS_OPENPGPKEY && i < a.n; i++)
		store_openpgpkey(k, c, d->norm, &a.recs[i], source, d->now, &kept, why, sizeof(why));
	if (trusted || a.status == DNS_SECURE_NONE)
		forget_replaced(k, d->norm, format, "dns-", &kept);
	if (kept.n > 0 && (!d->any || a.ttl < d->ttl))
		d->ttl = a.ttl;
	d->any |= kept.n > 0;
	/* The reason that says most: records that could not be used, then bogus, tempfail, unsigned, none. */
	rank = a.n > 0 ? 4 : a.status == DNS_BOGUS ? 3 : a.status == DNS_TEMPFAIL ? 2 : a.status == DNS_INSECURE ? 1 : 0;
	if (kept.n == 0 && (d->reason[0] == '\0' || rank > d->best)) {
		snprintf(d->reason, sizeof(d->reason), "%s: %s: %s", rrtype, dns_status_name(a.status),
		    why[0] != '\0' ? why : a.reason);
		d->best = rank;
	}
	store_failed(d, &kept);
	dns_answer_release(&a);
}

static void source_smimea(struct discovery *d) { source_dns(d, DNS_SMIMEA); }
static void source_openpgpkey(struct discovery *d) { source_dns(d, DNS_OPENPGPKEY); }

/*
 * The domain's own key server, if it runs one and nothing was found yet:
 * found through DNS, so not while DNS fails (unless a Peer line names it),
 * and only in the time LookupTimeout leaves.
 */
static void
source_peer(struct discovery *d)
{
	if (!d->any && d->c->cfg->key_exchange && (!d->tempfail || peer_configured(d->c->cfg, strrchr(d->norm, '@') + 1)))
		ask_peer_shared(d);
}

/*
 * Last, the Web Key Directory (OpenPGP only); no WKD is simply no key.  Not
 * when a more trusted source failed: that failure must not hand the choice
 * to the web PKI.
 */
static void
source_wkd(struct discovery *d)
{
	struct keyd_conf *c = d->c;
	struct kept kept = { .n = 0, .held = &d->held };
	char why[CABLES_ERR_MAX + 64] = "";
	struct buf keys;

	if (d->any || d->tempfail || !c->cfg->wkd || domain_list_match(&c->cfg->local_domains, strrchr(d->norm, '@') + 1))
		return;
	if (wkd_fetch(c->cfg, c->res, d->norm, d->now, d->deadline, &keys, why, sizeof(why))) {
		struct dns_record r = { (uint8_t *)keys.data, keys.len, 0, 0, 0 };

		store_openpgpkey(d->k, c, d->norm, &r, "wkd", d->now, &kept, why, sizeof(why));
		buf_release(&keys);
		if (kept.n > 0) {
			d->any = true;
			d->ttl = 3600;
			log_info("keyd: %s: OpenPGP key from the Web Key Directory", d->norm);
		}
		forget_replaced(d->k, d->norm, "pgp", "wkd", &kept);
		store_failed(d, &kept);
	}
}

/* The discovery sources, asked in this order (each looks at what those before it found). */
const struct discovery_source discovery_sources[] = {
	{ "SMIMEA", source_smimea },
	{ "OPENPGPKEY", source_openpgpkey },
	{ "key server", source_peer },
	{ "WKD", source_wkd },
};
const size_t discovery_nsources = sizeof(discovery_sources) / sizeof(discovery_sources[0]);
