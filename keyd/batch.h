/*
 * batch - the lookups of one request, side by side, within one deadline.
 *
 * A request's addresses are looked up by a bounded pool of worker threads
 * (BATCH_WORKERS).  A domain whose lookups finish may use them all; one
 * whose lookups have not finished for BATCH_SLOW_MS (its servers do not
 * answer) gets at most BATCH_PER_DOMAIN, so that it cannot take every
 * worker from the others.  batch_run() returns when every lookup is done
 * or at the deadline, whichever comes first; an address whose lookup had
 * not finished by then (still running, or never begun) is answered
 * "result=ADDRESS tempfail reason=..." for itself only.  Lookups still
 * running go on in the background (what they find lands in keyd's store
 * and caches for the next attempt); their answers are dropped.
 *
 * The lookup function is a parameter so that the scheduling can be tested
 * without DNS; keyd passes keyd_lookup().  Nothing here logs.
 */
#ifndef CABLES_BATCH_H
#define CABLES_BATCH_H

#include <stddef.h>

#include "util.h"

#define BATCH_WORKERS 16
#define BATCH_PER_DOMAIN 4
#define BATCH_SLOW_MS 200
/* keyd answers a request by LookupTimeout plus this (a lookup begun at once ends by LookupTimeout). */
#define BATCH_MARGIN_MS 250

/*
 * Look up addr, appending its reply lines ("key=" lines, then one
 * "result=" line) to out.  all/nall are every address of the request (for
 * a key server asked about several of its users at once).  Called from
 * worker threads, possibly after batch_run() has returned: arg must
 * outlive the lookups (keyd's does: it lives as long as the daemon).
 */
typedef void batch_lookup_fn(void *arg, const char *addr, const char *const *all, size_t nall, struct buf *out);

/*
 * Look up the n addresses with lookup(arg, ...), waiting at most
 * deadline_ms, and append their reply lines to out in the order given.
 * Returns how many addresses were answered "tempfail" because their lookup
 * did not finish in time.
 */
size_t batch_run(batch_lookup_fn *lookup, void *arg, const char *const *addrs, size_t n, unsigned long deadline_ms,
    struct buf *out);

#endif
