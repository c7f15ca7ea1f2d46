/* test_policy - the policy table: precedence, attributes, normalisation, errors. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addr.h"
#include "policy.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct { const char *match; int policy; unsigned int line; } rules[] = {
	{ "bob@b.test", POLICY_NEVER, 1 },
	{ "b.test", POLICY_REQUIRE, 2 },
	{ ".b.test", POLICY_ENCRYPT, 3 },
	{ ".sub.b.test", POLICY_NEVER, 4 },
	{ ".test", POLICY_REQUIRE, 5 },
};

static void
build(struct policy_table *t, bool reverse)
{
	policy_table_init(t);
	t->dflt[PA_POLICY] = POLICY_ENCRYPT;
	for (size_t k = 0; k < N_ELEMENTS(rules); k++) {
		size_t i = reverse ? N_ELEMENTS(rules) - 1 - k : k;

		assert_int_equal(policy_table_set(t, rules[i].match, PA_POLICY, rules[i].policy, rules[i].line, NULL),
		    CABLES_OK);
	}
}

static void
test_most_specific_entry_wins_in_any_order(void **state)
{
	static const struct { const char *addr; int expect; const char *by; } lookups[] = {
		{ "bob@b.test", POLICY_NEVER, "bob@b.test" },		/* address beats domain */
		{ "carol@b.test", POLICY_REQUIRE, "b.test" },		/* exact domain beats .b.test */
		{ "x@x.b.test", POLICY_ENCRYPT, ".b.test" },		/* subdomain */
		{ "x@y.sub.b.test", POLICY_NEVER, ".sub.b.test" },	/* the longest suffix */
		{ "x@sub.b.test", POLICY_ENCRYPT, ".b.test" },		/* .sub.b.test is not sub.b.test itself */
		{ "x@c.test", POLICY_REQUIRE, ".test" },
		{ "x@example.org", POLICY_ENCRYPT, NULL },		/* the default */
		{ "x@xb.test", POLICY_REQUIRE, ".test" },		/* not .b.test */
		{ "postmaster", POLICY_ENCRYPT, NULL },			/* no domain */
	};

	for (int reverse = 0; reverse < 2; reverse++) {
		struct policy_table t;

		build(&t, reverse);
		for (size_t i = 0; i < N_ELEMENTS(lookups); i++) {
			const struct policy_entry *e = (const struct policy_entry *)&t;
			int got = policy_get(&t, lookups[i].addr, PA_POLICY, &e);

			if (got != lookups[i].expect || (e == NULL) != (lookups[i].by == NULL) ||
			    (e != NULL && strcmp(e->match, lookups[i].by) != 0))
				fail_msg("%s order: %s -> %s by %s", reverse ? "reverse" : "forward", lookups[i].addr,
				    policy_name((enum enc_policy)got), e != NULL ? e->match : "(default)");
			/* Without the out parameter the answer is the same. */
			assert_int_equal(policy_get(&t, lookups[i].addr, PA_POLICY, NULL), got);
		}
		policy_table_release(&t);
	}
}

static void
test_attributes_are_decided_one_by_one(void **state)
{
	struct policy_table t;
	const struct policy_entry *e;

	policy_table_init(&t);
	assert_int_equal(policy_table_set(&t, "b.test", PA_POLICY, POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&t, "b.test", PA_ON_KEY_NOT_FOUND, ACTION_REJECT, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&t, "bob@b.test", PA_FORMAT, FORMAT_SMIME, 2, NULL), CABLES_OK);
	/* bob's entry sets only Format: his policy still comes from b.test. */
	assert_int_equal(policy_get(&t, "bob@b.test", PA_POLICY, &e), POLICY_REQUIRE);
	assert_string_equal(e->match, "b.test");
	assert_int_equal(e->line[PA_POLICY], 1);
	assert_int_equal(policy_get(&t, "bob@b.test", PA_FORMAT, &e), FORMAT_SMIME);
	assert_string_equal(e->match, "bob@b.test");
	assert_int_equal(policy_get(&t, "carol@b.test", PA_FORMAT, &e), FORMAT_AUTO);
	assert_null(e);
	assert_int_equal(policy_get(&t, "carol@b.test", PA_ON_KEY_NOT_FOUND, NULL), ACTION_REJECT);
	/* Built-in defaults. */
	assert_int_equal(policy_get(&t, "x@y.test", PA_POLICY, NULL), POLICY_ENCRYPT);
	assert_int_equal(policy_get(&t, "x@y.test", PA_SIGN, NULL), 0);
	assert_int_equal(policy_get(&t, "x@y.test", PA_SELF, NULL), 0);
	assert_int_equal(policy_get(&t, "x@y.test", PA_ON_INTERNAL_ERROR, NULL), ACTION_TEMPFAIL);
	assert_int_equal(policy_get(&t, "x@y.test", PA_ON_DECRYPT_ERROR, NULL), ACTION_ACCEPT);
	assert_int_equal(policy_get(&t, NULL, PA_POLICY, &e), POLICY_ENCRYPT);
	assert_null(e);
	policy_table_release(&t);
}

