/*
 * test_lookup - cables-keyd's lookups (keyd/lookup.c) with fake discovery
 * sources in place of DNS, key servers and WKD: "no key" is negative-cached
 * and answered from the cache; a temporary failure is not cached; sources
 * are asked in table order, each seeing what those before it found; two
 * lookups of one address at once share one discovery (a flight).  A
 * certificate harvested from mail ranks below discovery: an address with
 * only that is discovered, a key found outranks it (and takes the pin), and
 * it is the answer only when discovery found none (never on a failure).
 * A domain whose DNS did not answer is marked for the RCPT-time check only
 * with the evidence of keyd/unresponsive.h: not when another lookup there
 * got an answer meanwhile (slow, not dead), not when the resolver's probe
 * goes unanswered (the resolver, not the domain); a bogus answer marks
 * nothing; an answer clears the mark.  Keys discovery stored that the
 * store does not give back (a NOTIFY dropped their cache entry, the store
 * failed) are a temporary failure, never "no key".
 */
#include "autoconfig.h"

#include <sys/stat.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/sha.h>

#include "config.h"
#include "dns.h"
#include "exchange.h"
#include "keyd_private.h"
#include "keystore.h"
#include "keystore_backend.h"
#include "lookup.h"
#include "pins.h"
#include "smime.h"
#include "util.h"

static int calls[4];
static char dir[] = "/tmp/test_lookup.XXXXXX";

static void
fake_none(struct discovery *d)
{
	calls[0]++;
	snprintf(d->reason, sizeof(d->reason), "fake: no such record");
	d->none_ttl = 300;
}

static void
fake_tempfail(struct discovery *d)
{
	calls[1]++;
	d->tempfail = true;
	d->cacheable = false;
	snprintf(d->reason, sizeof(d->reason), "fake: no answer");
}

/* Like WKD: not asked after a failure of a source before it. */
static void
fake_after(struct discovery *d)
{
	if (!d->tempfail)
		calls[2]++;
}

static void
fake_slow(struct discovery *d)
{
	struct timespec t = { 0, 300 * 1000000L };

	__atomic_add_fetch(&calls[3], 1, __ATOMIC_SEQ_CST);
	nanosleep(&t, NULL);
	d->cacheable = false;
	snprintf(d->reason, sizeof(d->reason), "fake: slow");
}

/* The certificate a fake DNSSEC answer publishes (for whichever address is looked up). */
static X509 *published;

static void
fake_dnssec(struct discovery *d)
{
	struct key_record r;

	calls[0]++;
	memset(&r, 0, sizeof(r));
	r.address = (char *)d->norm;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(published, r.fingerprint);
	r.public_data = smime_cert_to_der(published, &r.public_len);
	smime_cert_validity(published, &r.not_before, &r.not_after);
	r.source = "dns-dnssec";
	pthread_mutex_lock(&d->k->pin_lock);
	if (keyd_pin_check(d->k, d->c, &r, d->now, &d->held) && keystore_put(d->k->ks, &r, d->now, NULL) == CABLES_OK) {
		d->any = true;
		d->ttl = 300;
	}
	pthread_mutex_unlock(&d->k->pin_lock);
	free(r.public_data);
}

/*
 * A domain whose servers do not answer: both its queries time out, the
 * second asked after the first (and after the probe, as source_dns() does).
 */
static void
fake_unanswered(struct discovery *d)
{
	calls[1]++;
	d->tempfail = true;
	d->cacheable = false;
	keyd_note_timeout(d, monotonic_ms(), "SMIMEA: no answer within 1000 ms");
	keyd_note_timeout(d, monotonic_ms() + 1, "OPENPGPKEY: no answer within 1000 ms");
	snprintf(d->reason, sizeof(d->reason), "SMIMEA: tempfail: no answer within 1000 ms");
}

/* A bogus answer: a failure, but the servers answered. */
static void
fake_bogus(struct discovery *d)
{
	calls[1]++;
	d->tempfail = true;
	d->cacheable = false;
	d->answered = true;
	snprintf(d->reason, sizeof(d->reason), "SMIMEA: bogus: DNSSEC validation failed");
}

/* Proven absence: an answer. */
static void
fake_none_answered(struct discovery *d)
{
	fake_none(d);
	keyd_note_answered(d);
}

/* A slow domain: another lookup there got an answer while this one timed out. */
static void
fake_slow_domain(struct discovery *d)
{
	struct discovery other = *d;

	keyd_note_answered(&other);
	fake_unanswered(d);
}

/* The resolver's probe: answered or not as probe_answers says; probes counts the calls. */
static bool probe_answers = true;
static int probes;
static char probe_zone[256];

