/* dns - OPENPGPKEY and SMIMEA lookups with DNSSEC validation; see dns.h. */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <ldns/ldns.h>
#include <openssl/evp.h>

#include "dns.h"
#include "util.h"

#define ZONE_CACHE 64
#define DNS_KIND_TEXT 16	/* copy_records(): any other record type, as text */

struct zone_keys {
	char *zone;		/* lowercase, with the final dot */
	ldns_rr_list *keys;	/* validated DNSKEYs */
	time_t until;		/* re-fetch after this */
};

struct dns_resolver {
	ldns_resolver *res;	/* the template: each lookup queries through a clone of its own */
	ldns_rr_list *anchors;
	pthread_mutex_t lock;	/* the template and the zone cache */
	struct zone_keys zones[ZONE_CACHE];
	size_t next;		/* round-robin eviction */
};

/* One lookup: the resolver's shared parts, and the ldns resolver this lookup queries through. */
struct query {
	struct dns_resolver *r;
	ldns_resolver *res;
};

const char *
dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_SECURE:	return "secure";
	case DNS_SECURE_NONE:	return "secure-none";
	case DNS_INSECURE:	return "insecure";
	case DNS_BOGUS:		return "bogus";
	case DNS_TEMPFAIL:	return "tempfail";
	}
	return "?";
}

void
dns_answer_release(struct dns_answer *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->recs[i].data);
	free(a->recs);
	a->recs = NULL;
	a->n = 0;
}

static cables_status
read_anchors(const char *path, ldns_rr_list **out, struct cables_err *err)
{
	FILE *fp = fopen(path, "r");
	ldns_rr_list *list;
	int line = 1;

	if (fp == NULL)
		return cables_fail(err, CABLES_ERR_IO, "DNSSEC trust anchors %s: %s", path, strerror(errno));
	list = ldns_rr_list_new();
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, fp, NULL, NULL, NULL, &line);

		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL || s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		if (s != LDNS_STATUS_OK) {
			if (feof(fp))
				break;
			fclose(fp);
			ldns_rr_list_deep_free(list);
			return cables_fail(err, CABLES_ERR_SYNTAX, "DNSSEC trust anchors %s:%d: %s", path, line,
			    ldns_get_errorstr_by_id(s));
		}
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DS && ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNSKEY) {
			ldns_rr_free(rr);
			continue;
		}
		ldns_rr_list_push_rr(list, rr);
	}
	fclose(fp);
	if (ldns_rr_list_rr_count(list) == 0) {
		ldns_rr_list_deep_free(list);
		return cables_fail(err, CABLES_ERR_SYNTAX, "DNSSEC trust anchors %s: no DS or DNSKEY record", path);
	}
	*out = list;
	return CABLES_OK;
}

cables_status
dns_resolver_new(const char *server, const char *anchors, unsigned int timeout_ms, struct dns_resolver **out,
    struct cables_err *err)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	cables_status st;
	ldns_status s;

	*out = NULL;
	if (server == NULL) {
		if ((s = ldns_resolver_new_frm_file(&r->res, NULL)) != LDNS_STATUS_OK) {
			free(r);
			return cables_fail(err, CABLES_ERR_IO, "resolver from /etc/resolv.conf: %s",
			    ldns_get_errorstr_by_id(s));
		}
	} else {
		char *host = xstrdup(server), *at = strchr(host, '@'), *end;
		ldns_rdf *addr;
		unsigned long port = 53;

		if (at != NULL) {
			*at = '\0';
			port = strtoul(at + 1, &end, 10);
			if (at[1] == '\0' || *end != '\0' || port == 0 || port > 65535) {
				free(host);
				free(r);
				return cables_fail(err, CABLES_ERR_ARG, "Resolver %s: bad port", server);
			}
		}
		addr = ldns_rdf_new_frm_str(strchr(host, ':') != NULL ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, host);
		free(host);
		if (addr == NULL) {
			free(r);
			return cables_fail(err, CABLES_ERR_ARG, "Resolver %s: not a numeric address", server);
		}
		r->res = ldns_resolver_new();
		ldns_resolver_push_nameserver(r->res, addr);
		ldns_rdf_deep_free(addr);
		ldns_resolver_set_port(r->res, (uint16_t)port);
	}
	ldns_resolver_set_dnssec(r->res, true);
	ldns_resolver_set_edns_udp_size(r->res, 1232);
	ldns_resolver_set_fallback(r->res, true);
	ldns_resolver_set_timeout(r->res, tv);
	ldns_resolver_set_retry(r->res, 1);
	ldns_resolver_set_recursive(r->res, true);
	pthread_mutex_init(&r->lock, NULL);
	if ((st = read_anchors(anchors, &r->anchors, err)) != CABLES_OK) {
		dns_resolver_free(r);
		return st;
	}
	*out = r;
	return CABLES_OK;
}

