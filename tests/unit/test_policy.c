/* test_policy - the per-recipient policy table: precedence, deciding rule, validation. */
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

struct rule_spec {
	const char *match;
	enum enc_policy policy;
	unsigned int line;
};

/*
 * Rules of every kind, overlapping, so that only the precedence (address >
 * exact domain > longest .suffix > default) can pick the right one.
 */
static const struct rule_spec rules[] = {
	{ ".test", POLICY_NEVER, 10 },
	{ ".c.test", POLICY_REQUIRE, 11 },
	{ ".x.c.test", POLICY_NEVER, 12 },
	{ "b.test", POLICY_REQUIRE, 13 },
	{ ".b.test", POLICY_ENCRYPT, 14 },
	{ "bob@b.test", POLICY_NEVER, 15 },
	{ "alice@x.c.test", POLICY_ENCRYPT, 16 },
	{ "y.c.test", POLICY_NEVER, 17 },
};

static const struct {
	const char *addr;
	enum enc_policy expect;
	const char *decided_by;		/* NULL: the default */
} lookups[] = {
	{ "bob@b.test", POLICY_NEVER, "bob@b.test" },		/* address beats domain */
	{ "carol@b.test", POLICY_REQUIRE, "b.test" },		/* domain beats .suffix */
	{ "carol@sub.b.test", POLICY_ENCRYPT, ".b.test" },	/* longest suffix */
	{ "bob@sub.b.test", POLICY_ENCRYPT, ".b.test" },	/* address rule is for b.test only */
	{ "dave@c.test", POLICY_NEVER, ".test" },		/* ".c.test" is not c.test itself */
	{ "dave@z.c.test", POLICY_REQUIRE, ".c.test" },
	{ "dave@x.c.test", POLICY_REQUIRE, ".c.test" },
	{ "dave@w.x.c.test", POLICY_NEVER, ".x.c.test" },
	{ "alice@x.c.test", POLICY_ENCRYPT, "alice@x.c.test" },	/* address beats suffix */
	{ "alice@w.x.c.test", POLICY_NEVER, ".x.c.test" },
	{ "erin@y.c.test", POLICY_NEVER, "y.c.test" },		/* domain beats longer-matching suffix */
	{ "erin@test", POLICY_ENCRYPT, NULL },			/* ".test" is not test itself */
	{ "erin@xtest", POLICY_ENCRYPT, NULL },
	{ "erin@example.org", POLICY_ENCRYPT, NULL },
	{ "b.test", POLICY_ENCRYPT, NULL },			/* not an address: no domain */
	{ "", POLICY_ENCRYPT, NULL },				/* null sender */
};

static void
table_of(struct policy_table *t, const struct rule_spec *r, size_t n, bool reverse)
{
	struct cables_err err;

	memset(t, 0, sizeof(*t));
	t->dflt = POLICY_ENCRYPT;
	for (size_t i = 0; i < n; i++) {
		const struct rule_spec *s = &r[reverse ? n - 1 - i : i];

		if (policy_table_add(t, s->match, s->policy, s->line, &err) != CABLES_OK)
			fail_msg("policy_table_add('%s'): %s", s->match, err.msg);
	}
	assert_int_equal(t->count, n);
}

static void
check_lookups(const struct policy_table *t, const char *order)
{
	for (size_t i = 0; i < N_ELEMENTS(lookups); i++) {
		const struct policy_rule *rule = (const struct policy_rule *)t;	/* junk: must be overwritten */
		enum enc_policy p = policy_lookup(t, lookups[i].addr, &rule);
		const char *by = rule != NULL ? rule->match : NULL;

		if (p != lookups[i].expect)
			fail_msg("%s: '%s' got %s, expected %s", order, lookups[i].addr,
			    policy_name(p), policy_name(lookups[i].expect));
		if ((by == NULL) != (lookups[i].decided_by == NULL) ||
		    (by != NULL && strcmp(by, lookups[i].decided_by) != 0))
			fail_msg("%s: '%s' decided by '%s', expected '%s'", order, lookups[i].addr,
			    by != NULL ? by : "(default)",
			    lookups[i].decided_by != NULL ? lookups[i].decided_by : "(default)");
		if (rule != NULL && rule->value != (int)p)
			fail_msg("%s: '%s' returned rule says %s but lookup says %s", order,
			    lookups[i].addr, policy_name(rule->value), policy_name(p));
		/* Without the out parameter the answer is the same. */
		assert_int_equal(policy_lookup(t, lookups[i].addr, NULL), p);
	}
}

static void
test_most_specific_rule_wins_in_any_order(void **state)
{
	struct policy_table t;

	table_of(&t, rules, N_ELEMENTS(rules), false);
	check_lookups(&t, "forward");
	policy_table_release(&t);
	table_of(&t, rules, N_ELEMENTS(rules), true);
	check_lookups(&t, "reverse");
	policy_table_release(&t);
}