static bool
fake_probe(struct keyd_conf *c, const char *zone, unsigned int timeout_ms, char *why, size_t why_len)
{
	(void)c;
	(void)timeout_ms;
	probes++;
	snprintf(probe_zone, sizeof(probe_zone), "%s", zone);
	snprintf(why, why_len, "cables-probe-0.%s %s", zone, probe_answers ? "answered NXDOMAIN" : "no answer");
	return probe_answers;
}

/* The _cables-policy TXT answer: txt_status, with the statement p=require when secure or insecure. */
static enum dns_status txt_status = DNS_SECURE_NONE;

static cables_status
fake_txt(struct keyd_conf *c, const char *name, time_t now, unsigned int timeout_ms, struct dns_answer *out,
    struct cables_err *err)
{
	(void)c;
	(void)name;
	(void)now;
	(void)timeout_ms;
	(void)err;
	memset(out, 0, sizeof(*out));
	out->status = txt_status;
	if (txt_status == DNS_SECURE || txt_status == DNS_INSECURE) {
		out->recs = xcalloc(1, sizeof(*out->recs));
		out->recs[0].data = (uint8_t *)xstrdup("\"v=cables1; p=require\"");
		out->n = 1;
	}
	snprintf(out->reason, sizeof(out->reason), "fake");
	return CABLES_OK;
}

static const struct discovery_source unanswered_sources[] = { { "unanswered", fake_unanswered } };
static const struct discovery_source bogus_sources[] = { { "bogus", fake_bogus } };
static const struct discovery_source answered_sources[] = { { "none", fake_none_answered } };
static const struct discovery_source slow_domain_sources[] = { { "slow domain", fake_slow_domain } };
/*
 * A store whose reads fail once failing_reads is set (PostgreSQL gone in
 * the middle of a lookup), and whose next read, once notified is set, comes
 * after a NOTIFY for its address (keyd_store_changed() on keyd's main thread).
 */
static struct keystore_ops flaky_ops;
static bool failing_reads;
static struct keyd *notified;

static cables_status
flaky_lookup(struct keystore *ks, const char *addr, const char *format, struct key_list *out, struct cables_err *err)
{
	if (failing_reads)
		return cables_fail(err, CABLES_ERR_DB, "key store %s: connection lost", ks->name);
	if (notified != NULL) {
		keyd_store_changed(notified, addr);
		notified = NULL;
	}
	return keystore_sqlite_ops.lookup(ks, addr, format, out, err);
}

static void
flaky_store(struct keyd *k)
{
	flaky_ops = keystore_sqlite_ops;
	flaky_ops.lookup = flaky_lookup;
	k->ks->ops = &flaky_ops;
	failing_reads = false;
	notified = NULL;
}

/* Like fake_dnssec, and a NOTIFY for the address arrives before keyd reads the store again. */
static void
fake_dnssec_notified(struct discovery *d)
{
	fake_dnssec(d);
	notified = d->k;
}

/* Discovery finds no key, and the store fails from then on. */
static void
fake_none_store_fails(struct discovery *d)
{
	fake_none(d);
	failing_reads = true;
}

static const struct discovery_source dnssec_sources[] = { { "dnssec", fake_dnssec } };
static const struct discovery_source notified_sources[] = { { "dnssec, notified", fake_dnssec_notified } };
static const struct discovery_source store_fails_sources[] = { { "none, store fails", fake_none_store_fails } };
static const struct discovery_source none_sources[] = { { "none", fake_none } };
static const struct discovery_source failing_sources[] = { { "tempfail", fake_tempfail }, { "after", fake_after } };
static const struct discovery_source slow_sources[] = { { "slow", fake_slow } };

static struct keyd *
new_keyd(void)
{
	char path[128], anchors[128];
	struct config *cfg;
	struct keystore *ks;
	struct dns_resolver *res;
	struct cables_err err;
	struct keyd *k;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/cables.conf", dir);
	snprintf(anchors, sizeof(anchors), "%s/anchors", dir);
	fp = fopen(path, "w");
	fprintf(fp, "LocalDomains a.test\nKeyStore %s/keys.db\nKeyStoreKey %s/store.key\nTempDir %s\nKeydSocket %s/k.sock\n"
	    "LookupTimeout 2s\nCacheMinTTL 60s\nKeyExchange no\nWKD no\n", dir, dir, dir, dir);
	fclose(fp);
	fp = fopen(anchors, "w");
	fprintf(fp, "test. 3600 IN DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n");
	fclose(fp);
	if ((cfg = config_load(path, true, &err)) == NULL)
		fail_msg("config: %s", err.msg);
	if (keystore_open(&ks, cfg->key_store, true, &err) != CABLES_OK)
		fail_msg("key store: %s", err.msg);
	if (dns_resolver_new("127.0.0.1@9", anchors, 500, &res, &err) != CABLES_OK)
		fail_msg("resolver: %s", err.msg);
	k = keyd_new(cfg, ks, res, NULL, dir);
	keyd_set_probe(k, fake_probe);
	keyd_set_txt(k, fake_txt);
	txt_status = DNS_SECURE_NONE;
	probe_answers = true;
	probes = 0;
	return k;
}

