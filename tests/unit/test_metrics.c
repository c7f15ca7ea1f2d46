/*
 * test_metrics - MetricsListen takes loopback addresses only, in every
 * spelling cables.conf knows, and the server Host headers naming loopback
 * only; histograms put an observation in the first
 * bucket whose bound it does not exceed and render cumulatively with _count
 * equal to +Inf; counters bumped from several threads lose nothing; the
 * milter's counters file a refusal under the verdict the MTA got, whatever
 * the work before it, and no label ever comes from a message.
 */
#include "autoconfig.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counters.h"
#include "metrics.h"
#include "util.h"

static void
test_listen_loopback_only(void **state)
{
	static const struct { const char *spec; bool ok; } cases[] = {
		{ "127.0.0.1:9464", true },
		{ "127.1.2.3:1", true },
		{ "[::1]:9464", true },
		{ "inet:9464@127.0.0.1", true },
		{ "inet6:9464@::1", true },
		{ "inet:9464@localhost", true },
		{ "0.0.0.0:9464", false },
		{ "10.0.0.1:9464", false },
		{ "192.0.2.1:9464", false },
		{ "[::]:9464", false },
		{ "[::ffff:127.0.0.1]:9464", false },	/* loopback only through a mapping: refused, to be plain */
		{ "[2001:db8::1]:9464", false },
		{ "inet:9464@0.0.0.0", false },
		{ "localhost:9464", false },		/* a name: never resolved */
		{ "::1:9464", false },			/* IPv6 wants brackets */
		{ "127.0.0.1", false },
		{ "127.0.0.1:", false },
		{ "127.0.0.1:0", false },
		{ "127.0.0.1:65536", false },
		{ "127.0.0.1:94x", false },
		{ "127.0.0.1:-1", false },
		{ "[::1]9464", false },
		{ "", false },
	};
	struct sockaddr_storage ss;
	socklen_t len;
	struct cables_err err;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cables_status st = metrics_listen_parse(cases[i].spec, &ss, &len, &err);

		if ((st == CABLES_OK) != cases[i].ok)
			fail_msg("'%s': %s", cases[i].spec, st == CABLES_OK ? "accepted" : err.msg);
	}
	assert_int_equal(metrics_listen_parse("192.0.2.1:9464", &ss, &len, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "not a loopback address"));
}

