/*
 * test_batch - the lookups of one keyd request side by side (keyd/batch.c),
 * with a fake lookup: answers in the order asked; 1,000 addresses in one
 * request; a domain that never answers holds back nobody else, its
 * addresses alone answer tempfail, and the whole request waits no longer
 * than its deadline.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "batch.h"
#include "util.h"

/* The fake source: addresses at dead.test take 3 s (a server that drops queries); the rest answer at once. */
static void
fake_lookup(void *arg, const char *addr, const char *const *all, size_t nall, struct buf *out)
{
	if (strcasestr(addr, "@dead.test") != NULL) {
		struct timespec slow = { 3, 0 };

		nanosleep(&slow, NULL);
	}
	buf_printf(out, "result=%s none reason=fake\n", addr);
}

/* The addresses of the result= lines of out, one per line. */
static char *
results(const struct buf *out)
{
	struct buf r;

	buf_init(&r);
	for (const char *p = out->data; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
		if (strncmp(p, "result=", 7) == 0)
			buf_printf(&r, "%.*s\n", (int)strcspn(p + 7, " \n"), p + 7);
	buf_appends(&r, "");
	return r.data;
}

static void
test_answers_in_the_order_asked(void **state)
{
	const char *addrs[] = { "a@one.test", "b@two.test", "c@one.test", "d@three.test" };
	struct buf out;
	char *r;

	buf_init(&out);
	assert_int_equal(batch_run(fake_lookup, NULL, addrs, 4, 5000, &out), 0);
	r = results(&out);
	assert_string_equal(r, "a@one.test\nb@two.test\nc@one.test\nd@three.test\n");
	free(r);
	buf_release(&out);
}

static void
test_a_thousand_addresses(void **state)
{
	char **addrs = xcalloc(1000, sizeof(*addrs));
	struct buf out;
	size_t lines = 0;

	for (int i = 0; i < 1000; i++)
		addrs[i] = xasprintf("member%d@d%d.test", i, i % 7);
	buf_init(&out);
	assert_int_equal(batch_run(fake_lookup, NULL, (const char *const *)addrs, 1000, 10000, &out), 0);
	for (size_t i = 0; i < out.len; i++)
		lines += out.data[i] == '\n';
	assert_int_equal(lines, 1000);
	assert_non_null(strstr(out.data, "result=member999@d5.test none reason=fake\n"));
	for (int i = 0; i < 1000; i++)
		free(addrs[i]);
	free(addrs);
	buf_release(&out);
}

static size_t
count(const char *text, const char *what)
{
	size_t n = 0;

	for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
		n++;
	return n;
}

/* 40 addresses at a domain that never answers first, then 200 others: the others are all answered. */
static void
test_a_dead_domain_holds_back_nobody_else(void **state)
{
	char **addrs = xcalloc(240, sizeof(*addrs));
	long long start;
	size_t late;
	struct buf out;

	for (int i = 0; i < 240; i++)
		addrs[i] = i < 40 ? xasprintf("u%d@%s.test", i, i == 39 ? "Dead" : "dead") :
		    xasprintf("u%d@live%d.test", i, i % 3);
	buf_init(&out);
	start = monotonic_ms();
	late = batch_run(fake_lookup, NULL, (const char *const *)addrs, 240, 500, &out);
	/* The deadline, not the dead domain's 3 s, decides when the request is answered. */
	assert_true(monotonic_ms() - start < 1500);
	assert_int_equal(late, 40);
	assert_int_equal(count(out.data, " none reason=fake\n"), 200);
	assert_int_equal(count(out.data, ".test tempfail reason=the lookup did not finish within LookupTimeout"), 40);
	assert_int_equal(count(out.data, "@dead.test tempfail") + count(out.data, "@Dead.test tempfail"), 40);
	for (int i = 0; i < 240; i++)
		free(addrs[i]);
	free(addrs);
	buf_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers_in_the_order_asked),
		cmocka_unit_test(test_a_thousand_addresses),
		cmocka_unit_test(test_a_dead_domain_holds_back_nobody_else),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