static void
free_keyd(struct keyd *k)
{
	struct keystore *ks = k->ks;

	keyd_free(k);
	keystore_close(ks);
}

static char *
lookup(struct keyd *k, const char *addr)
{
	struct buf out;

	buf_init(&out);
	keyd_lookup(k, addr, &addr, 1, time(NULL), &out);
	buf_appends(&out, "");
	return out.data;
}

/*
 * No key, DNSSEC says: a domain's signed _cables-policy p=require makes it
 * encrypting=published (and remembered); a proven absence or an unsigned
 * zone's statement is no statement; a bogus answer or none is a tempfail
 * (the statement may have been stripped), never "none".
 */
static void
test_cables_policy_decides_or_fails(void **state)
{
	const struct {
		enum dns_status txt;
		const char *addr, *result;
	} cases[] = {
		{ DNS_SECURE_NONE, "a@n.test", "result=a@n.test none reason=fake: no such record\n" },
		{ DNS_INSECURE, "a@i.test", "result=a@i.test none reason=fake: no such record\n" },
		{ DNS_BOGUS, "a@x.test", "result=a@x.test tempfail reason=_cables-policy.x.test: bogus answer (fake)\n" },
		{ DNS_TEMPFAIL, "a@t.test", "result=a@t.test tempfail reason=_cables-policy.t.test: tempfail answer (fake)\n" },
		{ DNS_SECURE, "a@p.test", "result=a@p.test none encrypting=published reason=fake: no such record\n" },
	};
	struct keyd *k = new_keyd();
	struct encrypting_domain d;

	keyd_set_sources(k, none_sources, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *r;

		txt_status = cases[i].txt;
		r = lookup(k, cases[i].addr);
		if (strcmp(r, cases[i].result) != 0)
			fail_msg("%s: %s", cases[i].addr, r);
		free(r);
	}
	assert_int_equal(keystore_encrypting_get(k->ks, "p.test", &d, NULL), CABLES_OK);
	assert_string_equal(d.source, "policy");
	assert_int_equal(keystore_encrypting_get(k->ks, "i.test", &d, NULL), CABLES_ERR_NOTFOUND);
	free_keyd(k);
}

/* Key change alerts mailed by MailCommand (a script that keeps them in dir/sent); how many were sent. */
static int
alerts_sent(void)
{
	char path[128], line[256];
	FILE *fp;
	int n = 0;

	snprintf(path, sizeof(path), "%s/sent", dir);
	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), fp) != NULL)
		n += strncmp(line, "Subject: ", 9) == 0;
	fclose(fp);
	return n;
}

static size_t
alerts_kept(struct keyd *k)
{
	struct key_change_alert *a;
	size_t n = 0;

	assert_int_equal(keystore_key_change_list(k->ks, &a, &n, NULL), CABLES_OK);
	free(a);
	return n;
}

/*
 * An alert that could not be sent is not recorded (the next occurrence
 * tells); one per domain a day (later pairs logged only); alerts go after
 * DowngradeMemory.
 */
static void
test_key_change_alerts(void **state)
{
	const time_t now = 1790000000;
	struct keyd *k = new_keyd();
	struct keyd_conf *c = keyd_conf_get(k);
	struct key_record r;
	char script[128];
	FILE *fp;

	snprintf(script, sizeof(script), "%s/mail.sh", dir);
	fp = fopen(script, "w");
	fprintf(fp, "#!/bin/sh\ncat >> %s/sent\n", dir);
	fclose(fp);
	chmod(script, 0700);
	free(c->cfg->admin_address);
	c->cfg->admin_address = xstrdup("admin@a.test");
	free(c->cfg->mail_command);
	c->cfg->mail_command = xstrdup("/bin/false");
	memset(&r, 0, sizeof(r));
	r.address = "x@b.test";
	strlcpy_c(r.format, "smime", sizeof(r.format));
	strlcpy_c(r.fingerprint, "bb", sizeof(r.fingerprint));
	r.source = "dns-dnssec";

	keyd_key_change_alert(k, c, &r, "aa", "dns-dnssec", "accept", now);
	assert_int_equal(alerts_kept(k), 0);	/* not sent: not told */
	free(c->cfg->mail_command);
	c->cfg->mail_command = xstrdup(script);
	keyd_key_change_alert(k, c, &r, "aa", "dns-dnssec", "accept", now + 1);
	assert_int_equal(alerts_sent(), 1);
	keyd_key_change_alert(k, c, &r, "aa", "dns-dnssec", "accept", now + 2);
	assert_int_equal(alerts_sent(), 1);	/* that pair was told */
	r.address = "y@b.test";
	strlcpy_c(r.fingerprint, "dd", sizeof(r.fingerprint));
	keyd_key_change_alert(k, c, &r, "cc", "dns-dnssec", "accept", now + 60);
	assert_int_equal(alerts_sent(), 1);	/* b.test was told of one today */
	assert_int_equal(alerts_kept(k), 1);
	keyd_key_change_alert(k, c, &r, "cc", "dns-dnssec", "accept", now + 86400 + 2);
	assert_int_equal(alerts_sent(), 2);	/* a day later */
	r.address = "z@c.test";
	keyd_key_change_alert(k, c, &r, "cc", "dns-dnssec", "accept", now + 1 + (time_t)c->cfg->downgrade_memory_s + 1);
	assert_int_equal(alerts_sent(), 3);
	assert_int_equal(alerts_kept(k), 2);	/* x@b.test's, told DowngradeMemory ago, went */
	keyd_conf_put(k, c);
	free_keyd(k);
}

