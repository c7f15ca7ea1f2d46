/*
 * test_domainpolicy - the _cables-policy TXT record (lib/domainpolicy.c):
 * what is a statement and what is not, table-driven, each refusal with
 * its reason; the record cables-keyctl publishes parses.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "domainpolicy.h"

static const char *const taken[] = {
	"\"" DOMAINPOLICY_REQUIRE_TEXT "\"",
	"\"v=cables1;p=require\"",
	"\"v=cables1; p=require;\"",
	"\"v=cables1; \" \"p=require\"",		/* two strings, joined */
	"\"v=cables1\\059 p=require\"",			/* \DDD escape of ';' */
	"\"v=cables1; p=require; t=later\"",		/* a tag of a later version: skipped */
	"  \"v=cables1 ;\tp=require \"  ",
};

static const struct {
	const char *rdata;
	const char *why;
} refused[] = {
	{ "", "an empty record" },
	{ "\"\"", "an empty record" },
	{ "v=cables1; p=require", "not a quoted string" },
	{ "\"v=cables1; p=require", "without its closing quote" },
	{ "\"v=cables1; p=require\\", "without its closing quote" },
	{ "\"v=cables1\\9; p=require\"", "bad \\DDD escape" },
	{ "\"v=cables1\\999; p=require\"", "bad \\DDD escape" },
	{ "\"v=cables1;\\010p=require\"", "not printable ASCII" },
	{ "\"v=cables2; p=require\"", "does not begin with v=cables1" },
	{ "\"p=require; v=cables1\"", "does not begin with v=cables1" },
	{ "\"v=cables1\"", "no p= tag" },
	{ "\"v=cables1; p=none\"", "p=none is not require" },
	{ "\"v=cables1; p=require; p=require\"", "given twice" },
	{ "\"v=cables1; v=cables1; p=require\"", "given twice" },
	{ "\"v=cables1;; p=require\"", "an empty tag" },
	{ "\";v=cables1; p=require\"", "an empty tag" },
	{ "\"v=cables1; p=require x\"", "is not name=value" },
	{ "\"v=cables1; P=require\"", "is not name=value" },
	{ "\"v=cables1; p=\"", "is not name=value" },
	{ "\"v=cables1; =require\"", "is not name=value" },
};

static void
test_statements_taken(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++) {
		enum domainpolicy p = (enum domainpolicy)-1;
		struct cables_err err;

		if (domainpolicy_parse(taken[i], strlen(taken[i]), &p, &err) != CABLES_OK)
			fail_msg("'%s' refused: %s", taken[i], err.msg);
		assert_int_equal(p, DOMAINPOLICY_REQUIRE);
	}
}

static void
test_others_refused_with_the_reason(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		enum domainpolicy p;
		struct cables_err err;

		if (domainpolicy_parse(refused[i].rdata, strlen(refused[i].rdata), &p, &err) != CABLES_ERR_SYNTAX)
			fail_msg("'%s' taken", refused[i].rdata);
		if (strstr(err.msg, refused[i].why) == NULL)
			fail_msg("'%s': '%s' does not say '%s'", refused[i].rdata, err.msg, refused[i].why);
	}
}

static void
test_length_is_respected(void **state)
{
	/* The bytes after len are not the record's: a statement cut short is none. */
	static const char text[] = "\"v=cables1; p=require\"";
	enum domainpolicy p;
	char big[DOMAINPOLICY_TEXT_MAX + 16];

	(void)state;
	assert_int_equal(domainpolicy_parse(text, strlen(text) - 1, &p, NULL), CABLES_ERR_SYNTAX);
	memset(big, 'a', sizeof(big));
	big[0] = '"';
	big[sizeof(big) - 1] = '"';
	assert_int_equal(domainpolicy_parse(big, sizeof(big), &p, NULL), CABLES_ERR_SYNTAX);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statements_taken),
		cmocka_unit_test(test_others_refused_with_the_reason),
		cmocka_unit_test(test_length_is_respected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
