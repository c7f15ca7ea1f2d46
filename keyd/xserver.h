/*
 * xserver - cables-keyd's key-exchange endpoint: HTTPS (libmicrohttpd with
 * GnuTLS) on ExchangeListen, POST /.well-known/cables/keys only, answers
 * signed with ExchangeKey (exchange.h).  Local users' public keys only.
 *
 * Every address asked about costs the same (one store lookup) and an
 * unknown one gets the answer of a known one without keys.  Per client
 * address: a token bucket of its own (ExchangeRateLimit requests a minute,
 * bursts of half that; ratelimit.h: a new client finds no room rather
 * than share another's bucket), at most 16 connections; bodies over 16 KiB get 413,
 * malformed requests 400 with the reason in JSON, other paths 404, other
 * methods 405, too many requests 429.
 */
#ifndef CABLES_XSERVER_H
#define CABLES_XSERVER_H

#include "config.h"
#include "status.h"

#include "exchange.h"

struct keyd;
struct xserver;

/*
 * Read the TLS certificate and its key and bind ExchangeListen (before
 * privileges are dropped: a port below 1024 works, the key files may be
 * root's), then start serving keys from k (after any fork: threads start
 * here).  Answers are signed through signer (cables-keyholder holds
 * ExchangeKey; keyd never reads it); what it points to must outlive the server.
 */
cables_status xserver_prepare(const struct config *cfg, const struct x_signer *signer, struct xserver **out,
    struct cables_err *err);
cables_status xserver_start(struct xserver *x, struct keyd *k, struct cables_err *err);
void xserver_stop(struct xserver *x);

/* Counters, as "name=value" lines, for keyd's stats. */
struct buf;
void xserver_stats(struct xserver *x, struct buf *out);
/* The same counters as Prometheus text (metrics.h); nothing when x is NULL (no ExchangeListen). */
void xserver_metrics(struct xserver *x, struct buf *out);

#endif