static void
test_no_key_is_cached(void **state)
{
	struct keyd *k = new_keyd();
	char *r;

	keyd_set_sources(k, none_sources, 1);
	memset(calls, 0, sizeof(calls));
	r = lookup(k, "bob@b.test");
	assert_string_equal(r, "result=bob@b.test none reason=fake: no such record\n");
	free(r);
	r = lookup(k, "Bob@B.test");
	assert_string_equal(r, "result=bob@b.test none reason=fake: no such record (cached)\n");
	free(r);
	assert_int_equal(calls[0], 1);
	free_keyd(k);
}

static void
test_tempfail_is_not_cached_and_stops_later_sources(void **state)
{
	struct keyd *k = new_keyd();
	char *r;

	keyd_set_sources(k, failing_sources, 2);
	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < 2; i++) {
		r = lookup(k, "carol@c.test");
		assert_string_equal(r, "result=carol@c.test tempfail reason=fake: no answer\n");
		free(r);
	}
	assert_int_equal(calls[1], 2);
	assert_int_equal(calls[2], 0);
	free_keyd(k);
}

static enum keyd_check_state
check(struct keyd *k, const char *addr, struct keyd_check *c)
{
	keyd_check(k, addr, time(NULL), c);
	return c->state;
}

/*
 * A lookup whose DNS got no answer is a strike against its domain when the
 * resolver answers its probe, asked under the domain that answered last;
 * the second strike marks the domain (every address there); a bogus
 * answer does not count, an answer clears the mark;
 * a check never asks a source, and a cached "no key" is "cached" even at
 * a marked domain.
 */
static void
test_unanswered_domain_is_marked(void **state)
{
	struct keyd *k = new_keyd();
	struct keyd_check c;
	char *r;

	keyd_set_retest(k, 0);	/* test_marked_domain_is_retested */
	memset(calls, 0, sizeof(calls));
	keyd_set_sources(k, answered_sources, 1);
	free(lookup(k, "bob@lists.test"));
	keyd_set_sources(k, unanswered_sources, 1);
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_LOOKUP);
	r = lookup(k, "dave@dead.test");
	assert_non_null(strstr(r, "result=dave@dead.test tempfail"));
	free(r);
	assert_int_equal(probes, 1);
	assert_string_equal(probe_zone, "lists.test");
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_LOOKUP);	/* one strike */
	free(lookup(k, "grace@dead.test"));
	assert_int_equal(probes, 2);
	assert_int_equal(check(k, "Dave@DEAD.test", &c), KEYD_CHECK_UNRESPONSIVE);
	assert_string_equal(c.address, "dave@dead.test");
	assert_true(c.retry > 590 && c.retry <= 600);	/* UnresponsiveTime's default, 10m */
	assert_non_null(strstr(c.reason, "2 lookups at dead.test got no answer"));
	assert_int_equal(check(k, "erin@dead.test", &c), KEYD_CHECK_UNRESPONSIVE);
	assert_int_equal(check(k, "bob@b.test", &c), KEYD_CHECK_LOOKUP);
	assert_string_equal(c.reason, "");
	assert_int_equal(calls[1], 2);	/* checks asked no source */

	keyd_set_sources(k, bogus_sources, 1);
	r = lookup(k, "frank@bogus.test");
	free(r);
	assert_int_equal(check(k, "frank@bogus.test", &c), KEYD_CHECK_LOOKUP);
	assert_int_equal(probes, 2);	/* an answer, bogus or not, needs no probe */

	/* dead.test answers again (a proof of absence): the mark is gone, the answer cached. */
	keyd_set_sources(k, answered_sources, 1);
	r = lookup(k, "erin@dead.test");
	free(r);
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_LOOKUP);
	assert_int_equal(check(k, "erin@dead.test", &c), KEYD_CHECK_CACHED);
	assert_int_equal(check(k, "not an address", &c), KEYD_CHECK_CACHED);
	free_keyd(k);
}

