/*
 * keydstats - what cables-keyd counts for /metrics (KeydMetricsListen) and
 * for request=stats (cables-keyctl stats): lookups by answer, keys handed
 * out by source and trust, DNS answers by record type and DNSSEC class,
 * cache hits, exchange signatures asked of cables-keyholder.  Each counter is a C11 atomic indexed by enums (lib/metrics.h):
 * one relaxed add, no lock, on any thread; no label comes from an address
 * or a domain.  keydstats_render() appends the exposition text of these
 * counters; keyd.c adds the older counters (lookup.h, xserver.h) to it.
 */
#ifndef CABLES_KEYDSTATS_H
#define CABLES_KEYDSTATS_H

#include <stdbool.h>

#include "dns.h"
#include "keydproto.h"
#include "khproto.h"
#include "util.h"

/* One lookup answered o. */
void keydstats_lookup(enum keyd_outcome o);
/* One key handed out in a lookup's answer. */
void keydstats_key(enum keyd_source s, enum keyd_trust t);
/* One DNS question for a key record: its answer's class, or none (answered false: it could not be asked). */
void keydstats_dns(enum dns_key_type type, enum dns_status status, bool answered);
/* One exchange signature asked of cables-keyholder: its answer, or KH_STATUS_MAX when it was not reached. */
void keydstats_keyholder(enum kh_status answer);
/* A lookup answered from a cache: the keys a discovery stored while their TTL runs, or a cached "no key". */
void keydstats_cache_hit(bool positive);

void keydstats_render(struct buf *out);

#endif
