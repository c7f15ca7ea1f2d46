/* test_senderlogins - the SenderLogins map and who may sign as a sender address. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "senderlogins.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct addr_opts opts = { false, "+" };

static struct sender_logins *
load_text(const char *text, struct cables_err *err, cables_status *st)
{
	char *dir = test_tempdir(), *path = xasprintf("%s/logins", dir);
	struct sender_logins *map = NULL;
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	*st = sender_logins_load(&map, path, &opts, err);
	unlink(path);
	test_rmdir(dir);
	free(path);
	free(dir);
	return map;
}

static void
test_map_lines_allow_their_logins_only(void **state)
{
	static const struct { const char *addr, *login; bool allowed; } cases[] = {
		{ "alice@a.test", "mallory", true },		/* listed */
		{ "alice@a.test", "MALLORY", true },		/* logins without regard to case */
		{ "alice@a.test", "webmail", true },		/* second of a comma list */
		{ "alice@a.test", "eve", false },		/* not listed */
		{ "bob@a.test", "ops", true },			/* "@domain" line */
		{ "alice@a.test", "ops", false },		/* the address's own line decides */
		{ "carol@c.test", "mallory", false },		/* no line at all */
		{ "alice@a.test", "", false },			/* not authenticated */
		{ "alice@a.test", NULL, false },
	};
	struct cables_err err;
	cables_status st;
	struct sender_logins *map = load_text("# comment\n\nAlice+x@A.Test mallory,webmail\n@a.test ops\n",
	    &err, &st);

	assert_int_equal(st, CABLES_OK);
	for (size_t i = 0; i < N_ELEMENTS(cases); i++)
		if (sender_logins_allows(map, cases[i].addr, cases[i].login) != cases[i].allowed)
			fail_msg("%s as %s: expected %s", cases[i].login != NULL ? cases[i].login : "(none)",
			    cases[i].addr, cases[i].allowed ? "allowed" : "refused");
	sender_logins_free(map);
}

static void
test_malformed_lines_are_refused_with_their_number(void **state)
{
	static const char *const bad[] = { "alice@a.test\n", "# ok\nnot-an-address mallory\n", "@ mallory\n" };
	struct cables_err err;
	cables_status st;

	for (size_t i = 0; i < N_ELEMENTS(bad); i++) {
		assert_null(load_text(bad[i], &err, &st));
		assert_int_equal(st, CABLES_ERR_SYNTAX);
		assert_non_null(strstr(err.msg, i == 1 ? ":2: " : ":1: "));
	}
}

static void
test_entitlement_needs_the_login_the_map_or_the_admin(void **state)
{
	struct cables_err err;
	cables_status st;
	struct sender_logins *map = load_text("alice@a.test mallory\n", &err, &st);
	char why[200];

	assert_true(sender_entitled(NULL, false, "alice@a.test", "Alice@A.test", why, sizeof(why)));
	assert_false(sender_entitled(NULL, false, "alice@a.test", "mallory", why, sizeof(why)));
	assert_string_equal(why, "login mallory may not send as alice@a.test (no SenderLogins)");
	assert_true(sender_entitled(map, false, "alice@a.test", "mallory", why, sizeof(why)));
	assert_false(sender_entitled(map, false, "alice@a.test", NULL, why, sizeof(why)));
	assert_string_equal(why, "not authenticated (SignUnauthenticated no)");
	assert_true(sender_entitled(map, true, "alice@a.test", "", why, sizeof(why)));
	/* SignUnauthenticated is about unauthenticated submitters, not wrong logins. */
	assert_false(sender_entitled(map, true, "alice@a.test", "eve", why, sizeof(why)));
	sender_logins_free(map);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_lines_allow_their_logins_only),
		cmocka_unit_test(test_malformed_lines_are_refused_with_their_number),
		cmocka_unit_test(test_entitlement_needs_the_login_the_map_or_the_admin),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