/*
 * A check of a marked domain starts one lookup in the background (at most
 * one per re-test period): when the domain answers again, the mark ends
 * then, not when UnresponsiveTime runs out; while it stays silent, the
 * mark stays and no second re-test starts within the period.
 */
static void
test_marked_domain_is_retested(void **state)
{
	struct keyd *k = new_keyd();
	struct keyd_check c;

	keyd_set_retest(k, 3600);
	keyd_set_sources(k, answered_sources, 1);
	free(lookup(k, "bob@lists.test"));
	keyd_set_sources(k, unanswered_sources, 1);
	free(lookup(k, "dave@dead.test"));
	free(lookup(k, "grace@dead.test"));
	memset(calls, 0, sizeof(calls));
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_UNRESPONSIVE);	/* re-test 1: silent */
	keyd_wait_retests(k);
	assert_int_equal(calls[1], 1);
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_UNRESPONSIVE);	/* within the period: none */
	keyd_wait_retests(k);
	assert_int_equal(calls[1], 1);

	/* A new period; dead.test answers again: the re-test ends the mark. */
	keyd_set_retest(k, 1);
	sleep(2);
	keyd_set_sources(k, answered_sources, 1);
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_UNRESPONSIVE);
	keyd_wait_retests(k);
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_CACHED);
	free_keyd(k);
}

/*
 * No mark without evidence about the domain itself: not when the resolver
 * does not answer its probe (overloaded, cut off: every domain would time
 * out), not when another lookup at the domain got an answer meanwhile
 * (slow, not dead: and then no probe is asked), not when marks are off.
 */
static void
test_no_mark_without_evidence(void **state)
{
	struct keyd *k = new_keyd();
	struct keyd_check c;

	keyd_set_sources(k, unanswered_sources, 1);
	probe_answers = false;
	free(lookup(k, "dave@dead.test"));
	assert_int_equal(probes, 1);
	assert_string_equal(probe_zone, "");	/* no domain answered yet: the root */
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_LOOKUP);

	probe_answers = true;
	keyd_set_sources(k, slow_domain_sources, 1);
	free(lookup(k, "member1@lists.test"));
	assert_int_equal(probes, 1);
	assert_int_equal(check(k, "member2@lists.test", &c), KEYD_CHECK_LOOKUP);
	assert_int_equal(k->unresponsive.spared, 2);
	assert_int_equal(k->unresponsive.marked, 0);

	/* The resolver answers again: the next two lookups at the dead domain mark it. */
	keyd_set_sources(k, unanswered_sources, 1);
	free(lookup(k, "erin@dead.test"));
	assert_int_equal(probes, 2);
	assert_string_equal(probe_zone, "lists.test");
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_LOOKUP);
	free(lookup(k, "frank@dead.test"));
	assert_int_equal(check(k, "dave@dead.test", &c), KEYD_CHECK_UNRESPONSIVE);
	free_keyd(k);
}

static void *
lookup_thread(void *arg)
{
	return lookup(arg, "dave@d.test");
}

static void
test_lookups_at_once_share_one_discovery(void **state)
{
	struct keyd *k = new_keyd();
	pthread_t t1, t2;
	void *r1, *r2;

	keyd_set_sources(k, slow_sources, 1);
	memset(calls, 0, sizeof(calls));
	pthread_create(&t1, NULL, lookup_thread, k);
	pthread_create(&t2, NULL, lookup_thread, k);
	pthread_join(t1, &r1);
	pthread_join(t2, &r2);
	assert_string_equal(r1, "result=dave@d.test none reason=fake: slow\n");
	assert_string_equal(r2, "result=dave@d.test none reason=fake: slow\n");
	assert_int_equal(calls[3], 1);
	free(r1);
	free(r2);
	free_keyd(k);
}

/* Store cert for addr from source; pinned (first key seen) when pin is true. */
static void
store_as(struct keyd *k, const char *addr, X509 *cert, const char *source, bool pin, char fpr[65])
{
	struct key_record r;
	struct pin_result res;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(cert, r.fingerprint);
	r.public_data = smime_cert_to_der(cert, &r.public_len);
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.source = (char *)source;
	if (pin) {
		assert_int_equal(pin_check(k->ks, &k->conf->cfg->policy, &r, time(NULL), &res, NULL), CABLES_OK);
		assert_int_equal(res.verdict, PIN_NEW);
	}
	assert_int_equal(keystore_put(k->ks, &r, time(NULL), NULL), CABLES_OK);
	strlcpy_c(fpr, r.fingerprint, 65);
	free(r.public_data);
}

