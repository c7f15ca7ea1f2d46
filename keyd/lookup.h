/*
 * lookup - what cables-keyd answers for an address: the usable keys the
 * store holds, else the keys its domain publishes in DNS (OPENPGPKEY,
 * SMIMEA 3 0 0) when DNSSEC proves them (or, under "DNSSEC prefer", when the
 * zone is unsigned), which are then stored (source "dns").  Answers from
 * DNS that found nothing are kept in a bounded negative cache for their
 * TTL (the SOA minimum, clamped by CacheMinTTL/CacheMaxTTL).
 *
 * Not yet here (issue 5): SMIMEA usages 1 and 2 (PKIX chains), sharing one
 * query between concurrent lookups of one address, and the milter asking
 * keyd instead of reading the store.
 */
#ifndef CABLES_LOOKUP_H
#define CABLES_LOOKUP_H

#include <time.h>

#include "config.h"
#include "dns.h"
#include "keystore.h"
#include "util.h"

struct keyd;
struct smime_cache;

struct keyd *keyd_new(const struct config *cfg, struct keystore *ks, struct dns_resolver *res, const char *gpg_home);
void keyd_free(struct keyd *k);

/* A new configuration and resolver (SIGHUP); the old ones are handed back to free once no lookup uses them. */
void keyd_reconfigure(struct keyd *k, const struct config *cfg, struct dns_resolver *res,
    const struct config **old_cfg, struct dns_resolver **old_res);

/*
 * Can the key in store row r be handed out now?  Certificates get the full
 * usability checks (decoded through certs, which may be NULL); OpenPGP keys
 * only their expiry (the milter checks them in full).  why says why not.
 */
bool keyd_record_usable(const struct key_record *r, const struct addr_opts *ao, struct smime_cache *certs, time_t now,
    char *why, size_t why_len);

/* Append the reply lines for addr ("key=..." lines, then one "result=" line) to out. */
void keyd_lookup(struct keyd *k, const char *addr, time_t now, struct buf *out);

/* Append "name=value" lines of counters. */
void keyd_stats(struct keyd *k, struct buf *out);

#endif
