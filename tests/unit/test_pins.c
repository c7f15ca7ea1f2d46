/* test_pins - the pin decision shared by cables-keyd and harvesting: first seen, same, more trusted, key change. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "keystore.h"
#include "pins.h"
#include "policy.h"
#include "util.h"

#define NOW ((time_t)1790000000)

struct fixture {
	char *dir;
	struct keystore *ks;
	struct policy_table policy;
};

static int
setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	char *path;

	fx->dir = test_tempdir();
	path = xasprintf("%s/keys.db", fx->dir);
	assert_int_equal(keystore_open(&fx->ks, path, true, NULL), CABLES_OK);
	free(path);
	policy_table_init(&fx->policy);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	keystore_close(fx->ks);
	policy_table_release(&fx->policy);
	test_rmdir(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* A key record for addr: fingerprint c repeated, from source. */
static struct key_record
key(const char *addr, char c, const char *source)
{
	struct key_record r;

	memset(&r, 0, sizeof(r));
	r.address = (char *)addr;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	memset(r.fingerprint, c, 64);
	r.source = (char *)source;
	return r;
}

static struct pin_result
decide(struct fixture *fx, const char *addr, char c, const char *source, time_t now)
{
	struct key_record r = key(addr, c, source);
	struct pin_result res;

	assert_int_equal(pin_check(fx->ks, &fx->policy, &r, now, &res, NULL), CABLES_OK);
	return res;
}

static void
pin_is(struct fixture *fx, const char *addr, char c, const char *source, char offered, long long changes)
{
	struct key_pin p;
	char fpr[65], off[65];

	memset(fpr, c, 64);
	fpr[64] = '\0';
	memset(off, offered, 64);
	off[offered == 0 ? 0 : 64] = '\0';
	assert_int_equal(keystore_pin_get(fx->ks, addr, "smime", &p, NULL), CABLES_OK);
	assert_string_equal(p.fingerprint, fpr);
	assert_string_equal(p.source, source);
	assert_string_equal(p.offered, off);
	assert_int_equal(p.changes, changes);
	key_pin_release(&p);
}

static void
test_first_seen_is_pinned_and_same_refreshes(void **state)
{
	struct fixture *fx = *state;
	struct key_pin p;

	assert_int_equal(decide(fx, "bob@b.test", 'a', "harvested", NOW).verdict, PIN_NEW);
	pin_is(fx, "bob@b.test", 'a', "harvested", 0, 0);
	assert_int_equal(decide(fx, "bob@b.test", 'a', "harvested", NOW + 60).verdict, PIN_SAME);
	assert_int_equal(keystore_pin_get(fx->ks, "bob@b.test", "smime", &p, NULL), CABLES_OK);
	assert_int_equal(p.first_seen, NOW);
	assert_int_equal(p.last_seen, NOW + 60);
	key_pin_release(&p);
}

static void
test_more_trusted_source_replaces_the_pin(void **state)
{
	struct fixture *fx = *state;
	struct pin_result res;

	decide(fx, "bob@b.test", 'a', "harvested", NOW);
	res = decide(fx, "bob@b.test", 'b', "dns-dnssec", NOW);
	assert_int_equal(res.verdict, PIN_RAISED);
	assert_string_equal(res.was_source, "harvested");
	pin_is(fx, "bob@b.test", 'b', "dns-dnssec", 0, 0);
	/* A harvested key never replaces a DNSSEC one, even under On-KeyChange accept (the default). */
	res = decide(fx, "bob@b.test", 'c', "harvested", NOW);
	assert_int_equal(res.verdict, PIN_HELD);
	assert_int_equal(res.action, ACTION_REJECT);
	pin_is(fx, "bob@b.test", 'b', "dns-dnssec", 'c', 0);
	/* Another rank-0 source is a key change (default accept). */
	res = decide(fx, "bob@b.test", 'c', "dns-insecure", NOW);
	assert_int_equal(res.verdict, PIN_CHANGED);
	assert_int_equal(res.action, ACTION_ACCEPT);
	pin_is(fx, "bob@b.test", 'c', "dns-insecure", 0, 1);
	assert_int_equal(pin_trust_rank("dns-dnssec"), 3);
	assert_int_equal(pin_trust_rank("peer"), 2);
	assert_int_equal(pin_trust_rank("wkd"), 1);
	assert_int_equal(pin_trust_rank("harvested"), 0);
	assert_int_equal(pin_trust_rank("dns-insecure"), 0);
}