static void
test_deciding_rule_carries_its_config_line(void **state)
{
	struct policy_table t;
	const struct policy_rule *rule = NULL;

	table_of(&t, rules, N_ELEMENTS(rules), true);
	assert_int_equal(policy_lookup(&t, "carol@b.test", &rule), POLICY_REQUIRE);
	assert_non_null(rule);
	assert_int_equal(rule->line, 13);
	assert_int_equal(policy_lookup(&t, "dave@w.x.c.test", &rule), POLICY_NEVER);
	assert_non_null(rule);
	assert_int_equal(rule->line, 12);
	assert_int_equal(policy_lookup(&t, "bob@b.test", &rule), POLICY_NEVER);
	assert_int_equal(rule->line, 15);
	policy_table_release(&t);
}

static void
test_default_decides_when_no_rule_matches(void **state)
{
	struct policy_table t;
	const struct policy_rule *rule;
	static const enum enc_policy all[] = { POLICY_NEVER, POLICY_ENCRYPT, POLICY_REQUIRE };

	memset(&t, 0, sizeof(t));
	for (size_t i = 0; i < N_ELEMENTS(all); i++) {
		t.dflt = all[i];
		rule = (const struct policy_rule *)&t;
		assert_int_equal(policy_lookup(&t, "bob@b.test", &rule), all[i]);
		assert_null(rule);
	}
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_NEVER, 1, NULL), CABLES_OK);
	t.dflt = POLICY_REQUIRE;
	rule = (const struct policy_rule *)&t;
	assert_int_equal(policy_lookup(&t, "bob@c.test", &rule), POLICY_REQUIRE);
	assert_null(rule);
	assert_int_equal(policy_lookup(&t, "bob@b.test", &rule), POLICY_NEVER);
	assert_non_null(rule);
	assert_string_equal(rule->match, "b.test");
	policy_table_release(&t);
}

static void
test_rules_are_stored_lowercase_and_match_normalised_addresses(void **state)
{
	static const struct addr_opts ao = { false, "+" };
	struct policy_table t;
	const struct policy_rule *rule;
	unsigned int line = 0;
	char *addr;

	memset(&t, 0, sizeof(t));
	t.dflt = POLICY_ENCRYPT;
	assert_int_equal(policy_table_add(&t, "Bob@B.Test", POLICY_REQUIRE, 3, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, ".Example.ORG", POLICY_NEVER, 4, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "C.TEST", POLICY_NEVER, 5, NULL), CABLES_OK);
	/* Adding folds domains only; normalising folds the local part as lookups do. */
	assert_string_equal(t.rules[0].match, "Bob@b.test");
	assert_int_equal(policy_table_normalize(&t, &ao, &line, NULL), CABLES_OK);
	assert_string_equal(t.rules[0].match, "bob@b.test");
	assert_string_equal(t.rules[1].match, ".example.org");
	assert_string_equal(t.rules[2].match, "c.test");

	addr = addr_normalize("BOB+Lists@B.TEST", &ao);
	assert_string_equal(addr, "bob@b.test");
	assert_int_equal(policy_lookup(&t, addr, &rule), POLICY_REQUIRE);
	assert_non_null(rule);
	assert_int_equal(rule->line, 3);
	free(addr);

	addr = addr_normalize("Erin@Mail.Example.Org", &ao);
	assert_int_equal(policy_lookup(&t, addr, &rule), POLICY_NEVER);
	assert_non_null(rule);
	assert_string_equal(rule->match, ".example.org");
	free(addr);

	addr = addr_normalize("x@C.Test", &ao);
	assert_int_equal(policy_lookup(&t, addr, &rule), POLICY_NEVER);
	assert_non_null(rule);
	assert_int_equal(rule->line, 5);
	free(addr);
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
	memset(&t, 0, sizeof(t));
	assert_int_equal(policy_table_add(&t, "Bob@b.test", POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "bob@b.test", POLICY_NEVER, 2, NULL), CABLES_OK);
	assert_int_equal(policy_table_normalize(&t, &sensitive, &line, &err), CABLES_OK);
	assert_int_equal(policy_lookup(&t, "Bob@b.test", NULL), POLICY_REQUIRE);
	assert_int_equal(policy_lookup(&t, "bob@b.test", NULL), POLICY_NEVER);
	policy_table_release(&t);

	/* Folded: the same two rules collide, and the second is named. */
	memset(&t, 0, sizeof(t));
	assert_int_equal(policy_table_add(&t, "Bob@b.test", POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "bob@b.test", POLICY_NEVER, 2, NULL), CABLES_OK);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_ERR_EXISTS);
	assert_int_equal(line, 2);
	assert_non_null(strstr(err.msg, "a policy for 'bob@b.test' is already set at line 1"));
	policy_table_release(&t);

	/* A sub-address can never be looked up: refused, with its line. */
	memset(&t, 0, sizeof(t));
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "bob+x@b.test", POLICY_NEVER, 4, NULL), CABLES_OK);
	assert_int_equal(policy_table_normalize(&t, &folded, &line, &err), CABLES_ERR_SYNTAX);
	assert_int_equal(line, 4);
	assert_non_null(strstr(err.msg, "'bob+x@b.test' names a sub-address"));
	policy_table_release(&t);
}

