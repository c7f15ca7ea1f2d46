/*
 * dns - key discovery in DNS: OPENPGPKEY (RFC 7929) and SMIMEA (RFC 8162)
 * records, and the SRV/TXT/A/AAAA records of key exchange, with DNSSEC
 * validated in-process by libunbound from the configured trust anchor (by
 * default the root's) through every delegation.
 *
 * Why libunbound and not our own libldns validator: a validator that DNS
 * engineers trust must get NSEC3 closest-encloser proofs, opt-out, wildcard
 * proofs, proven insecurity (a signed "no DS" at the parent), CNAME/DNAME
 * chains, algorithm and digest downgrades and RFC 9276 iteration limits
 * right; unbound's validator does all of that, is maintained and fuzzed by
 * NLnet Labs, and is in Debian.  libldns stays for reading the anchor file
 * and for turning rdata into text.
 *
 * A lookup's answer is one of
 *
 *   secure       records found, validated up to a trust anchor
 *   secure-none  NSEC or NSEC3 proves there is no such record (a cacheable
 *                "no key"; the TTL is the proof's negative TTL)
 *   insecure     an answer from a zone that DNSSEC proves unsigned (the
 *                parent's signed denial of a DS), or that no trust anchor
 *                covers; only "DNSSEC prefer" may use it
 *   bogus        anything that should be signed and does not validate:
 *                bad or expired signatures, a DS matching no key, a zone
 *                whose parent has a DS served without signatures
 *                ("stripped"), a missing or broken denial proof.  Never
 *                "no key": callers treat it as a failure
 *   tempfail     no usable answer in time (timeout, SERVFAIL, network)
 *
 * with the reason in words.  The resolver's AD bit is never looked at:
 * unbound validates itself, forwarding its queries to the configured
 * server (or those of /etc/resolv.conf), with EDNS0 at 1232 bytes and TCP
 * on truncation.  Lookups may run from many threads at once; each is
 * bounded by its timeout (an unanswered query is cancelled).  unbound
 * caches the chain's DNSKEY and DS records, and answers, for their TTL
 * capped by dns_resolver_cap_ttl().  Validation uses the system clock; the
 * `now` arguments are kept for the callers' sake and not used.
 */
#ifndef CABLES_DNS_H
#define CABLES_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

enum dns_key_type { DNS_OPENPGPKEY, DNS_SMIMEA };
enum dns_status { DNS_SECURE, DNS_SECURE_NONE, DNS_INSECURE, DNS_BOGUS, DNS_TEMPFAIL };

const char *dns_status_name(enum dns_status s);

struct dns_record {
	uint8_t *data;		/* OPENPGPKEY: the key; SMIMEA: the certificate association data */
	size_t len;
	uint8_t usage, selector, mtype;	/* SMIMEA only */
};

struct dns_answer {
	enum dns_status status;
	struct dns_record *recs;
	size_t n;
	uint32_t ttl;		/* of the records, or the negative TTL (SOA) for secure-none */
	char reason[256];
	bool unanswered;	/* tempfail because no answer came in time, not for what an answer said */
	bool servfail;		/* tempfail: the resolver answered SERVFAIL (its own trouble, or the domain's) */
};

void dns_answer_release(struct dns_answer *a);

struct dns_resolver;

/*
 * server: "ADDRESS" or "ADDRESS@PORT" (numeric), or NULL for
 * /etc/resolv.conf.  anchors: a file of DS/DNSKEY records (read and
 * checked here).  timeout_ms bounds each lookup.  No thread is started
 * until the first lookup (so a daemon may fork after this).
 */
cables_status dns_resolver_new(const char *server, const char *anchors, unsigned int timeout_ms,
    struct dns_resolver **out, struct cables_err *err);
void dns_resolver_free(struct dns_resolver *r);

/*
 * Cache nothing (positive or negative) longer than seconds; call before
 * the first lookup.  keyd passes its CacheMaxTTL, so that when its own
 * cache asks again, this resolver asks its server again too.  (A caching
 * server behind Resolver keeps records for their own TTL, at most until
 * their signatures expire: that bound is the zone's, not ours.)
 */
cables_status dns_resolver_cap_ttl(struct dns_resolver *r, unsigned long seconds, struct cables_err *err);

/* "hex(first 28 octets of SHA-256(local part))._openpgpkey.DOMAIN." (or ._smimecert.), malloc'd. */
char *dns_owner_name(const char *local_part, const char *domain, enum dns_key_type t);

/* Look up the records of addr; the answer says what was found and how far to trust it. */
cables_status dns_lookup(struct dns_resolver *r, const char *addr, enum dns_key_type t, time_t now,
    struct dns_answer *out, struct cables_err *err);

/*
 * Records of other kinds at name (key exchange: the peer's SRV and TXT
 * records, its host's addresses), validated the same way; a CNAME chain is
 * followed and only records of the kind asked for are returned.  Each
 * record's data is its rdata in presentation form, NUL-terminated: "0 0
 * 8443 keys.b.test.", "\"v=cables1; ...\"", "127.0.0.1".  timeout_ms (if
 * less than the resolver's) bounds this lookup.
 */
enum dns_rr_kind { DNS_RR_SRV, DNS_RR_TXT, DNS_RR_A, DNS_RR_AAAA };
cables_status dns_lookup_name(struct dns_resolver *r, const char *name, enum dns_rr_kind kind, time_t now,
    unsigned int timeout_ms, struct dns_answer *out, struct cables_err *err);

/*
 * Is this resolver answering now?  Asks it for a random name
 * ("cables-probe-<16 hex digits>.ZONE", ZONE NULL or "" for the root),
 * which its cache cannot answer (no aggressive NSEC, set_options()): the
 * answer went through the same queue, forwarder and opinion of the
 * forwarder as every lookup's.  True when one came within timeout_ms (at
 * most the resolver's) with NOERROR or NXDOMAIN; why says what happened
 * either way.  unresponsive.h says what it is for.
 */
bool dns_probe(struct dns_resolver *r, const char *zone, unsigned int timeout_ms, char *why, size_t why_len);

#endif