static void
test_key_change_follows_on_key_change(void **state)
{
	struct fixture *fx = *state;
	struct pin_result res;

	assert_int_equal(policy_table_set(&fx->policy, "b.test", PA_ON_KEY_CHANGE, ACTION_TEMPFAIL, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&fx->policy, "carol@b.test", PA_ON_KEY_CHANGE, ACTION_REJECT, 2, NULL),
	    CABLES_OK);
	decide(fx, "bob@b.test", 'a', "wkd", NOW);
	res = decide(fx, "bob@b.test", 'b', "wkd", NOW + 1);
	assert_int_equal(res.verdict, PIN_HELD);
	assert_int_equal(res.action, ACTION_TEMPFAIL);
	assert_string_equal(res.was_source, "wkd");
	pin_is(fx, "bob@b.test", 'a', "wkd", 'b', 0);
	/* The pinned key again clears the offer. */
	assert_int_equal(decide(fx, "bob@b.test", 'a', "wkd", NOW + 2).verdict, PIN_SAME);
	pin_is(fx, "bob@b.test", 'a', "wkd", 0, 0);
	decide(fx, "carol@b.test", 'a', "harvested", NOW);
	res = decide(fx, "carol@b.test", 'b', "harvested", NOW);
	assert_int_equal(res.verdict, PIN_HELD);
	assert_int_equal(res.action, ACTION_REJECT);
	pin_is(fx, "carol@b.test", 'a', "harvested", 'b', 0);
	/* Elsewhere the default, accept. */
	decide(fx, "dave@d.test", 'a', "harvested", NOW);
	assert_int_equal(decide(fx, "dave@d.test", 'b', "harvested", NOW).verdict, PIN_CHANGED);
	pin_is(fx, "dave@d.test", 'b', "harvested", 0, 1);
}

/*
 * The same key seen again from a more trusted source raises the pin's
 * source: a key from a source between the two is a key change then, not a
 * "more trusted" replacement; nor may a harvested one displace it.
 */
static void
test_same_key_from_a_more_trusted_source_raises_the_pin(void **state)
{
	struct fixture *fx = *state;
	struct pin_result res;

	decide(fx, "bob@b.test", 'a', "wkd", NOW);
	assert_int_equal(decide(fx, "bob@b.test", 'a', "dns-dnssec", NOW).verdict, PIN_SAME);
	pin_is(fx, "bob@b.test", 'a', "dns-dnssec", 0, 0);
	assert_int_equal(decide(fx, "bob@b.test", 'a', "wkd", NOW).verdict, PIN_SAME);
	pin_is(fx, "bob@b.test", 'a', "dns-dnssec", 0, 0);
	res = decide(fx, "bob@b.test", 'b', "peer", NOW);
	assert_int_equal(res.verdict, PIN_CHANGED);
	pin_is(fx, "bob@b.test", 'b', "peer", 0, 1);
	/* First harvested, then found by DNSSEC: a later harvested one does not displace it. */
	decide(fx, "carol@b.test", 'a', "harvested", NOW);
	decide(fx, "carol@b.test", 'a', "dns-dnssec", NOW);
	res = decide(fx, "carol@b.test", 'c', "harvested", NOW);
	assert_int_equal(res.verdict, PIN_HELD);
	pin_is(fx, "carol@b.test", 'a', "dns-dnssec", 'c', 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_seen_is_pinned_and_same_refreshes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_more_trusted_source_replaces_the_pin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_change_follows_on_key_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_key_from_a_more_trusted_source_raises_the_pin, setup, teardown),
	};

	return cmocka_run_group_tests_name("pins", tests, NULL, NULL);
}
