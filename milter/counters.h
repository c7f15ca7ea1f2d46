/*
 * counters - what cables-milter counts for /metrics (MetricsListen) and
 * cables-keyctl stats: message decisions by direction, class and format,
 * the time the milter spent deciding, keyholder calls by operation and
 * answer, and the certificate cache.
 *
 * Every counter is a C11 atomic in a static array indexed by enums (see
 * lib/metrics.h): counting is one relaxed atomic add, no lock, on any
 * thread; no label is taken from a message, so no address or domain is
 * exposed and the series are fixed.  counters_render() writes the
 * exposition text; certs may be NULL.
 */
#ifndef CABLES_COUNTERS_H
#define CABLES_COUNTERS_H

#include <stdint.h>

#include "khproto.h"
#include "outcome.h"
#include "util.h"

enum direction { DIRECTION_INBOUND, DIRECTION_OUTBOUND, DIRECTION_REINJECTION, DIRECTION_COUNT };

struct smime_cache;

/* One message decided (out is final: not VERDICT_CONTINUE), after elapsed_ns of the milter's work. */
void counters_message(enum direction d, const struct outcome *out, uint64_t elapsed_ns);

/* One keyholder call: its answer, or unreachable (no connection, no answer, a broken reply). */
void counters_keyholder(enum kh_op op, const struct kh_reply *rep, bool reached);

void counters_render(struct buf *out, struct smime_cache *certs);

#endif
