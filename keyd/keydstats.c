/* keydstats - cables-keyd's lock-free counters; see keydstats.h. */
#include "autoconfig.h"

#include <stdio.h>

#include "keydstats.h"
#include "metrics.h"

#define NOUTCOMES (KEYD_OUTCOME_REJECT + 1)
#define NSOURCES (KEYD_SOURCE_WKD + 1)
#define NTRUST (KEYD_TRUST_INSECURE + 1)
#define NDNSTYPES (DNS_SMIMEA + 1)
#define NDNSCLASSES (DNS_TEMPFAIL + 2)	/* the statuses, then no answer at all */

static metric_counter lookups[NOUTCOMES];
static metric_counter keys[NSOURCES][NTRUST];
static metric_counter dns[NDNSTYPES][NDNSCLASSES];
static metric_counter cache_hits[2];	/* negative, positive */
static metric_counter keyholder[KH_STATUS_MAX + 1];	/* by answer; the last: unreachable */

static const char *const dns_type_names[NDNSTYPES] = { "openpgpkey", "smimea" };
/* The dnssec label: how far DNSSEC vouches for a key (keys not from DNS: not-dns). */
static const char *const trust_words[NTRUST] = { "not-dns", "secure", "insecure" };

void
keydstats_lookup(enum keyd_outcome o)
{
	if ((unsigned int)o < NOUTCOMES)
		metric_inc(&lookups[o]);
}

void
keydstats_key(enum keyd_source s, enum keyd_trust t)
{
	if ((unsigned int)s < NSOURCES && (unsigned int)t < NTRUST)
		metric_inc(&keys[s][t]);
}

void
keydstats_dns(enum dns_key_type type, enum dns_status status, bool answered)
{
	unsigned int cls = answered ? (unsigned int)status : NDNSCLASSES - 1;

	if ((unsigned int)type < NDNSTYPES && cls < NDNSCLASSES)
		metric_inc(&dns[type][cls]);
}

void
keydstats_cache_hit(bool positive)
{
	metric_inc(&cache_hits[positive ? 1 : 0]);
}

void
keydstats_keyholder(enum kh_status answer)
{
	metric_inc(&keyholder[(unsigned int)answer < KH_STATUS_MAX ? (unsigned int)answer : KH_STATUS_MAX]);
}

void
keydstats_render(struct buf *out)
{
	char labels[128];

	metric_family(out, "cables_keyd_lookups_total", "counter", "Address lookups cables-keyd answered, by answer.");
	for (int o = 0; o < NOUTCOMES; o++) {
		snprintf(labels, sizeof(labels), "result=\"%s\"", keyd_outcome_name((enum keyd_outcome)o));
		metric_sample(out, "cables_keyd_lookups_total", labels, metric_get(&lookups[o]));
	}
	metric_family(out, "cables_keyd_keys_answered_total", "counter",
	    "Keys cables-keyd handed out in lookup answers, by where they came from and how far DNSSEC vouches for them.");
	for (int s = 0; s < NSOURCES; s++) {
		enum keyd_trust t = keyd_trust_of((enum keyd_source)s);	/* one trust per source: one series each */

		snprintf(labels, sizeof(labels), "source=\"%s\",dnssec=\"%s\"", keyd_source_name((enum keyd_source)s),
		    trust_words[t]);
		metric_sample(out, "cables_keyd_keys_answered_total", labels, metric_get(&keys[s][t]));
	}
	metric_family(out, "cables_keyd_dns_answers_total", "counter",
	    "DNS questions for key records, by record type and DNSSEC class of the answer (tempfail: no answer in time; error: the question could not be asked).");
	for (int t = 0; t < NDNSTYPES; t++)
		for (int c = 0; c < NDNSCLASSES; c++) {
			snprintf(labels, sizeof(labels), "type=\"%s\",dnssec=\"%s\"", dns_type_names[t],
			    c == NDNSCLASSES - 1 ? "error" : dns_status_name((enum dns_status)c));
			metric_sample(out, "cables_keyd_dns_answers_total", labels, metric_get(&dns[t][c]));
		}
	metric_family(out, "cables_keyd_cache_hits_total", "counter",
	    "Lookups answered from a cache: keys a discovery stored while their TTL runs (positive), a cached no-key "
	    "(negative).");
	metric_sample(out, "cables_keyd_cache_hits_total", "cache=\"positive\"", metric_get(&cache_hits[1]));
	metric_sample(out, "cables_keyd_cache_hits_total", "cache=\"negative\"", metric_get(&cache_hits[0]));
	metric_family(out, "cables_keyd_keyholder_operations_total", "counter",
	    "Exchange signatures cables-keyd asked of cables-keyholder, by answer (unreachable: no connection or answer).");
	for (int r = 0; r <= KH_STATUS_MAX; r++) {
		snprintf(labels, sizeof(labels), "operation=\"exchange-sign\",result=\"%s\"",
		    r == KH_STATUS_MAX ? "unreachable" : kh_status_name((enum kh_status)r));
		metric_sample(out, "cables_keyd_keyholder_operations_total", labels, metric_get(&keyholder[r]));
	}
}
