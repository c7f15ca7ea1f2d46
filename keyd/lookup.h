/*
 * lookup - what cables-keyd answers for an address: the usable keys the
 * store holds locally (imported, generated) or found by a discovery whose
 * TTL still runs, else the keys its domain publishes in DNS (OPENPGPKEY;
 * SMIMEA with the usages smimea.h describes) when DNSSEC proves them (or,
 * under "DNSSEC prefer", when the zone is unsigned), else those its Cables
 * key server gives in a signed answer (peer.h), else its Web Key Directory
 * (wkd.h); found keys are stored with their source ("dns-dnssec",
 * "dns-insecure", "peer", "wkd") and pinned (On-KeyChange).  A certificate
 * the milter harvested from signed mail ranks below all of these: it is
 * the answer only when discovery (or the negative cache) found no key, and
 * only while it is the address's pinned key; a key discovery finds takes
 * the pin from it (pins.h), and a failed discovery (bogus, no answer) is a
 * temporary failure, never an answer from the harvested key.
 *
 * Caching follows the records' TTLs, clamped by CacheMinTTL/CacheMaxTTL: a
 * key found in DNS is handed out from the store until its TTL runs out,
 * then asked for again (a key the zone replaced or withdrew is deleted; one
 * that cannot be confirmed is not used: the answer is a temporary
 * failure).  Proven absence is kept in a bounded negative cache for the SOA
 * minimum.
 *
 * Lookups run concurrently; lookups of one address while its DNS query is
 * out share that query's outcome, and every lookup answers within
 * LookupTimeout.
 */
#ifndef CABLES_LOOKUP_H
#define CABLES_LOOKUP_H

#include <time.h>

#include <openssl/x509.h>

#include "config.h"
#include "dns.h"
#include "exchange.h"
#include "keydproto.h"
#include "keystore.h"
#include "util.h"

struct keyd;
struct smime_cache;

/*
 * cfg, res and anchors (TrustAnchors, may be NULL) become keyd's: they are
 * freed with it, or after a reconfiguration once no lookup uses them.
 */
struct keyd *keyd_new(struct config *cfg, struct keystore *ks, struct dns_resolver *res, X509_STORE *anchors,
    const char *gpg_home);
void keyd_free(struct keyd *k);

/*
 * Another process sharing the key store deleted a key of norm or changed
 * its pin (NULL: any address may have changed): forget what the caches say
 * of it, so that the next lookup reads the store again.
 */
void keyd_store_changed(struct keyd *k, const char *norm);

/* A new configuration (SIGHUP), taken over as keyd_new() does. */
void keyd_reconfigure(struct keyd *k, struct config *cfg, struct dns_resolver *res, X509_STORE *anchors);

/*
 * Can the key in store row r be handed out now?  Certificates get the full
 * usability checks (decoded through certs, which may be NULL); OpenPGP keys
 * only their expiry (the milter checks them in full).  why says why not.
 */
bool keyd_record_usable(const struct key_record *r, const struct addr_opts *ao, struct smime_cache *certs, time_t now,
    char *why, size_t why_len);

/*
 * Append the reply lines for addr ("key=..." lines, then one "result=" line)
 * to out.  others are the addresses of the same request (addr may be among
 * them): a key server asked about addr is asked about those of its domain
 * in the same request.
 */
void keyd_lookup(struct keyd *k, const char *addr, const char *const *others, size_t nothers, time_t now,
    struct buf *out);

/*
 * The answer to a check of addr (keydproto.h), from what keyd holds only,
 * never a query on the network: "cached" when a lookup would answer from
 * the store or the negative cache, else "unresponsive" (with the seconds
 * left and why) when addr's domain is marked (unresponsive.h), else
 * "lookup".
 */
void keyd_check(struct keyd *k, const char *addr, time_t now, struct keyd_check *out);

/*
 * The store's writer (keydproto.h): import a public key (checked, merged
 * with what the store holds), delete keys, list every key.  Each appends
 * its reply lines, or one "error=" line, to out.
 */
void keyd_import(struct keyd *k, const struct keyd_request *req, time_t now, struct buf *out);
void keyd_delete(struct keyd *k, const struct keyd_request *req, struct buf *out);
void keyd_list(struct keyd *k, struct buf *out);

/*
 * For the key-exchange endpoint: the usable public keys of local user
 * addr (its own keys, never ones learned from elsewhere), into out (whose
 * address is addr as asked).  False when addr is not in LocalDomains (out
 * then has no keys).  The cost is the same whether the address exists.
 */
bool keyd_public_keys(struct keyd *k, const char *addr, time_t now, struct x_result *out, bool *incomplete);

/*
 * Which epoch key of local user addr may be served (KH_OP_EPOCH_CURRENT:
 * cables-keyholder checks the row's seal, private key and issuer, which
 * keyd cannot): digest is the SHA-256 of that certificate's DER; *found
 * false when there is none.  format: "smime", or "pgp" for the OpenPGP
 * epoch key (digest: of its public form, pgp_epoch.h).  The store is writable by the milter, so keyd
 * serves an epoch row only when this names it; with no check set, none.
 */
typedef cables_status keyd_epoch_fn(void *arg, const char *addr, const char *format, uint8_t digest[32], bool *found,
    struct cables_err *err);
void keyd_set_epoch_check(struct keyd *k, keyd_epoch_fn *fn, void *arg);

/*
 * Which long-term keys of local user addr may be served (KH_OP_VOUCH:
 * cables-keyholder checks that it holds each one's private key, which keyd
 * cannot): the SHA-256 of each one's public data into digests (room for
 * KH_VOUCH_MAX), *n how many.  The store is writable by the milter, so keyd
 * serves a local user's key only when this names it; with none set, none.
 */
typedef cables_status keyd_vouch_fn(void *arg, const char *addr, uint8_t (*digests)[32], size_t *n,
    struct cables_err *err);
void keyd_set_vouch(struct keyd *k, keyd_vouch_fn *fn, void *arg);

/* The LookupTimeout in force, in ms. */
unsigned long keyd_lookup_timeout_ms(struct keyd *k);

/* Append "name=value" lines of counters. */
void keyd_stats(struct keyd *k, struct buf *out);
/* Append the lookups' counters (these and keydstats.h's) as Prometheus text (metrics.h). */
void keyd_metrics(struct keyd *k, struct buf *out);

#endif