static X509 *
cert_for(const char *addr)
{
	X509 *cert;
	EVP_PKEY *key;

	assert_int_equal(smime_generate(addr, SMIME_ALGO_P256, 30, time(NULL) - 60, &cert, &key, NULL), CABLES_OK);
	EVP_PKEY_free(key);
	return cert;
}

/* The reply r holds a key line for addr with source and fingerprint fpr, and says found. */
static void
answers_with(const char *r, const char *addr, const char *source, const char *fpr)
{
	char want[256], result[128];

	snprintf(want, sizeof(want), "key=%s format=smime source=%s ", addr, source);
	snprintf(result, sizeof(result), "result=%s found\n", addr);
	if (strstr(r, want) == NULL || strstr(r, fpr) == NULL || strstr(r, result) == NULL)
		fail_msg("want %s%s..., got:\n%s", want, fpr, r);
}

static cables_status
epoch_check_fails(void *arg, const char *addr, const char *format, uint8_t digest[32], bool *found, struct cables_err *err)
{
	(void)arg;
	(void)addr;
	(void)format;
	(void)digest;
	*found = false;
	return cables_fail(err, CABLES_ERR_IO, "keyholder: no answer");
}

static cables_status
epoch_check_none(void *arg, const char *addr, const char *format, uint8_t digest[32], bool *found, struct cables_err *err)
{
	(void)arg;
	(void)addr;
	(void)format;
	(void)digest;
	(void)err;
	*found = false;
	return CABLES_OK;
}

/* The keyholder's word on which long-term keys are the user's own: the one in vouched_digest, or none. */
static uint8_t vouched_digest[32];
static size_t nvouched;

static cables_status
vouch_these(void *arg, const char *addr, uint8_t (*digests)[32], size_t *n, struct cables_err *err)
{
	(void)arg;
	(void)addr;
	(void)err;
	memcpy(digests[0], vouched_digest, sizeof(vouched_digest));
	*n = nvouched;
	return CABLES_OK;
}

static cables_status
vouch_fails(void *arg, const char *addr, uint8_t (*digests)[32], size_t *n, struct cables_err *err)
{
	(void)arg;
	(void)addr;
	(void)digests;
	*n = 0;
	return cables_fail(err, CABLES_ERR_IO, "keyholder: no answer");
}

static void
vouch_for(X509 *cert)
{
	uint8_t *der = NULL;
	int len = i2d_X509(cert, &der);

	assert_true(len > 0);
	SHA256(der, (size_t)len, vouched_digest);
	nvouched = 1;
	OPENSSL_free(der);
}

/*
 * A local user's keys for the key exchange: when the key process cannot
 * say which epoch key is current, the answer is incomplete (the server then
 * refuses it whole, so that the asker keeps the epoch key it holds); when
 * it says there is none, the answer is whole, without one.
 */
static void
test_exchange_answer_incomplete_without_the_keyholder(void **state)
{
	struct keyd *k = new_keyd();
	struct x_answer a;
	X509 *cert = cert_for("bob@a.test");
	char fpr[65];
	bool incomplete = false;

	store_as(k, "bob@a.test", cert, "generated", false, fpr);
	keyd_set_epoch_check(k, epoch_check_none, NULL);
	vouch_for(cert);
	keyd_set_vouch(k, vouch_these, NULL);
	a.results = xcalloc(1, sizeof(*a.results));
	a.n = 1;
	assert_true(keyd_public_keys(k, "bob@a.test", time(NULL), &a.results[0], &incomplete));
	assert_int_equal(a.results[0].n, 1);
	assert_false(incomplete);
	x_answer_release(&a);
	keyd_set_epoch_check(k, epoch_check_fails, NULL);
	a.results = xcalloc(1, sizeof(*a.results));
	a.n = 1;
	assert_true(keyd_public_keys(k, "bob@a.test", time(NULL), &a.results[0], &incomplete));
	assert_true(incomplete);
	x_answer_release(&a);
	X509_free(cert);
	free_keyd(k);
	(void)state;
}

/*
 * The milter can write the store: a local user's key the keyholder does
 * not vouch for (it holds no private key of it) is not served, and one it
 * cannot be asked about makes the answer incomplete.
 */
