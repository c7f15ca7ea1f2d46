/*
 * test_unresponsive - keyd's marks on domains whose lookups got no answer
 * (keyd/unresponsive.c), with a fixed clock: two strikes make a mark (an
 * answer between them, or too long, starts again); a mark lasts its hold time
 * and no longer, another failure extends it, an answer clears it, hold 0
 * keeps nothing, case does not matter, and the table stays bounded when a
 * sender names many dead domains (the newest marks are kept, the old
 * ones pushed out, never memory grown).  The evidence: a domain is silent
 * since a time only if no answer of it was kept since, and an answer lost
 * to another domain in its slot makes it "unknown", never silent; the
 * domain that answered last (not the one asked about) is the probe's.
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
		{ MARK, 1604, 600, true, true },
		{ MARK, 2000, 0, false, true },		/* UnresponsiveTime 0: nothing new kept (the old mark runs on) */
		{ LOOK, 2204, 0, false, false },
		{ MARK, 2300, 0, false, false },
	};

	unresponsive_init(&u);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		time_t now = T0 + steps[i].at;

		if (steps[i].op == MARK)
			assert_int_equal(unresponsive_mark(&u, "dead.test", now, steps[i].hold, 1, "SMIMEA: no answer"),
			    steps[i].fresh);
		else if (steps[i].op == CLEAR)
			unresponsive_answered(&u, "dead.test", now, steps[i].at * 1000);
		if (marked("dead.test", now) != steps[i].marked)
			fail_msg("step %zu: marked should be %d", i, steps[i].marked);
	}
	assert_int_equal(u.marked, 3);
	assert_int_equal(u.cleared, 1);
}

/*
 * Two strikes make a mark: the first alone marks nothing; an answer
 * between them starts the count again; a strike older than the hold time
 * no longer counts.
 */
static void
test_strikes(void **state)
{
	enum op { STRIKE, CLEAR };
	static const struct { enum op op; long at; bool fresh, marked; } steps[] = {
		{ STRIKE, 0, false, false },		/* one witness: not yet */
		{ STRIKE, 1, true, true },		/* two: marked */
		{ STRIKE, 2, false, true },		/* a third extends it */
		{ CLEAR, 3, false, false },		/* an answer: the mark and the count are gone */
		{ STRIKE, 4, false, false },
		{ STRIKE, 700, false, false },		/* the last strike is older than the hold time: a first one */
		{ STRIKE, 1000, true, true },
		{ STRIKE, 1599, false, true },		/* extended to 2199 */
		{ STRIKE, 2199, false, false },		/* ended: a first strike again */
	};

	unresponsive_init(&u);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		time_t now = T0 + steps[i].at;

		if (steps[i].op == STRIKE)
			assert_int_equal(unresponsive_mark(&u, "dead.test", now, 600, UNRESPONSIVE_STRIKES, "no answer"),
			    steps[i].fresh);
		else
			unresponsive_answered(&u, "dead.test", now, steps[i].at * 1000);
		if (marked("dead.test", now) != steps[i].marked)
			fail_msg("step %zu: marked should be %d", i, steps[i].marked);
	}
	assert_int_equal(u.marked, 2);
}

static void
test_reason_and_until(void **state)
{
	char why[256];
	time_t until;

	unresponsive_init(&u);
	unresponsive_mark(&u, "Dead.Test", T0, 300, 1, "SMIMEA: no answer within 1000 ms");
	unresponsive_mark(&u, "dead.test", T0 + 10, 300, 1, "OPENPGPKEY: no answer within 1000 ms");
	assert_true(unresponsive_get(&u, "DEAD.test", T0 + 20, &until, why, sizeof(why)));
	assert_int_equal(until, T0 + 310);
	assert_string_equal(why, "2 lookups at dead.test got no answer in the last 20 s: "
	    "OPENPGPKEY: no answer within 1000 ms");
	assert_false(marked("live.test", T0 + 20));
	assert_false(marked("sub.dead.test", T0 + 20));
	unresponsive_answered(&u, "live.test", T0 + 20, 20000);	/* nothing to clear: nothing changes */
	assert_true(marked("dead.test", T0 + 20));
	assert_int_equal(u.cleared, 0);
	unresponsive_answered(&u, "DEAD.TEST", T0 + 21, 21000);
	assert_false(marked("dead.test", T0 + 21));
	assert_int_equal(u.cleared, 1);
}

