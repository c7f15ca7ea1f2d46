/*
 * metrics - counters and histograms that any thread bumps without a lock
 * (C11 atomics, relaxed order: one atomic add per event), rendered on
 * demand in the Prometheus text exposition format (0.0.4); and the
 * MetricsListen syntax (metrics_server.h serves the text).
 *
 * A program keeps its counters in static arrays indexed by enums whose
 * names are fixed words, so a label value is never taken from a message,
 * an address or a domain: the number of series is fixed at compile time
 * and nothing about who mailed whom is exposed.  Rendering reads each
 * counter once; a scrape during traffic may see a histogram's _sum a
 * moment behind its buckets, never a _count unequal to its +Inf bucket.
 *
 * The renderers append to a caller's struct buf; metrics_listen_parse()
 * fails with a status and a reason; nothing here logs.
 */
#ifndef CABLES_METRICS_H
#define CABLES_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "status.h"
#include "util.h"

typedef atomic_uint_least64_t metric_counter;

static inline void
metric_inc(metric_counter *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static inline uint64_t
metric_get(const metric_counter *c)
{
	return atomic_load_explicit((metric_counter *)c, memory_order_relaxed);
}

/* Upper bounds in seconds (Prometheus's defaults, plus 30 s and 60 s for big messages and slow lookups). */
#define METRIC_NBOUNDS 13
extern const double metric_bounds[METRIC_NBOUNDS];

struct metric_histogram {
	metric_counter bucket[METRIC_NBOUNDS + 1];	/* not cumulative; the last is above every bound */
	metric_counter sum_ns;
};

/* One observation of ns nanoseconds. */
void metric_observe(struct metric_histogram *h, uint64_t ns);
/* Observations so far (the sum of the buckets). */
uint64_t metric_histogram_count(const struct metric_histogram *h);

/* Monotonic nanoseconds, for durations. */
uint64_t metric_now_ns(void);

/*
 * Rendering.  metric_family() writes a family's HELP and TYPE lines
 * ("counter", "gauge", "histogram"); metric_sample() one sample, labels
 * being "" or 'name="value",...' made of fixed words; metric_histogram()
 * the _bucket, _sum and _count lines of one labelled histogram.
 */
void metric_family(struct buf *out, const char *name, const char *type, const char *help);
void metric_sample(struct buf *out, const char *name, const char *labels, uint64_t value);
void metric_histogram(struct buf *out, const char *name, const char *labels, const struct metric_histogram *h);

/*
 * MetricsListen's value: "ADDRESS:PORT", "[IPV6]:PORT", or inet:PORT@ADDRESS /
 * inet6:PORT@ADDRESS as elsewhere in cables.conf, with a numeric address
 * that must be a loopback one (127.0.0.0/8, ::1): the counters show
 * traffic patterns, which are nobody's business off this host.
 * CABLES_ERR_SYNTAX with the reason otherwise.
 */
cables_status metrics_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
    struct cables_err *err);

/*
 * Does an HTTP Host header name this host's loopback ("127.0.0.1:9464",
 * "[::1]:9464", "localhost", with or without a port)?  The server answers
 * only such requests: a web page the host's browser loads could otherwise
 * point a name of its own at 127.0.0.1 (DNS rebinding) and read the
 * counters as same-origin.
 */
bool metrics_host_is_loopback(const char *host);

#endif