void
dns_resolver_free(struct dns_resolver *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < ZONE_CACHE; i++) {
		free(r->zones[i].zone);
		ldns_rr_list_deep_free(r->zones[i].keys);
	}
	ldns_rr_list_deep_free(r->anchors);
	ldns_resolver_deep_free(r->res);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

char *
dns_owner_name(const char *local_part, const char *domain, enum dns_key_type t)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[57];
	size_t dlen = strlen(domain);

	if (!EVP_Digest(local_part, strlen(local_part), md, &mdlen, EVP_sha256(), NULL) || mdlen < 28)
		return NULL;
	hex_encode(md, 28, hex);
	hex[56] = '\0';
	return xasprintf("%s.%s.%s%s", hex, t == DNS_OPENPGPKEY ? "_openpgpkey" : "_smimecert", domain,
	    dlen > 0 && domain[dlen - 1] == '.' ? "" : ".");
}

/* The DNSKEY RRset of zone, if its RRSIG validates with one of trusted. */
static ldns_rr_list *
dnskey_set(ldns_resolver *res, const ldns_rdf *zone, const ldns_rr_list *trusted, time_t now, char *why,
    size_t why_len)
{
	ldns_pkt *pkt = NULL;
	ldns_rr_list *keys = NULL, *sigs = NULL;
	ldns_status s;

	s = ldns_resolver_query_status(&pkt, res, zone, LDNS_RR_TYPE_DNSKEY, LDNS_RR_CLASS_IN, LDNS_RD);
	if (s != LDNS_STATUS_OK || pkt == NULL) {
		snprintf(why, why_len, "DNSKEY query failed: %s", ldns_get_errorstr_by_id(s));
		goto out;
	}
	keys = ldns_pkt_rr_list_by_name_and_type(pkt, zone, LDNS_RR_TYPE_DNSKEY, LDNS_SECTION_ANSWER);
	sigs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_RRSIG, LDNS_SECTION_ANSWER);
	if (keys == NULL || sigs == NULL ||
	    (s = ldns_verify_time(keys, sigs, trusted, now, NULL)) != LDNS_STATUS_OK) {
		snprintf(why, why_len, "the DNSKEY set does not validate: %s",
		    keys == NULL || sigs == NULL ? "unsigned or empty" : ldns_get_errorstr_by_id(s));
		ldns_rr_list_deep_free(keys);
		keys = NULL;
	}
out:
	ldns_rr_list_deep_free(sigs);
	ldns_pkt_free(pkt);
	return keys;
}

/* The validated DNSKEYs of zone (a copy for the caller), from the cache or by building the chain from the anchors. */
static ldns_rr_list *
zone_keys(struct query *q, const ldns_rdf *zone, time_t now, char *why, size_t why_len)
{
	struct dns_resolver *r = q->r;
	char *name = ldns_rdf2str(zone);
	ldns_rr_list *keys = NULL, *trusted;
	ldns_status s = LDNS_STATUS_OK;
	struct zone_keys *z;

	str_lower(name);
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < ZONE_CACHE && keys == NULL; i++) {
		z = &r->zones[i];
		if (z->zone != NULL && strcmp(z->zone, name) == 0 && z->until > now)
			keys = ldns_rr_list_clone(z->keys);
	}
	pthread_mutex_unlock(&r->lock);
	if (keys != NULL) {
		free(name);
		return keys;
	}
	/* The trusted key(s) the chain from the anchors reaches (ldns returns the KSK only)... */
	trusted = ldns_fetch_valid_domain_keys_time(q->res, zone, r->anchors, now, &s);
	if (trusted == NULL) {
		snprintf(why, why_len, "no chain of trust to %s: %s", name, ldns_get_errorstr_by_id(s));
		free(name);
		return NULL;
	}
	/* ...then the zone's whole DNSKEY set, valid when a trusted key signed it. */
	keys = dnskey_set(q->res, zone, trusted, now, why, why_len);
	ldns_rr_list_deep_free(trusted);
	if (keys == NULL) {
		free(name);
		return NULL;
	}
	pthread_mutex_lock(&r->lock);
	z = &r->zones[r->next++ % ZONE_CACHE];
	free(z->zone);
	ldns_rr_list_deep_free(z->keys);
	z->zone = name;
	z->keys = ldns_rr_list_clone(keys);
	z->until = now + 3600;
	pthread_mutex_unlock(&r->lock);
	return keys;
}