static void
test_setting_an_attribute_twice_names_the_first_line(void **state)
{
	struct policy_table t;
	struct cables_err err;

	policy_table_init(&t);
	assert_int_equal(policy_table_set(&t, "b.test", PA_POLICY, POLICY_REQUIRE, 7, &err), CABLES_OK);
	assert_int_equal(policy_table_set(&t, "B.Test", PA_SIGN, 1, 8, &err), CABLES_OK);	/* same entry */
	assert_int_equal(t.count, 1);
	assert_int_equal(policy_table_set(&t, "B.TEST", PA_POLICY, POLICY_NEVER, 9, &err), CABLES_ERR_EXISTS);
	assert_string_equal(err.msg, "Policy for 'B.TEST' is already set at line 7");
	assert_int_equal(policy_get(&t, "x@b.test", PA_POLICY, NULL), POLICY_REQUIRE);	/* the first stays */
	policy_table_release(&t);
}

static void
test_bad_targets_are_refused(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "..b.test", "b..test", "b.test.", ".b.test.", "b test", "b\ttest",
		"@b.test", "bob@", "bob@.b.test", "bob@b..test", "bob smith@b.test", "<bob@b.test>",
		"bob@b test", "b/test", "b\x01.test",
	};
	struct policy_table t;

	policy_table_init(&t);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		struct cables_err err = { "" };
		char expect[CABLES_ERR_MAX];

		snprintf(expect, sizeof(expect), "'%s' is not an address, a domain or a .domain", bad[i]);
		if (policy_table_set(&t, bad[i], PA_POLICY, POLICY_NEVER, 1, &err) != CABLES_ERR_SYNTAX ||
		    strcmp(err.msg, expect) != 0)
			fail_msg("'%s': '%s'", bad[i], err.msg);
	}
	assert_int_equal(t.count, 0);
	policy_table_release(&t);
}

static void
test_normalize_follows_the_address_options(void **state)
{
	static const struct addr_opts folded = { false, "+" };
	static const struct addr_opts sensitive = { true, "+" };
	struct policy_table t;
	struct cables_err err;
	unsigned int line = 0;

	/* Case-sensitive local parts: Bob and bob are different mailboxes. */
	policy_table_init(&t);
	policy_table_set(&t, "Bob@B.Test", PA_POLICY, POLICY_REQUIRE, 1, NULL);
	policy_table_set(&t, "bob@b.test", PA_POLICY, POLICY_NEVER, 2, NULL);
	assert_string_equal(t.entries[0].match, "Bob@b.test");	/* the domain is folded at once */
	assert_int_equal(policy_table_normalize(&t, &sensitive, &line, &err), CABLES_OK);
	assert_int_equal(policy_get(&t, "Bob@b.test", PA_POLICY, NULL), POLICY_REQUIRE);
	assert_int_equal(policy_get(&t, "bob@b.test", PA_POLICY, NULL), POLICY_NEVER);
	policy_table_release(&t);

	/* Folded: the two collide on Policy, named with the second line. */
	policy_table_init(&t);
	policy_table_set(&t, "Bob@b.test", PA_POLICY, POLICY_REQUIRE, 1, NULL);
	policy_table_set(&t, "bob@b.test", PA_POLICY, POLICY_NEVER, 2, NULL);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_ERR_EXISTS);
	assert_int_equal(line, 2);
	assert_string_equal(err.msg, "Policy for 'bob@b.test' is already set at line 1");
	policy_table_release(&t);

	/* Folded, different attributes: the entries merge. */
	policy_table_init(&t);
	policy_table_set(&t, "Bob@b.test", PA_POLICY, POLICY_REQUIRE, 1, NULL);
	policy_table_set(&t, "carol@b.test", PA_POLICY, POLICY_NEVER, 2, NULL);
	policy_table_set(&t, "BOB@b.test", PA_SIGN, 1, 3, NULL);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_OK);
	assert_int_equal(t.count, 2);
	assert_int_equal(policy_get(&t, "bob@b.test", PA_POLICY, NULL), POLICY_REQUIRE);
	assert_int_equal(policy_get(&t, "bob@b.test", PA_SIGN, NULL), 1);
	assert_int_equal(policy_get(&t, "carol@b.test", PA_POLICY, NULL), POLICY_NEVER);
	policy_table_release(&t);

	/* A sub-address can never be looked up: refused, with its line. */
	policy_table_init(&t);
	policy_table_set(&t, "b.test", PA_POLICY, POLICY_REQUIRE, 1, NULL);
	policy_table_set(&t, "bob+x@b.test", PA_POLICY, POLICY_NEVER, 4, NULL);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_ERR_SYNTAX);
	assert_int_equal(line, 4);
	assert_non_null(strstr(err.msg, "'bob+x@b.test' names a sub-address"));
	policy_table_release(&t);
}

