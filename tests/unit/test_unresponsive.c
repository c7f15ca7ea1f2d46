/*
 * test_unresponsive - keyd's marks on domains whose lookups got no answer
 * (keyd/unresponsive.c), with a fixed clock: a mark lasts its hold time
 * and no longer, another failure extends it, an answer clears it, a
 * failure within the quiet time after an answer marks nothing, hold 0
 * keeps nothing, case does not matter, and the table stays bounded when a
 * sender names many dead domains (the newest marks are kept, the old
 * ones pushed out, never memory grown).
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "unresponsive.h"

#define T0 1800000000

static struct unresponsive u;

static bool
marked(const char *domain, time_t now)
{
	time_t until;

	return unresponsive_get(&u, domain, now, &until, NULL, 0);
}

/* A table of steps on one domain: what happens at which time, and whether it is marked right after. */
static void
test_mark_lifetime(void **state)
{
	enum op { MARK, CLEAR, LOOK };
	static const struct { enum op op; long at; unsigned long hold; bool fresh, marked; } steps[] = {
		{ LOOK, 0, 0, false, false },
		{ MARK, 0, 600, true, true },		/* first failure: marked for 600 s */
		{ LOOK, 599, 0, false, true },
		{ LOOK, 600, 0, false, false },		/* and not a second longer */
		{ MARK, 700, 600, true, true },		/* an expired mark is a new one */
		{ MARK, 1000, 600, false, true },	/* another failure extends it: until 1600 */
		{ LOOK, 1599, 0, false, true },
		{ CLEAR, 1599, 0, false, false },	/* the servers answered */
		{ MARK, 1603, 600, false, false },	/* no answer 4 s after one: keyd's side, not the domain */
		{ MARK, 1604, 600, true, true },	/* 5 s after: the domain */
		{ MARK, 2000, 0, false, true },		/* UnresponsiveTime 0: nothing new kept (the old mark runs on) */
		{ LOOK, 2204, 0, false, false },
		{ MARK, 2300, 0, false, false },
	};

	unresponsive_init(&u);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		time_t now = T0 + steps[i].at;

		if (steps[i].op == MARK)
			assert_int_equal(unresponsive_mark(&u, "dead.test", now, steps[i].hold, 4, "SMIMEA: no answer"),
			    steps[i].fresh);
		else if (steps[i].op == CLEAR)
			unresponsive_answered(&u, "dead.test", now);
		if (marked("dead.test", now) != steps[i].marked)
			fail_msg("step %zu: marked should be %d", i, steps[i].marked);
	}
	assert_int_equal(u.marked, 3);
	assert_int_equal(u.cleared, 1);
	assert_int_equal(u.spared, 1);
}

static void
test_reason_and_until(void **state)
{
	char why[256];
	time_t until;

	unresponsive_init(&u);
	unresponsive_mark(&u, "Dead.Test", T0, 300, 4, "SMIMEA: no answer within 1000 ms");
	unresponsive_mark(&u, "dead.test", T0 + 10, 300, 4, "OPENPGPKEY: no answer within 1000 ms");
	assert_true(unresponsive_get(&u, "DEAD.test", T0 + 20, &until, why, sizeof(why)));
	assert_int_equal(until, T0 + 310);
	assert_string_equal(why, "2 lookups at dead.test got no answer in the last 20 s: "
	    "OPENPGPKEY: no answer within 1000 ms");
	assert_false(marked("live.test", T0 + 20));
	assert_false(marked("sub.dead.test", T0 + 20));
	unresponsive_answered(&u, "live.test", T0 + 20);	/* nothing to clear: nothing changes */
	assert_true(marked("dead.test", T0 + 20));
	assert_int_equal(u.cleared, 0);
	/* live.test answered: a timeout right after does not mark it, nor does the case of its name matter. */
	assert_false(unresponsive_mark(&u, "LIVE.test", T0 + 21, 300, 4, "SMIMEA: no answer within 1000 ms"));
	assert_false(marked("live.test", T0 + 21));
}

/* Many dead domains: the table keeps a fixed size; every recent mark of the last slots' worth is there. */
static void
test_bounded(void **state)
{
	char name[64], longname[UNRESPONSIVE_DOMAIN_MAX + 8];
	size_t kept = 0;

	unresponsive_init(&u);
	for (int i = 0; i < 20000; i++) {
		snprintf(name, sizeof(name), "dead%d.test", i);
		unresponsive_mark(&u, name, T0 + i, 100000, 4, "no answer");
	}
	for (int i = 20000 - 64; i < 20000; i++) {
		snprintf(name, sizeof(name), "dead%d.test", i);
		kept += marked(name, T0 + 20000);
	}
	/* The newest marks push out the oldest in their window: nearly all of the last 64 are kept. */
	assert_true(kept >= 60);
	kept = 0;
	for (int i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "dead%d.test", i);
		kept += marked(name, T0 + 20000);
	}
	assert_true(kept < 64);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(unresponsive_mark(&u, longname, T0, 600, 4, "no answer"));
	assert_false(marked(longname, T0));
	assert_false(unresponsive_mark(&u, "", T0, 600, 4, "no answer"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_lifetime),
		cmocka_unit_test(test_reason_and_until),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