static void
test_exchange_answer_serves_only_vouched_keys(void **state)
{
	struct keyd *k = new_keyd();
	struct x_answer a;
	X509 *own = cert_for("bob@a.test"), *planted = cert_for("bob@a.test");
	char fpr[65];
	bool incomplete = false;

	store_as(k, "bob@a.test", own, "generated", false, fpr);
	store_as(k, "bob@a.test", planted, "generated", false, fpr);
	keyd_set_epoch_check(k, epoch_check_none, NULL);
	vouch_for(own);
	keyd_set_vouch(k, vouch_these, NULL);
	a.results = xcalloc(1, sizeof(*a.results));
	a.n = 1;
	assert_true(keyd_public_keys(k, "bob@a.test", time(NULL), &a.results[0], &incomplete));
	assert_false(incomplete);
	assert_int_equal(a.results[0].n, 1);
	{
		uint8_t *der = NULL;
		int len = i2d_X509(own, &der);

		assert_int_equal(a.results[0].keys[0].len, (size_t)len);
		assert_memory_equal(a.results[0].keys[0].data, der, (size_t)len);
		OPENSSL_free(der);
	}
	x_answer_release(&a);
	nvouched = 0;
	a.results = xcalloc(1, sizeof(*a.results));
	a.n = 1;
	assert_true(keyd_public_keys(k, "bob@a.test", time(NULL), &a.results[0], &incomplete));
	assert_int_equal(a.results[0].n, 0);
	x_answer_release(&a);
	keyd_set_vouch(k, vouch_fails, NULL);
	a.results = xcalloc(1, sizeof(*a.results));
	a.n = 1;
	assert_true(keyd_public_keys(k, "bob@a.test", time(NULL), &a.results[0], &incomplete));
	assert_true(incomplete);
	assert_int_equal(a.results[0].n, 0);
	x_answer_release(&a);
	X509_free(own);
	X509_free(planted);
	free_keyd(k);
	(void)state;
}

/*
 * Someone with a certificate naming bob got it harvested before bob was
 * looked up: keyd still asks DNS, and the key bob's domain publishes is the
 * answer (the harvested one is not among it) and takes the pin.
 */
static void
test_harvested_key_ranks_below_a_discovered_one(void **state)
{
	struct keyd *k = new_keyd();
	X509 *attacker = cert_for("bob@b.test");
	char harvested[65], dns[65];
	struct key_list keys;
	struct key_pin pin;
	char *r;

	published = cert_for("bob@b.test");
	store_as(k, "bob@b.test", attacker, "harvested", true, harvested);
	smime_cert_fingerprint(published, dns);
	keyd_set_sources(k, dnssec_sources, 1);
	memset(calls, 0, sizeof(calls));
	r = lookup(k, "bob@b.test");
	assert_int_equal(calls[0], 1);
	answers_with(r, "bob@b.test", "dns-dnssec", dns);
	assert_null(strstr(r, harvested));
	free(r);
	assert_int_equal(keystore_pin_get(k->ks, "bob@b.test", "smime", &pin, NULL), CABLES_OK);
	assert_string_equal(pin.fingerprint, dns);
	assert_string_equal(pin.source, "dns-dnssec");
	key_pin_release(&pin);
	/* The harvested key that lost the pin is gone from the store. */
	assert_int_equal(keystore_lookup(k->ks, "bob@b.test", "smime", &keys, NULL), CABLES_OK);
	assert_int_equal(keys.count, 1);
	assert_string_equal(keys.items[0].fingerprint, dns);
	key_list_release(&keys);
	/* While the DNS key is fresh it is answered from the store, the harvested one still not. */
	r = lookup(k, "bob@b.test");
	assert_int_equal(calls[0], 1);
	answers_with(r, "bob@b.test", "dns-dnssec", dns);
	assert_null(strstr(r, harvested));
	free(r);
	X509_free(attacker);
	X509_free(published);
	free_keyd(k);
}

/*
 * Discovery finds nothing (proven absence): the pinned harvested key is the
 * answer, also from the negative cache (no second discovery).  One that is
 * not the pinned key is never the answer.
 */
static void
test_harvested_key_answers_when_discovery_finds_none(void **state)
{
	struct keyd *k = new_keyd();
	X509 *h = cert_for("erin@e.test"), *other = cert_for("erin@e.test"), *f = cert_for("fay@e.test");
	char harvested[65], other_fpr[65], f_fpr[65];
	struct key_pin pin;
	char *r;

	store_as(k, "erin@e.test", h, "harvested", true, harvested);
	keyd_set_sources(k, none_sources, 1);
	memset(calls, 0, sizeof(calls));
	for (int i = 0; i < 2; i++) {
		r = lookup(k, "erin@e.test");
		answers_with(r, "erin@e.test", "harvested", harvested);
		free(r);
	}
	assert_int_equal(calls[0], 1);
	/* fay's harvested key is not her pinned one (the pin points to another key). */
	store_as(k, "fay@e.test", other, "imported", true, other_fpr);
	assert_int_equal(keystore_delete(k->ks, "fay@e.test", other_fpr, &(size_t){ 0 }, NULL), CABLES_OK);
	store_as(k, "fay@e.test", f, "harvested", false, f_fpr);
	assert_int_equal(keystore_pin_get(k->ks, "fay@e.test", "smime", &pin, NULL), CABLES_OK);
	assert_string_equal(pin.fingerprint, other_fpr);
	key_pin_release(&pin);
	r = lookup(k, "fay@e.test");
	assert_string_equal(r, "result=fay@e.test none reason=fake: no such record\n");
	free(r);
	X509_free(h);
	X509_free(other);
	X509_free(f);
	free_keyd(k);
}