/* Issue 15 item 5: every spelling of a require recipient, normalised once, meets the rule. */
static void
test_every_spelling_of_a_recipient_meets_its_rule(void **state)
{
	static const struct addr_opts folded = { false, "+" };
	static const struct { const char *addr; int expect; } lookups[] = {
		{ "bob@partner.example", POLICY_REQUIRE },
		{ "bob@partner.example.", POLICY_REQUIRE },		/* final dot */
		{ "BOB+x@Partner.Example.", POLICY_REQUIRE },
		{ "\"bob\"@partner.example", POLICY_REQUIRE },		/* quoted local part */
		{ "\"b\\ob\"@partner.example", POLICY_REQUIRE },
		{ "x@sub.partner.example.", POLICY_REQUIRE },		/* suffix rule, final dot */
		{ "carol@b\xc3\xbc" "cher.example", POLICY_REQUIRE },	/* U-label vs the rule's A-label */
		{ "carol@xn--bcher-kva.example", POLICY_REQUIRE },
		{ "carol@XN--BCHER-KVA.example.", POLICY_REQUIRE },
		{ "dan@stra\xc3\x9f" "e.example", POLICY_REQUIRE },	/* rule written as a U-label */
		{ "dan@xn--strae-oqa.example", POLICY_REQUIRE },
		{ "x@other.example", POLICY_ENCRYPT },
	};
	struct policy_table t;
	struct cables_err err;
	unsigned int line = 0;

	policy_table_init(&t);
	t.dflt[PA_POLICY] = POLICY_ENCRYPT;
	assert_int_equal(policy_table_set(&t, "partner.example", PA_POLICY, POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&t, ".Partner.Example", PA_POLICY, POLICY_REQUIRE, 2, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&t, "xn--bcher-kva.example", PA_POLICY, POLICY_REQUIRE, 3, NULL), CABLES_OK);
	assert_int_equal(policy_table_set(&t, "Stra\xc3\x9f" "e.example", PA_POLICY, POLICY_REQUIRE, 4, NULL),
	    CABLES_OK);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_OK);
	assert_string_equal(t.entries[1].match, ".partner.example");
	assert_string_equal(t.entries[3].match, "xn--strae-oqa.example");
	for (size_t i = 0; i < N_ELEMENTS(lookups); i++) {
		char *norm = addr_normalize(lookups[i].addr, &folded);

		assert_non_null(norm);
		if (policy_get(&t, norm, PA_POLICY, NULL) != lookups[i].expect)
			fail_msg("%s (%s): not %s", lookups[i].addr, norm, policy_name((enum enc_policy)lookups[i].expect));
		free(norm);
	}
	policy_table_release(&t);

	/* A rule for a name IDNA 2008 refuses is a configuration error, with its line. */
	policy_table_init(&t);
	policy_table_set(&t, "xn--zz.example", PA_POLICY, POLICY_REQUIRE, 7, NULL);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_ERR_SYNTAX);
	assert_int_equal(line, 7);
	policy_table_release(&t);
	(void)state;
}

static void
test_names_and_values(void **state)
{
	char words[128];
	int v;

	for (int a = 0; a < PA_COUNT; a++)
		assert_int_equal(policy_attr_find(policy_attr_name((enum policy_attr)a)), a);
	assert_int_equal(policy_attr_find("on-decrypterror"), PA_ON_DECRYPT_ERROR);
	assert_int_equal(policy_attr_find("Colour"), -1);
	for (int p = POLICY_NEVER; p <= POLICY_REQUIRE; p++) {
		assert_true(policy_value_parse(PA_POLICY, policy_name((enum enc_policy)p), &v));
		assert_int_equal(v, p);
	}
	assert_true(policy_value_parse(PA_SIGN, "TRUE", &v));
	assert_int_equal(v, 1);
	assert_true(policy_value_parse(PA_SELF, "off", &v));
	assert_int_equal(v, 0);
	assert_false(policy_value_parse(PA_ON_KEY_NOT_FOUND, "accept", &v));
	assert_true(policy_value_parse(PA_ON_DECRYPT_ERROR, "quarantine", &v));
	assert_int_equal(v, ACTION_QUARANTINE);
	assert_false(policy_value_parse(PA_ON_INTERNAL_ERROR, "quarantine", &v));
	assert_string_equal(policy_value_name(PA_FORMAT, FORMAT_PGP), "pgp");
	assert_string_equal(policy_value_name(PA_SIGN, 1), "yes");
	policy_value_words(PA_ON_DECRYPT_ERROR, words, sizeof(words));
	assert_string_equal(words, "tempfail, reject, accept or quarantine");
	policy_value_words(PA_POLICY, words, sizeof(words));
	assert_string_equal(words, "require, encrypt or never");
	policy_value_words(PA_SIGN, words, sizeof(words));
	assert_string_equal(words, "yes or no");
	assert_string_equal(fail_action_name(ACTION_QUARANTINE), "quarantine");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_most_specific_entry_wins_in_any_order),
		cmocka_unit_test(test_attributes_are_decided_one_by_one),
		cmocka_unit_test(test_setting_an_attribute_twice_names_the_first_line),
		cmocka_unit_test(test_bad_targets_are_refused),
		cmocka_unit_test(test_normalize_follows_the_address_options),
		cmocka_unit_test(test_every_spelling_of_a_recipient_meets_its_rule),
		cmocka_unit_test(test_names_and_values),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
