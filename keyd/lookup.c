/* lookup - the answers of cables-keyd; see lookup.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "keydproto.h"
#include "log.h"
#include "lookup.h"
#include "pgp.h"
#include "smime.h"

#define NEG_CACHE 1024

struct neg_entry {
	char *addr;		/* normalised */
	time_t until;
	char reason[128];
};

struct keyd {
	const struct config *cfg;
	struct keystore *ks;
	struct dns_resolver *res;
	const char *gpg_home;
	struct smime_cache *certs;	/* parsed certificates, by the digest of their DER */
	pthread_mutex_t lock;	/* the resolver, the cache and the counters */
	struct neg_entry neg[NEG_CACHE];
	unsigned long lookups, from_store, from_dns, negative_hits, none, tempfail, bogus, insecure;
};

struct keyd *
keyd_new(const struct config *cfg, struct keystore *ks, struct dns_resolver *res, const char *gpg_home)
{
	struct keyd *k = xcalloc(1, sizeof(*k));

	k->cfg = cfg;
	k->ks = ks;
	k->res = res;
	k->gpg_home = gpg_home;
	k->certs = smime_cache_new(4096);
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

void
keyd_free(struct keyd *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < NEG_CACHE; i++)
		free(k->neg[i].addr);
	smime_cache_free(k->certs);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

void
keyd_reconfigure(struct keyd *k, const struct config *cfg, struct dns_resolver *res,
    const struct config **old_cfg, struct dns_resolver **old_res)
{
	pthread_mutex_lock(&k->lock);
	*old_cfg = k->cfg;
	*old_res = k->res;
	k->cfg = cfg;
	k->res = res;
	/* Negative answers were judged under the old rules (DNSSEC mode, anchors). */
	for (size_t i = 0; i < NEG_CACHE; i++) {
		free(k->neg[i].addr);
		k->neg[i].addr = NULL;
	}
	pthread_mutex_unlock(&k->lock);
}

static size_t
neg_slot(const char *addr)
{
	size_t h = 5381;

	for (const char *p = addr; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % NEG_CACHE;
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

/* How far a stored key is trusted, from where it came: found in DNS (validated or not), else held locally. */
static const char *
trust_of(const char *source)
{
	if (strcmp(source, "dns-dnssec") == 0)
		return "dnssec";
	if (strcmp(source, "dns-insecure") == 0)
		return "insecure";
	return "local";
}

static size_t
store_keys(struct keyd *k, const char *norm, time_t now, struct buf *out)
{
	struct key_list keys;
	size_t n = 0;

	if (keystore_lookup(k->ks, norm, NULL, &keys, NULL) != CABLES_OK)
		return 0;
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		char why[CABLES_ERR_MAX];

		if (!keyd_record_usable(r, &k->cfg->addr, k->certs, now, why, sizeof(why)))
			continue;
		buf_printf(out, "key=%s format=%s source=%s trust=%s fingerprint=%s expires=%lld\n", norm, r->format,
		    r->source, trust_of(r->source), r->fingerprint, r->not_after);
		n++;
	}
	key_list_release(&keys);
	return n;
}

/* Put r into the store; a failure is logged (the lookup then answers from what the store has). */
static void
put(struct keyd *k, const struct key_record *r, time_t now)
{
	struct cables_err err;

	if (keystore_put(k->ks, r, now, &err) != CABLES_OK)
		log_warnx("keyd: cannot store the %s key of %s found in DNS: %s", r->format, r->address, err.msg);
}

/* An SMIMEA 3 0 0 record: the certificate, if usable for addr, is stored. */
static void
store_smimea(struct keyd *k, const char *norm, const struct dns_record *d, const char *source, time_t now)
{
	struct key_record r;
	X509 *cert;

	if (d->usage != 3 || d->selector != 0 || d->mtype != 0)
		return;	/* DANE-EE with the full certificate only, so far */
	if ((cert = smime_cert_from_der(d->data, d->len)) == NULL)
		return;
	if (smime_cert_check(cert, norm, &k->cfg->addr, now, NULL) == CABLES_OK) {
		memset(&r, 0, sizeof(r));
		r.address = (char *)norm;
		strlcpy_c(r.format, "smime", sizeof(r.format));
		smime_cert_fingerprint(cert, r.fingerprint);
		r.public_data = d->data;
		r.public_len = d->len;
		smime_cert_validity(cert, &r.not_before, &r.not_after);
		r.source = (char *)source;
		put(k, &r, now);
	}
	X509_free(cert);
}

/* An OPENPGPKEY record: the key, if usable for addr (gpg checks it in keyd's own home), is stored. */
static void
store_openpgpkey(struct keyd *k, const char *norm, const struct dns_record *d, const char *source, time_t now)
{
	struct pgp_key_info info;
	struct key_record r;
	char fpr[PGP_FPR_LEN + 1];

	if (pgp_check(k->gpg_home, d->data, d->len, norm, &k->cfg->addr, PGP_USE_ENCRYPT, now, fpr, NULL) != CABLES_OK ||
	    pgp_inspect(k->gpg_home, d->data, d->len, &info, NULL) != CABLES_OK)
		return;
	memset(&r, 0, sizeof(r));
	r.address = (char *)norm;
	strlcpy_c(r.format, "pgp", sizeof(r.format));
	strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
	r.public_data = d->data;
	r.public_len = d->len;
	r.not_before = info.created;
	r.not_after = info.expires != 0 ? info.expires : KEYSTORE_NEVER_EXPIRES;
	r.source = (char *)source;
	put(k, &r, now);
	pgp_key_info_release(&info);
}

static unsigned long
clamp_ttl(struct keyd *k, unsigned long ttl_s)
{
	unsigned long ms = ttl_s * 1000;

	if (ms < k->cfg->cache_min_ttl_ms)
		ms = k->cfg->cache_min_ttl_ms;
	if (ms > k->cfg->cache_max_ttl_ms)
		ms = k->cfg->cache_max_ttl_ms;
	return ms / 1000;
}

void
keyd_lookup(struct keyd *k, const char *addr, time_t now, struct buf *out)
{
	char *norm = addr_normalize(addr, &k->cfg->addr), reason[300] = "";
	struct neg_entry *e;
	bool tempfail = false;
	size_t found;

	pthread_mutex_lock(&k->lock);
	k->lookups++;
	if (norm == NULL) {
		buf_printf(out, "result=%s none reason=not an address\n", addr);
		goto out;
	}
	if ((found = store_keys(k, norm, now, out)) > 0) {
		k->from_store++;
		buf_printf(out, "result=%s found\n", norm);
		goto out;
	}
	e = &k->neg[neg_slot(norm)];
	if (e->addr != NULL && strcmp(e->addr, norm) == 0 && e->until > now) {
		k->negative_hits++;
		k->none++;
		buf_printf(out, "result=%s none reason=%s (cached)\n", norm, e->reason);
		goto out;
	}
	for (int t = 0; t < 2; t++) {
		enum dns_key_type type = t == 0 ? DNS_SMIMEA : DNS_OPENPGPKEY;
		const char *rrtype = type == DNS_SMIMEA ? "SMIMEA" : "OPENPGPKEY", *source;
		struct dns_answer a;
		bool trusted;

		if (dns_lookup(k->res, norm, type, now, &a, NULL) != CABLES_OK)
			continue;
		trusted = a.status == DNS_SECURE || (a.status == DNS_INSECURE && k->cfg->dnssec == DNSSEC_PREFER);
		if (a.status == DNS_TEMPFAIL)
			tempfail = true;
		if (a.status == DNS_BOGUS) {
			k->bogus++;
			log_warnx("keyd: %s %s: bogus DNSSEC answer, not used: %s", norm, rrtype, a.reason);
		}
		if (a.status == DNS_INSECURE && !trusted)
			k->insecure++;
		/* Keys that pass the usability checks are stored; the store is what is answered from. */
		source = a.status == DNS_SECURE ? "dns-dnssec" : "dns-insecure";
		for (size_t i = 0; trusted && i < a.n; i++) {
			if (type == DNS_SMIMEA)
				store_smimea(k, norm, &a.recs[i], source, now);
			else
				store_openpgpkey(k, norm, &a.recs[i], source, now);
		}
		if (reason[0] == '\0' || a.status != DNS_SECURE_NONE)
			snprintf(reason, sizeof(reason), "%s: %s: %s", rrtype, dns_status_name(a.status), a.reason);
		if (a.status == DNS_SECURE_NONE && t == 1 && !tempfail) {
			/* Proven absent: remember for the SOA minimum (the last proof's). */
			free(e->addr);
			e->addr = xstrdup(norm);
			e->until = now + (time_t)clamp_ttl(k, a.ttl);
			keyd_sanitize(reason);
			strlcpy_c(e->reason, reason, sizeof(e->reason));
		}
		dns_answer_release(&a);
	}
	keyd_sanitize(reason);
	if ((found = store_keys(k, norm, now, out)) > 0) {
		k->from_dns++;
		buf_printf(out, "result=%s found\n", norm);
	} else if (tempfail) {
		k->tempfail++;
		buf_printf(out, "result=%s tempfail reason=%s\n", norm, reason);
	} else {
		k->none++;
		buf_printf(out, "result=%s none reason=%s\n", norm, reason);
	}
out:
	pthread_mutex_unlock(&k->lock);
	free(norm);
}

void
keyd_stats(struct keyd *k, struct buf *out)
{
	pthread_mutex_lock(&k->lock);
	buf_printf(out, "lookups=%lu\nfrom_store=%lu\nfrom_dns=%lu\nnegative_cache_hits=%lu\nnone=%lu\ntempfail=%lu\n"
	    "bogus=%lu\ninsecure_refused=%lu\n", k->lookups, k->from_store, k->from_dns, k->negative_hits, k->none,
	    k->tempfail, k->bogus, k->insecure);
	pthread_mutex_unlock(&k->lock);
}