/* DNS rebinding: a page in the host's browser may reach 127.0.0.1 under a name of its own. */
static void
test_host_header_must_be_loopback(void **state)
{
	static const struct { const char *host; bool ok; } cases[] = {
		{ "127.0.0.1:9464", true },
		{ "127.0.0.1", true },
		{ "127.9.9.9:1", true },
		{ "localhost:9464", true },
		{ "LOCALHOST", true },
		{ "[::1]:9464", true },
		{ "[::1]", true },
		{ "evil.example:9464", false },
		{ "127.0.0.1.evil.example", false },
		{ "localhost.evil.example", false },
		{ "10.0.0.1:9464", false },
		{ "[::2]:9464", false },
		{ "[::1", false },
		{ "[::1]x", false },
		{ "127.0.0.1:9464:1", false },
		{ "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (metrics_host_is_loopback(cases[i].host) != cases[i].ok)
			fail_msg("Host '%s': %s", cases[i].host, cases[i].ok ? "refused" : "accepted");
}

static void
test_histogram_buckets_and_text(void **state)
{
	struct metric_histogram h;
	struct buf out;

	(void)state;
	memset(&h, 0, sizeof(h));
	metric_observe(&h, 0);
	metric_observe(&h, 5000000);		/* exactly 0.005 s: le="0.005" */
	metric_observe(&h, 5000001);		/* just above: le="0.01" */
	metric_observe(&h, 70000000000ull);	/* above every bound: +Inf only */
	assert_int_equal(metric_histogram_count(&h), 4);
	buf_init(&out);
	metric_histogram(&out, "x_seconds", "d=\"in\"", &h);
	assert_string_equal(out.data,
	    "x_seconds_bucket{d=\"in\",le=\"0.005\"} 2\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.01\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.025\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.05\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.1\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.25\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"0.5\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"1\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"2.5\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"5\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"10\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"30\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"60\"} 3\n"
	    "x_seconds_bucket{d=\"in\",le=\"+Inf\"} 4\n"
	    "x_seconds_sum{d=\"in\"} 70.010000001\n"
	    "x_seconds_count{d=\"in\"} 4\n");
	buf_reset(&out);
	metric_family(&out, "y_total", "counter", "Ys.");
	metric_sample(&out, "y_total", "", 7);
	metric_sample(&out, "y_total", "k=\"v\"", 8);
	assert_string_equal(out.data, "# HELP y_total Ys.\n# TYPE y_total counter\ny_total 7\ny_total{k=\"v\"} 8\n");
	buf_release(&out);
}

#define THREADS 4
#define ADDS 100000

static metric_counter shared;
static struct metric_histogram shared_h;

static void *
bump(void *arg)
{
	(void)arg;
	for (int i = 0; i < ADDS; i++) {
		metric_inc(&shared);
		metric_observe(&shared_h, 1000);
	}
	return NULL;
}

static void
test_counters_lose_nothing_across_threads(void **state)
{
	pthread_t t[THREADS];

	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, bump, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(metric_get(&shared), THREADS * ADDS);
	assert_int_equal(metric_histogram_count(&shared_h), THREADS * ADDS);
	assert_int_equal(metric_get(&shared_h.sum_ns), (uint64_t)THREADS * ADDS * 1000);
}

/* The value of one sample line in the milter's text, or -1. */
static long long
sample(const char *text, const char *series)
{
	const char *p = strstr(text, series);

	if (p == NULL || (p != text && p[-1] != '\n') || p[strlen(series)] != ' ')
		return -1;
	return atoll(p + strlen(series) + 1);
}

static void
test_milter_counters_file_the_verdict_the_mta_got(void **state)
{
	struct outcome out;
	struct buf text;

	(void)state;
	/* Encrypted, then a refusal after it (the MTA refused a header change): counted as temp-failed. */
	outcome_set(&out, VERDICT_MODIFIED, "encrypted", "x");
	outcome_classify(&out, CLASS_ENCRYPTED, "smime");
	counters_message(DIRECTION_OUTBOUND, &out, 1000);
	out.verdict = VERDICT_TEMPFAIL;
	counters_message(DIRECTION_OUTBOUND, &out, 1000);
	outcome_set(&out, VERDICT_REJECT, "reject", "x");
	counters_message(DIRECTION_INBOUND, &out, 1000);
	outcome_set(&out, VERDICT_MODIFIED, "decrypted", "x");
	outcome_classify(&out, CLASS_DECRYPTED, "pgp");
	counters_message(DIRECTION_INBOUND, &out, 1000);
	outcome_set(&out, VERDICT_ACCEPT, "pass", "x");
	counters_message(DIRECTION_REINJECTION, &out, 1000);
	buf_init(&text);
	counters_render(&text, NULL);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"outbound\",verdict=\"encrypted\",format=\"smime\"}"), 1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"outbound\",verdict=\"temp-failed\",format=\"none\"}"), 1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"inbound\",verdict=\"rejected\",format=\"none\"}"), 1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"inbound\",verdict=\"decrypted\",format=\"pgp\"}"), 1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"reinjection\",verdict=\"passed\",format=\"none\"}"), 1);
	assert_int_equal(sample(text.data, "cables_message_processing_seconds_count{direction=\"outbound\"}"), 2);
	assert_int_equal(sample(text.data, "cables_message_processing_seconds_count{direction=\"inbound\"}"), 2);
	/* Series that cannot happen are not listed while zero. */
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"inbound\",verdict=\"encrypted\",format=\"smime\"}"), -1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"outbound\",verdict=\"signed\",format=\"pgp\"}"), -1);
	assert_int_equal(sample(text.data,
	    "cables_messages_total{direction=\"outbound\",verdict=\"plaintext-by-policy\",format=\"none\"}"), 0);
	/* No '@' or dot-name anywhere: the labels are fixed words. */
	assert_null(strchr(text.data, '@'));
	buf_release(&text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listen_loopback_only),
		cmocka_unit_test(test_host_header_must_be_loopback),
		cmocka_unit_test(test_histogram_buckets_and_text),
		cmocka_unit_test(test_counters_lose_nothing_across_threads),
		cmocka_unit_test(test_milter_counters_file_the_verdict_the_mta_got),
	};

	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
