/*
 * test_lookup - cables-keyd's lookups (keyd/lookup.c) with fake discovery
 * sources in place of DNS, key servers and WKD: "no key" is negative-cached
 * and answered from the cache; a temporary failure is not cached; sources
 * are asked in table order, each seeing what those before it found; two
 * lookups of one address at once share one discovery (a flight).
 */
#include "autoconfig.h"

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

#include "config.h"
#include "dns.h"
#include "keyd_private.h"
#include "keystore.h"
#include "lookup.h"
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
	return keyd_new(cfg, ks, res, NULL, dir);
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
		cmocka_unit_test(test_tempfail_is_not_cached_and_stops_later_sources),
		cmocka_unit_test(test_lookups_at_once_share_one_discovery),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