/* RRSIGs in list covering type t. */
static ldns_rr_list *
sigs_covering(const ldns_rr_list *sigs, ldns_rr_type t)
{
	ldns_rr_list *out = ldns_rr_list_new();

	for (size_t i = 0; sigs != NULL && i < ldns_rr_list_rr_count(sigs); i++) {
		ldns_rr *sig = ldns_rr_list_rr(sigs, i);

		if (ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig)) == t)
			ldns_rr_list_push_rr(out, sig);
	}
	return out;
}

/* Verify rrset with the signatures in sigs (covering its type) by the zone's validated keys. */
static enum dns_status
verify_set(struct query *q, ldns_rr_list *rrset, const ldns_rr_list *sigs, const ldns_rdf *owner, time_t now,
    char *why, size_t why_len)
{
	ldns_rr_list *covering, *keys;
	ldns_rdf *zone;
	ldns_status s;

	covering = sigs_covering(sigs, ldns_rr_get_type(ldns_rr_list_rr(rrset, 0)));
	if (ldns_rr_list_rr_count(covering) == 0) {
		ldns_rr_list_free(covering);
		snprintf(why, why_len, "unsigned answer");
		return DNS_INSECURE;
	}
	zone = ldns_rr_rrsig_signame(ldns_rr_list_rr(covering, 0));
	if (zone == NULL || (ldns_dname_compare(zone, owner) != 0 && !ldns_dname_is_subdomain(owner, zone))) {
		ldns_rr_list_free(covering);
		snprintf(why, why_len, "signed by a zone that is not an ancestor of the name");
		return DNS_BOGUS;
	}
	if ((keys = zone_keys(q, zone, now, why, why_len)) == NULL) {
		ldns_rr_list_free(covering);
		return DNS_BOGUS;
	}
	s = ldns_verify_time(rrset, covering, keys, now, NULL);
	ldns_rr_list_free(covering);
	ldns_rr_list_deep_free(keys);
	if (s != LDNS_STATUS_OK) {
		snprintf(why, why_len, "signature does not validate: %s", ldns_get_errorstr_by_id(s));
		return DNS_BOGUS;
	}
	return DNS_SECURE;
}

/* The records of rrset into out: key records as their data, any other kind as its rdata in text. */
static void
copy_records(const ldns_rr_list *rrset, int kind, struct dns_answer *out)
{
	size_t n = ldns_rr_list_rr_count(rrset);

	out->recs = xcalloc(n + 1, sizeof(*out->recs));
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(rrset, i);
		struct dns_record *d = &out->recs[out->n];

		if (kind == DNS_OPENPGPKEY && ldns_rr_rd_count(rr) >= 1) {
			ldns_rdf *f = ldns_rr_rdf(rr, 0);

			d->len = ldns_rdf_size(f);
			d->data = xmalloc(d->len + 1);
			memcpy(d->data, ldns_rdf_data(f), d->len);
			out->n++;
		} else if (kind == DNS_SMIMEA && ldns_rr_rd_count(rr) >= 4 && ldns_rdf_size(ldns_rr_rdf(rr, 0)) == 1) {
			ldns_rdf *f = ldns_rr_rdf(rr, 3);

			d->usage = ldns_rdf_data(ldns_rr_rdf(rr, 0))[0];
			d->selector = ldns_rdf_data(ldns_rr_rdf(rr, 1))[0];
			d->mtype = ldns_rdf_data(ldns_rr_rdf(rr, 2))[0];
			d->len = ldns_rdf_size(f);
			d->data = xmalloc(d->len + 1);
			memcpy(d->data, ldns_rdf_data(f), d->len);
			out->n++;
		} else if (kind == DNS_KIND_TEXT) {
			struct buf text;

			buf_init(&text);
			for (size_t j = 0; j < ldns_rr_rd_count(rr); j++) {
				char *v = ldns_rdf2str(ldns_rr_rdf(rr, j));

				buf_printf(&text, "%s%s", j > 0 ? " " : "", v != NULL ? v : "");
				free(v);
			}
			buf_append(&text, "", 0);
			d->data = (uint8_t *)text.data;
			d->len = text.len;
			out->n++;
		}
		if (i == 0 || ldns_rr_ttl(rr) < out->ttl)
			out->ttl = ldns_rr_ttl(rr);
	}
}

