/*
 * dns - key discovery in DNS: OPENPGPKEY (RFC 7929) and SMIMEA (RFC 8162)
 * records, with DNSSEC validated in-process by libldns against configured
 * trust anchors (DS or DNSKEY records in zone-file form).
 *
 * This is the first part of cables-keyd (issue 5): the daemon, its socket
 * protocol and its cache come on top.  A lookup's answer is one of
 *
 *   secure       records found, every RRSIG checked up to a trust anchor
 *   secure-none  NSEC proves there is no such record (a cacheable "no key")
 *   insecure     an answer without signatures (an unsigned zone); only
 *                "DNSSEC prefer" may use it
 *   bogus        signatures that do not validate, or expired: never used
 *   tempfail     no usable answer in time (timeout, SERVFAIL, network)
 *
 * with the reason in words.  Queries use EDNS0 (1232 bytes, DO bit) and
 * fall back to TCP on truncation; each lookup is bounded by the timeout.
 * The zone keys validated for a zone are cached for the resolver's life
 * (bounded), so a lookup costs one query once its zone is known.
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
	uint32_t ttl;		/* of the records, or the SOA minimum for secure-none */
	char reason[256];
};

void dns_answer_release(struct dns_answer *a);

struct dns_resolver;

/*
 * server: "ADDRESS" or "ADDRESS@PORT" (numeric), or NULL for
 * /etc/resolv.conf.  anchors: a file of DS/DNSKEY records.  timeout_ms
 * bounds each lookup.
 */
cables_status dns_resolver_new(const char *server, const char *anchors, unsigned int timeout_ms,
    struct dns_resolver **out, struct cables_err *err);
void dns_resolver_free(struct dns_resolver *r);

/* "hex(first 28 octets of SHA-256(local part))._openpgpkey.DOMAIN." (or ._smimecert.), malloc'd. */
char *dns_owner_name(const char *local_part, const char *domain, enum dns_key_type t);

/* Look up the records of addr; the answer says what was found and how far to trust it. */
cables_status dns_lookup(struct dns_resolver *r, const char *addr, enum dns_key_type t, time_t now,
    struct dns_answer *out, struct cables_err *err);

/*
 * Records of other kinds at name (key exchange: the peer's SRV and TXT
 * records, its host's addresses), validated the same way.  Each record's
 * data is its rdata in presentation form, NUL-terminated: "0 0 8443
 * keys.b.test.", "\"v=cables1; ...\"", "127.0.0.1".  timeout_ms (if less than
 * the resolver's) bounds this lookup.
 */
enum dns_rr_kind { DNS_RR_SRV, DNS_RR_TXT, DNS_RR_A, DNS_RR_AAAA };
cables_status dns_lookup_name(struct dns_resolver *r, const char *name, enum dns_rr_kind kind, time_t now,
    unsigned int timeout_ms, struct dns_answer *out, struct cables_err *err);

#endif
