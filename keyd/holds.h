/*
 * holds - cables-keyd's part of On-KeyNotFound hold (doc/hold.md): a
 * thread that looks at the held messages that are due (keystore.h), each
 * through held_try() (held.h) with keyd's own lookups as the key check, so
 * a key that appears in DNS or at a peer has the message released within
 * the backoff: keyd hands the record to the milter (action "release", or
 * "expire" when HoldTime passed), whose release thread (milter/release.h)
 * opens the sealed message and resubmits or returns it.  keyd reads the
 * envelope only, never the message, and sends the held notice.
 *
 * holds_start() takes the key store handle and the lookups (lookup.h),
 * which must outlive holds_stop().  The counters are for request=stats
 * and /metrics.
 */
#ifndef CABLES_HOLDS_H
#define CABLES_HOLDS_H

#include "keystore.h"
#include "lookup.h"
#include "status.h"
#include "util.h"

cables_status holds_start(struct keyd *k, struct keystore *ks, struct cables_err *err);
void holds_stop(void);
/* Look at the due records soon (after a resubmission was held again, a key import, ...). */
void holds_wake(void);

/* "held_waiting=N" ... lines for request=stats. */
void holds_stats(struct buf *out);
/* The same as metric families. */
void holds_metrics(struct buf *out);

#endif