/* NXDOMAIN or NODATA: proven by signed NSEC records, or not. */
static enum dns_status
denial(struct query *qr, const ldns_pkt *pkt, ldns_rdf *owner, ldns_rr_type type, time_t now,
    struct dns_answer *out)
{
	ldns_rr_list *nsecs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_NSEC, LDNS_SECTION_AUTHORITY);
	ldns_rr_list *sigs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_RRSIG, LDNS_SECTION_AUTHORITY);
	ldns_rr_list *soa = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_SOA, LDNS_SECTION_AUTHORITY);
	ldns_rr *q = ldns_rr_new();
	enum dns_status st = DNS_SECURE_NONE;

	ldns_rr_set_owner(q, ldns_rdf_clone(owner));
	ldns_rr_set_type(q, type);
	if (nsecs == NULL || ldns_rr_list_rr_count(nsecs) == 0) {
		st = sigs == NULL || ldns_rr_list_rr_count(sigs) == 0 ? DNS_INSECURE : DNS_BOGUS;
		snprintf(out->reason, sizeof(out->reason), st == DNS_INSECURE ? "no such record (unsigned answer)" :
		    "no such record, without an NSEC proof");
		goto out;
	}
	/* Each NSEC must itself validate, then together they must deny the name and type. */
	for (size_t i = 0; i < ldns_rr_list_rr_count(nsecs) && st == DNS_SECURE_NONE; i++) {
		ldns_rr_list *one = ldns_rr_list_new();

		ldns_rr_list_push_rr(one, ldns_rr_list_rr(nsecs, i));
		st = verify_set(qr, one, sigs, ldns_rr_owner(ldns_rr_list_rr(nsecs, i)), now, out->reason,
		    sizeof(out->reason));
		ldns_rr_list_free(one);
		if (st == DNS_SECURE)
			st = DNS_SECURE_NONE;
	}
	if (st == DNS_SECURE_NONE && ldns_dnssec_verify_denial(q, nsecs, sigs) != LDNS_STATUS_OK) {
		st = DNS_BOGUS;
		snprintf(out->reason, sizeof(out->reason), "the NSEC records do not prove there is no such record");
	}
	if (st == DNS_SECURE_NONE) {
		snprintf(out->reason, sizeof(out->reason), "no such record (proven by NSEC)");
		out->ttl = soa != NULL && ldns_rr_list_rr_count(soa) > 0 ?
		    ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(soa, 0), 6)) : 300;
	}
out:
	ldns_rr_free(q);
	ldns_rr_list_deep_free(nsecs);
	ldns_rr_list_deep_free(sigs);
	ldns_rr_list_deep_free(soa);
	return st;
}

/* Query owner/type through a clone of r's resolver and validate the answer; records copied by their type. */
static void
query(struct dns_resolver *r, ldns_rdf *owner, ldns_rr_type type, int kind, time_t now, unsigned int timeout_ms,
    struct dns_answer *out)
{
	ldns_pkt *pkt = NULL;
	ldns_rr_list *rrset = NULL, *sigs = NULL;
	ldns_status s;
	struct query q = { r, NULL };