/* A failed discovery (bogus DNSSEC, no answer) is a temporary failure: never the harvested key. */
static void
test_harvested_key_is_no_fallback_on_failure(void **state)
{
	struct keyd *k = new_keyd();
	X509 *h = cert_for("gus@g.test");
	char harvested[65];
	char *r;

	store_as(k, "gus@g.test", h, "harvested", true, harvested);
	keyd_set_sources(k, failing_sources, 2);
	memset(calls, 0, sizeof(calls));
	r = lookup(k, "gus@g.test");
	assert_string_equal(r, "result=gus@g.test tempfail reason=fake: no answer\n");
	free(r);
	assert_int_equal(calls[1], 1);
	X509_free(h);
	free_keyd(k);
}

/*
 * A NOTIFY between discovery and keyd's second read of the store drops the
 * positive cache entry of the key just found: the answer is a temporary
 * failure, never "no key" (plaintext to whom the policy says encrypt).
 */
static void
test_notify_after_discovery_is_no_none(void **state)
{
	struct keyd *k = new_keyd();
	char *r;

	published = cert_for("ida@i.test");
	flaky_store(k);
	keyd_set_sources(k, notified_sources, 1);
	r = lookup(k, "ida@i.test");
	assert_string_equal(r, "result=ida@i.test tempfail reason=the keys discovery found are not in the key store any "
	    "more\n");
	free(r);
	X509_free(published);
	free_keyd(k);
}

/* The store fails after its first read: the lookup fails temporarily, never "no key". */
static void
test_store_failure_after_discovery_is_tempfail(void **state)
{
	struct keyd *k = new_keyd();
	char *r;

	flaky_store(k);
	keyd_set_sources(k, store_fails_sources, 1);
	memset(calls, 0, sizeof(calls));
	r = lookup(k, "jo@j.test");
	assert_non_null(strstr(r, "result=jo@j.test tempfail reason="));
	assert_non_null(strstr(r, "connection lost"));
	free(r);
	failing_reads = false;
	free_keyd(k);
}

/* A key held locally (imported) is answered from the store, without discovery; a harvested one beside it is not. */
static void
test_held_key_is_answered_without_discovery(void **state)
{
	struct keyd *k = new_keyd();
	X509 *held = cert_for("hal@h.test"), *h = cert_for("hal@h.test");
	char held_fpr[65], harvested[65];
	char *r;

	store_as(k, "hal@h.test", h, "harvested", true, harvested);
	store_as(k, "hal@h.test", held, "imported", false, held_fpr);
	keyd_set_sources(k, none_sources, 1);
	memset(calls, 0, sizeof(calls));
	r = lookup(k, "hal@h.test");
	assert_int_equal(calls[0], 0);
	answers_with(r, "hal@h.test", "imported", held_fpr);
	assert_null(strstr(r, harvested));
	free(r);
	X509_free(held);
	X509_free(h);
	free_keyd(k);
}

static int
setup(void **state)
{
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_key_is_cached),
		cmocka_unit_test(test_key_change_alerts),
		cmocka_unit_test(test_cables_policy_decides_or_fails),
		cmocka_unit_test(test_tempfail_is_not_cached_and_stops_later_sources),
		cmocka_unit_test(test_lookups_at_once_share_one_discovery),
		cmocka_unit_test(test_harvested_key_ranks_below_a_discovered_one),
		cmocka_unit_test(test_exchange_answer_incomplete_without_the_keyholder),
		cmocka_unit_test(test_exchange_answer_serves_only_vouched_keys),
		cmocka_unit_test(test_harvested_key_answers_when_discovery_finds_none),
		cmocka_unit_test(test_harvested_key_is_no_fallback_on_failure),
		cmocka_unit_test(test_held_key_is_answered_without_discovery),
		cmocka_unit_test(test_notify_after_discovery_is_no_none),
		cmocka_unit_test(test_store_failure_after_discovery_is_tempfail),
		cmocka_unit_test(test_unanswered_domain_is_marked),
		cmocka_unit_test(test_marked_domain_is_retested),
		cmocka_unit_test(test_no_mark_without_evidence),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