static void
test_add_rejects_bad_targets(void **state)
{
	static const char *const bad[] = {
		"", ".", "..", "..b.test", "b..test", "b.test.", ".b.test.", "b test", "b\ttest",
		"@b.test", "bob@", "bob@.b.test", "bob@b..test", "bob smith@b.test",
		"<bob@b.test>", "bob@b test", "b/test", "b\x01.test",
	};
	struct policy_table t;
	struct cables_err err;

	memset(&t, 0, sizeof(t));
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		char expect[CABLES_ERR_MAX];
		cables_status st;

		snprintf(expect, sizeof(expect), "'%s' is not an address, a domain or a .domain", bad[i]);
		err.msg[0] = '\0';
		st = policy_table_add(&t, bad[i], POLICY_REQUIRE, 1, &err);
		if (st != CABLES_ERR_SYNTAX || strstr(err.msg, expect) == NULL)
			fail_msg("policy_table_add('%s'): status %d, reason '%s'", bad[i], st, err.msg);
		assert_int_equal(policy_table_add(&t, bad[i], POLICY_REQUIRE, 1, NULL), CABLES_ERR_SYNTAX);
		assert_int_equal(t.count, 0);
	}
	policy_table_release(&t);
}

static void
test_add_rejects_duplicates_naming_the_first_line(void **state)
{
	struct policy_table t;
	struct cables_err err;

	memset(&t, 0, sizeof(t));
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_REQUIRE, 7, &err), CABLES_OK);
	assert_int_equal(policy_table_add(&t, ".b.test", POLICY_NEVER, 8, &err), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "bob@b.test", POLICY_NEVER, 9, &err), CABLES_OK);

	assert_int_equal(policy_table_add(&t, "B.Test", POLICY_NEVER, 12, &err), CABLES_ERR_EXISTS);
	assert_non_null(strstr(err.msg, "a policy for 'B.Test' is already set at line 7"));
	assert_int_equal(policy_table_add(&t, ".B.TEST", POLICY_REQUIRE, 13, &err), CABLES_ERR_EXISTS);
	assert_non_null(strstr(err.msg, "already set at line 8"));
	assert_int_equal(policy_table_add(&t, "bob@B.TEST", POLICY_REQUIRE, 14, &err), CABLES_ERR_EXISTS);
	assert_non_null(strstr(err.msg, "already set at line 9"));
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_NEVER, 15, NULL), CABLES_ERR_EXISTS);

	/* The first rule stays in force. */
	assert_int_equal(t.count, 3);
	assert_int_equal(policy_lookup(&t, "carol@b.test", NULL), POLICY_REQUIRE);
	assert_int_equal(t.rules[0].line, 7);
	policy_table_release(&t);
}

static void
test_policy_names_round_trip(void **state)
{
	static const struct { enum enc_policy p; const char *name; } names[] = {
		{ POLICY_NEVER, "never" },
		{ POLICY_ENCRYPT, "encrypt" },
		{ POLICY_REQUIRE, "require" },
	};
	static const char *const bad[] = {
		"", "none", "yes", "encrypted", "requires", "requir", " never", "never ", "always",
	};
	enum enc_policy out;

	for (size_t i = 0; i < N_ELEMENTS(names); i++) {
		assert_string_equal(policy_name(names[i].p), names[i].name);
		out = (enum enc_policy)-1;
		assert_true(policy_parse(policy_name(names[i].p), &out));
		assert_int_equal(out, names[i].p);
	}
	assert_true(policy_parse("REQUIRE", &out));
	assert_int_equal(out, POLICY_REQUIRE);
	assert_true(policy_parse("Never", &out));
	assert_int_equal(out, POLICY_NEVER);
	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		out = POLICY_ENCRYPT;
		if (policy_parse(bad[i], &out))
			fail_msg("policy_parse('%s') accepted", bad[i]);
		assert_int_equal(out, POLICY_ENCRYPT);	/* untouched */
	}
}

static void
test_release_empties_the_table(void **state)
{
	struct policy_table t;

	memset(&t, 0, sizeof(t));
	policy_table_release(&t);	/* an empty table is fine */
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_REQUIRE, 1, NULL), CABLES_OK);
	assert_int_equal(policy_table_add(&t, "bob@c.test", POLICY_NEVER, 2, NULL), CABLES_OK);
	policy_table_release(&t);
	assert_int_equal(t.count, 0);
	assert_null(t.rules);
	/* Reusable after release, and the old rules are gone. */
	assert_int_equal(policy_table_add(&t, "b.test", POLICY_NEVER, 3, NULL), CABLES_OK);
	assert_int_equal(t.count, 1);
	policy_table_release(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_most_specific_rule_wins_in_any_order),
		cmocka_unit_test(test_deciding_rule_carries_its_config_line),
		cmocka_unit_test(test_default_decides_when_no_rule_matches),
		cmocka_unit_test(test_rules_are_stored_lowercase_and_match_normalised_addresses),
		cmocka_unit_test(test_normalize_follows_the_address_options),
		cmocka_unit_test(test_add_rejects_bad_targets),
		cmocka_unit_test(test_add_rejects_duplicates_naming_the_first_line),
		cmocka_unit_test(test_policy_names_round_trip),
		cmocka_unit_test(test_release_empties_the_table),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