	/*
	 * A clone per lookup: lookups run concurrently, and ldns marks a server
	 * that timed out as unreachable for good in the resolver it used.
	 */
	pthread_mutex_lock(&r->lock);
	q.res = ldns_resolver_clone(r->res);
	pthread_mutex_unlock(&r->lock);
	if (q.res == NULL) {
		out->status = DNS_TEMPFAIL;
		snprintf(out->reason, sizeof(out->reason), "out of memory");
		return;
	}
	if (timeout_ms > 0) {
		struct timeval tv = ldns_resolver_timeout(q.res);

		if ((unsigned long)tv.tv_sec * 1000 + (unsigned long)tv.tv_usec / 1000 > timeout_ms) {
			tv.tv_sec = (time_t)(timeout_ms / 1000);
			tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
			ldns_resolver_set_timeout(q.res, tv);
		}
	}
	s = ldns_resolver_query_status(&pkt, q.res, owner, type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (s != LDNS_STATUS_OK || pkt == NULL) {
		out->status = DNS_TEMPFAIL;
		snprintf(out->reason, sizeof(out->reason), "no answer: %s", ldns_get_errorstr_by_id(s));
		goto out;
	}
	if (ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NOERROR && ldns_pkt_get_rcode(pkt) != LDNS_RCODE_NXDOMAIN) {
		char *rc = ldns_pkt_rcode2str(ldns_pkt_get_rcode(pkt));

		out->status = DNS_TEMPFAIL;
		snprintf(out->reason, sizeof(out->reason), "the server answered %s", rc != NULL ? rc : "an error");
		free(rc);
		goto out;
	}
	rrset = ldns_pkt_rr_list_by_name_and_type(pkt, owner, type, LDNS_SECTION_ANSWER);
	if (rrset == NULL || ldns_rr_list_rr_count(rrset) == 0) {
		out->status = denial(&q, pkt, owner, type, now, out);
		goto out;
	}
	sigs = ldns_pkt_rr_list_by_type(pkt, LDNS_RR_TYPE_RRSIG, LDNS_SECTION_ANSWER);
	out->status = verify_set(&q, rrset, sigs, owner, now, out->reason, sizeof(out->reason));
	if (out->status == DNS_SECURE || out->status == DNS_INSECURE)
		copy_records(rrset, kind, out);
	if (out->status == DNS_SECURE)
		snprintf(out->reason, sizeof(out->reason), "%zu record%s, DNSSEC validated", out->n, out->n == 1 ? "" : "s");
out:
	ldns_rr_list_deep_free(rrset);
	ldns_rr_list_deep_free(sigs);
	ldns_pkt_free(pkt);
	ldns_resolver_deep_free(q.res);
}

cables_status
dns_lookup(struct dns_resolver *r, const char *addr, enum dns_key_type t, time_t now, struct dns_answer *out,
    struct cables_err *err)
{
	const char *at = strrchr(addr, '@');
	ldns_rdf *owner;
	char *local, *name;

	memset(out, 0, sizeof(*out));
	if (at == NULL || at == addr || at[1] == '\0')
		return cables_fail(err, CABLES_ERR_ARG, "'%s' is not an email address", addr);
	local = xstrndup(addr, (size_t)(at - addr));
	name = dns_owner_name(local, at + 1, t);
	free(local);
	owner = name != NULL ? ldns_dname_new_frm_str(name) : NULL;
	free(name);
	if (owner == NULL)
		return cables_fail(err, CABLES_ERR_ARG, "'%s': the domain is not a DNS name", addr);
	query(r, owner, t == DNS_OPENPGPKEY ? LDNS_RR_TYPE_OPENPGPKEY : LDNS_RR_TYPE_SMIMEA, (int)t, now, 0, out);
	ldns_rdf_deep_free(owner);
	return CABLES_OK;
}

cables_status
dns_lookup_name(struct dns_resolver *r, const char *name, enum dns_rr_kind kind, time_t now, unsigned int timeout_ms,
    struct dns_answer *out, struct cables_err *err)
{
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_SRV, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA };
	ldns_rdf *owner;

	memset(out, 0, sizeof(*out));
	if ((owner = ldns_dname_new_frm_str(name)) == NULL)
		return cables_fail(err, CABLES_ERR_ARG, "'%s' is not a DNS name", name);
	query(r, owner, types[kind], DNS_KIND_TEXT, now, timeout_ms, out);
	ldns_rdf_deep_free(owner);
	return CABLES_OK;
}
