/* metrics - lock-free counters, Prometheus text, MetricsListen; see metrics.h. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "metrics.h"

const double metric_bounds[METRIC_NBOUNDS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

uint64_t
metric_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
metric_observe(struct metric_histogram *h, uint64_t ns)
{
	size_t i = 0;

	/* Integer bounds in ns: no floating point on the message path. */
	static const uint64_t bounds_ns[METRIC_NBOUNDS] = {
		5000000u, 10000000u, 25000000u, 50000000u, 100000000u, 250000000u, 500000000u, 1000000000u,
		2500000000u, 5000000000u, 10000000000u, 30000000000u, 60000000000u
	};

	while (i < METRIC_NBOUNDS && ns > bounds_ns[i])
		i++;
	atomic_fetch_add_explicit(&h->sum_ns, ns, memory_order_relaxed);
	metric_inc(&h->bucket[i]);
}

uint64_t
metric_histogram_count(const struct metric_histogram *h)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= METRIC_NBOUNDS; i++)
		n += metric_get(&h->bucket[i]);
	return n;
}

void
metric_family(struct buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void
metric_sample(struct buf *out, const char *name, const char *labels, uint64_t value)
{
	if (labels[0] != '\0')
		buf_printf(out, "%s{%s} %llu\n", name, labels, (unsigned long long)value);
	else
		buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

void
metric_histogram(struct buf *out, const char *name, const char *labels, const struct metric_histogram *h)
{
	uint64_t cumulative = 0, sum = metric_get(&h->sum_ns);
	const char *comma = labels[0] != '\0' ? "," : "";

	for (size_t i = 0; i <= METRIC_NBOUNDS; i++) {
		cumulative += metric_get(&h->bucket[i]);
		if (i < METRIC_NBOUNDS)
			buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, comma, metric_bounds[i],
			    (unsigned long long)cumulative);
		else
			buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, comma,
			    (unsigned long long)cumulative);
	}
	if (labels[0] != '\0') {
		buf_printf(out, "%s_sum{%s} %llu.%09llu\n", name, labels, (unsigned long long)(sum / 1000000000u),
		    (unsigned long long)(sum % 1000000000u));
		buf_printf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cumulative);
	} else {
		buf_printf(out, "%s_sum %llu.%09llu\n", name, (unsigned long long)(sum / 1000000000u),
		    (unsigned long long)(sum % 1000000000u));
		buf_printf(out, "%s_count %llu\n", name, (unsigned long long)cumulative);
	}
}

/* ---- MetricsListen ---- */

static bool
is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

bool
metrics_host_is_loopback(const char *host)
{
	char name[INET6_ADDRSTRLEN + 1];
	const char *end, *colon;
	struct sockaddr_storage ss;
	size_t n;

	memset(&ss, 0, sizeof(ss));
	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL || (end[1] != '\0' && end[1] != ':'))
			return false;
		n = (size_t)(end - host - 1);
		if (n >= sizeof(name))
			return false;
		memcpy(name, host + 1, n);
		name[n] = '\0';
		ss.ss_family = AF_INET6;
		return inet_pton(AF_INET6, name, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1 && is_loopback(&ss);
	}
	colon = strchr(host, ':');
	n = colon != NULL ? (size_t)(colon - host) : strlen(host);
	if (n >= sizeof(name) || (colon != NULL && strchr(colon + 1, ':') != NULL))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0)
		return true;
	ss.ss_family = AF_INET;
	return inet_pton(AF_INET, name, &((struct sockaddr_in *)&ss)->sin_addr) == 1 && is_loopback(&ss);
}

cables_status
metrics_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len, struct cables_err *err)
{
	char host[INET6_ADDRSTRLEN + 1], *end;
	const char *colon, *port_s;
	unsigned long port;
	size_t hlen;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(spec, "inet:", 5) == 0 || strncmp(spec, "inet6:", 6) == 0) {
		if (!inet_spec_parse(spec, ss, len))
			return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not inet:PORT@ADDRESS or inet6:PORT@ADDRESS "
			    "(a numeric address)", spec);
	} else {
		if (spec[0] == '[') {
			const char *close = strchr(spec, ']');

			if (close == NULL || close[1] != ':')
				goto syntax;
			hlen = (size_t)(close - spec - 1);
			if (hlen >= sizeof(host))
				goto syntax;
			memcpy(host, spec + 1, hlen);
			port_s = close + 2;
		} else {
			colon = strrchr(spec, ':');
			if (colon == NULL || (hlen = (size_t)(colon - spec)) >= sizeof(host) || memchr(spec, ':', hlen))
				goto syntax;
			memcpy(host, spec, hlen);
			port_s = colon + 1;
		}
		host[hlen] = '\0';
		if (*port_s < '0' || *port_s > '9')
			goto syntax;
		errno = 0;
		port = strtoul(port_s, &end, 10);
		if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
			goto syntax;
		if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
			ss->ss_family = AF_INET;
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
			*len = sizeof(struct sockaddr_in);
		} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
			ss->ss_family = AF_INET6;
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
			*len = sizeof(struct sockaddr_in6);
		} else {
			goto syntax;
		}
	}
	if (!is_loopback(ss))
		return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not a loopback address (127.0.0.0/8 or ::1): the "
		    "counters show traffic patterns; put a proxy with authentication in front to export them", spec);
	return CABLES_OK;
syntax:
	return cables_fail(err, CABLES_ERR_SYNTAX, "'%s' is not ADDRESS:PORT, [IPV6]:PORT or inet:PORT@ADDRESS with a "
	    "numeric address", spec);
}
