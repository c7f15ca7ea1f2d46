/*
 * wkd - the OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service)
 * as a discovery source for cables-keyd: the advanced method
 * (https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL),
 * then the direct one (https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL),
 * HASH being the z-base-32 SHA-1 of the lowercased local part.  Host names
 * are resolved through keyd's own resolver, never the system's; TLS is
 * checked against ExchangeCAFile (default: the system's CAs).  Trust is
 * the web PKI's, so keys from WKD rank below DNSSEC and signed key-server
 * answers (pins).
 *
 * Most domains have no WKD: anything but a 200 with key data is "none"
 * (never a temporary failure).
 */
#ifndef CABLES_WKD_H
#define CABLES_WKD_H

#include <time.h>

#include "config.h"
#include "dns.h"
#include "util.h"

/* The z-base-32 SHA-1 of local (lowercased first): 32 characters. */
void wkd_hash(const char *local, char out[33]);

/* The keys WKD has for addr (binary OpenPGP, as served) into keys; false with the reason in why when none. */
bool wkd_fetch(const struct config *cfg, struct dns_resolver *res, const char *addr, time_t now, long long deadline,
    struct buf *keys, char *why, size_t why_len);

#endif
