/* test_authres - reading the authserv-id of received Authentication-Results fields, quoting values. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authres.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static void
test_servid_read_through_comments_quotes_and_folding(void **state)
{
	static const struct { const char *value, *id; cables_status st; } cases[] = {
		{ "mx.b.test; smime=pass", "mx.b.test", CABLES_OK },
		{ " mx.b.test; none", "mx.b.test", CABLES_OK },
		{ "mx.b.test 1; dkim=pass", "mx.b.test", CABLES_OK },		/* version */
		{ "mx.b.test", "mx.b.test", CABLES_OK },			/* no result at all */
		{ "(comment) mx.b.test;none", "mx.b.test", CABLES_OK },
		{ "(nested (comment \\) here)) mx.b.test ; x", "mx.b.test", CABLES_OK },
		{ "\r\n\tmx.b.test\r\n\t; smime=pass", "mx.b.test", CABLES_OK },	/* folded */
		{ "\"mx.b.test\"; smime=pass", "mx.b.test", CABLES_OK },
		{ "\"mx\\.b\\.test\"; smime=pass", "mx.b.test", CABLES_OK },	/* quoted-pairs */
		{ "\"mx.b\r\n .test\"; smime=pass", "mx.b .test", CABLES_OK },	/* folding inside quotes */
		{ "mx.b.test(c); smime=pass", "mx.b.test", CABLES_OK },
		{ "", "", CABLES_ERR_SYNTAX },
		{ "   ", "", CABLES_ERR_SYNTAX },
		{ "; smime=pass", "", CABLES_ERR_SYNTAX },
		{ "(unclosed mx.b.test; smime=pass", "", CABLES_ERR_SYNTAX },
		{ "\"mx.b.test; smime=pass", "", CABLES_ERR_SYNTAX },		/* unterminated quote */
		{ "mx.b.test@x; smime=pass", "", CABLES_ERR_SYNTAX },		/* not a token */
		{ "mx.b.test (unclosed", "", CABLES_ERR_SYNTAX },
		{ "((((((((((((((((((((((((((((((((((deep)))))))))))))))))))))))))))))))))) mx.b.test", "",
		    CABLES_ERR_SYNTAX },
	};
	char id[AUTHRES_ID_MAX];
	struct cables_err err;

	/* A NUL byte (found by fuzz_authres inside a quoted string) is not read past. */
	assert_int_equal(authres_servid("\"\0x\"; a=b", 8, id, sizeof(id), &err), CABLES_ERR_SYNTAX);
	assert_int_equal(authres_servid("mx(\0)", 6, id, sizeof(id), &err), CABLES_ERR_SYNTAX);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		cables_status st = authres_servid(cases[i].value, strlen(cases[i].value), id, sizeof(id), &err);

		if (st != cases[i].st)
			fail_msg("'%s': status %d, expected %d", cases[i].value, st, cases[i].st);
		if (st == CABLES_OK && strcmp(id, cases[i].id) != 0)
			fail_msg("'%s': id '%s', expected '%s'", cases[i].value, id, cases[i].id);
	}
	(void)state;
}

static void
test_servid_too_long_is_not_ours(void **state)
{
	char value[600], id[16];
	struct cables_err err;

	memset(value, 'a', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	assert_int_equal(authres_servid(value, strlen(value), id, sizeof(id), &err), CABLES_ERR_TOOBIG);
	assert_false(authres_claims(value, strlen(value), "mx.b.test"));
	(void)state;
}

static void
test_claims_ignores_case_and_final_dot_and_takes_unreadable(void **state)
{
	static const struct { const char *value; bool ours; } cases[] = {
		{ "mx.b.test; smime=pass", true },
		{ "MX.B.Test; smime=pass", true },
		{ "mx.b.test.; smime=pass", true },
		{ "\"MX.b.test.\" ; smime=pass", true },
		{ "(forged) \"mx.b.test\"; smime=pass", true },
		{ "mx.b.test\r\n ; smime=pass", true },
		{ "mx.c.test; smime=pass", false },
		{ "mx.b.test.evil; smime=pass", false },
		{ "b.test; smime=pass", false },
		{ "mx.b.tes; smime=pass", false },
		{ "(unreadable", true },		/* cannot tell: removed */
		{ "\"mx.b.test", true },
		{ "", true },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (authres_claims(cases[i].value, strlen(cases[i].value), "mx.b.test") != cases[i].ours)
			fail_msg("'%s': expected %s", cases[i].value, cases[i].ours ? "ours" : "not ours");
	(void)state;
}

static void
test_values_cannot_inject_results(void **state)
{
	static const struct { const char *in, *quoted, *value; } cases[] = {
		{ "alice@a.test", "\"alice@a.test\"", "\"alice@a.test\"" },
		{ "mx.b.test", "\"mx.b.test\"", "mx.b.test" },
		{ "x@y; smime=pass", "\"x@y; smime=pass\"", "\"x@y; smime=pass\"" },
		{ "a\"; smime=pass (", "\"a\\\"; smime=pass (\"", "\"a\\\"; smime=pass (\"" },
		{ "back\\slash", "\"back\\\\slash\"", "\"back\\\\slash\"" },
		{ "line\r\nX-Evil: 1", "\"line??X-Evil: 1\"", "\"line??X-Evil: 1\"" },
		{ "", "\"\"", "\"\"" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf q, v;

		buf_init(&q);
		buf_init(&v);
		authres_quote(&q, cases[i].in);
		authres_value(&v, cases[i].in);
		assert_string_equal(q.data, cases[i].quoted);
		assert_string_equal(v.data, cases[i].value);
		buf_release(&q);
		buf_release(&v);
	}
	assert_true(authres_is_token("mx.b.test"));
	assert_false(authres_is_token("mx b"));
	assert_false(authres_is_token("a;b"));
	assert_false(authres_is_token(""));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_servid_read_through_comments_quotes_and_folding),
		cmocka_unit_test(test_servid_too_long_is_not_ours),
		cmocka_unit_test(test_claims_ignores_case_and_final_dot_and_takes_unreadable),
		cmocka_unit_test(test_values_cannot_inject_results),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