/* The index of domain's evidence slot (found by writing it into an empty table). */
static size_t
answer_slot(const char *domain)
{
	size_t i = 0;

	unresponsive_init(&u);
	unresponsive_answered(&u, domain, T0, 1);
	while (u.answers[i].hash == 0)
		i++;
	return i;
}

/* A domain whose answers land in dead.test's evidence slot. */
static void
slot_mate(char *out, size_t len)
{
	size_t mine = answer_slot("dead.test");

	for (int i = 0;; i++) {
		snprintf(out, len, "mate%d.test", i);
		if (answer_slot(out) == mine)
			return;
	}
}

/*
 * Condition 1's evidence, a table of answers then questions: silent since
 * a time only if no answer was kept since; an answer of another domain
 * in the same slot since then hides whether it answered: unknown.
 */
static void
test_silent_since(void **state)
{
	static const struct {
		const char *answered;
		long long at, since;
		enum unresponsive_evidence ev;
	} steps[] = {
		{ NULL, 0, 0, UNRESPONSIVE_SILENT },			/* never answered */
		{ "dead.test", 1000, 900, UNRESPONSIVE_ANSWERED },	/* answered in the window */
		{ NULL, 0, 1000, UNRESPONSIVE_ANSWERED },		/* at its first instant too */
		{ NULL, 0, 1001, UNRESPONSIVE_SILENT },			/* not since */
		{ "DEAD.test", 2000, 1500, UNRESPONSIVE_ANSWERED },	/* case does not matter */
		{ "live.test", 3000, 2500, UNRESPONSIVE_SILENT },	/* another domain's answer: still silent */
		{ "MATE", 4000, 3500, UNRESPONSIVE_UNKNOWN },		/* its slot taken since: not known, never silent */
		{ NULL, 0, 4001, UNRESPONSIVE_SILENT },			/* taken before the window: silent */
		{ "dead.test", 3999, 3998, UNRESPONSIVE_ANSWERED },	/* a late write never moves the time back */
		{ NULL, 0, 4001, UNRESPONSIVE_SILENT },
	};
	char mate[64];

	slot_mate(mate, sizeof(mate));
	unresponsive_init(&u);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const char *who = steps[i].answered;

		if (who != NULL)
			unresponsive_answered(&u, strcmp(who, "MATE") == 0 ? mate : who, T0, steps[i].at);
		if (unresponsive_silent_since(&u, "dead.test", steps[i].since) != steps[i].ev)
			fail_msg("step %zu: evidence should be %d", i, (int)steps[i].ev);
	}
}

/* The probe's zone: the domain that answered last, not the one asked about; none before any answer. */
static void
test_other(void **state)
{
	char zone[UNRESPONSIVE_DOMAIN_MAX];

	unresponsive_init(&u);
	assert_false(unresponsive_other(&u, "dead.test", zone, sizeof(zone)));
	unresponsive_answered(&u, "Lists.Test", T0, 1);
	assert_true(unresponsive_other(&u, "dead.test", zone, sizeof(zone)));
	assert_string_equal(zone, "lists.test");
	assert_false(unresponsive_other(&u, "lists.test", zone, sizeof(zone)));
	unresponsive_answered(&u, "keys.test", T0, 2);
	unresponsive_answered(&u, "lists.test", T0, 3);
	assert_true(unresponsive_other(&u, "lists.test", zone, sizeof(zone)));
	assert_string_equal(zone, "keys.test");
	assert_true(unresponsive_other(&u, "dead.test", zone, sizeof(zone)));
	assert_string_equal(zone, "lists.test");
	for (int i = 0; i < 10; i++) {
		snprintf(zone, sizeof(zone), "d%d.test", i);
		unresponsive_answered(&u, zone, T0, 4 + i);
	}
	assert_true(unresponsive_other(&u, "d9.test", zone, sizeof(zone)));
	assert_string_equal(zone, "d8.test");
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
		unresponsive_mark(&u, name, T0 + i, 100000, 1, "no answer");
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
	assert_false(unresponsive_mark(&u, longname, T0, 600, 1, "no answer"));
	assert_false(marked(longname, T0));
	assert_false(unresponsive_mark(&u, "", T0, 600, 1, "no answer"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mark_lifetime),
		cmocka_unit_test(test_strikes),
		cmocka_unit_test(test_reason_and_until),
		cmocka_unit_test(test_silent_since),
		cmocka_unit_test(test_other),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
