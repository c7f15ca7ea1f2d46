/*
 * test_gate - the re-injection listener's verify-only mode: only a message
 * with one marker that verifies, made since the start, passes, and only
 * once; everything else is rejected; the seen-marker memory is bounded by
 * the markers' lifetime.  Fixed clock.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gate.h"
#include "helpers.h"
#include "message.h"
#include "reinject.h"
#include "util.h"

#define NOW ((time_t)1790000000)

static const uint8_t key[REINJECT_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const char body[] = "Hello, PLAINTEXT-MARKER\r\n";

/* A copy from alice to carol with subject, and a marker field (value; NULL: none) among its fields. */
static struct message *
copy_message(struct milter_fixture *fx, const char *subject, const char *marker, const char *second)
{
	struct message *m = message_new(fx->cfg, "alice@a.test", true, true);

	assert_true(message_add_rcpt(m, fx->cfg, "<carol@c.test>", NULL));
	message_add_header(m, "Received", " from localhost by mx.a.test");
	message_add_header(m, "From", " alice@a.test");
	message_add_header(m, "Subject", subject);
	if (marker != NULL)
		message_add_header(m, REINJECT_MARKER, marker);
	if (second != NULL)
		message_add_header(m, REINJECT_MARKER, second);
	message_add_body(m, body, strlen(body));
	return m;
}

/* The marker for copy_message(subject) made at when. */
static char *
marker_at(struct milter_fixture *fx, const char *subject, time_t when)
{
	struct message *probe = copy_message(fx, subject, NULL, NULL);
	const char *rcpts[] = { "carol@c.test" };
	struct reinject_received r = { probe->sender, rcpts, 1, probe->headers, probe->body };
	char out[200];

	assert_int_equal(reinject_marker_for(key, when, &r, out, sizeof(out), NULL), CABLES_OK);
	message_free(probe);
	return xstrdup(out);
}

static void
check(struct milter_fixture *fx, struct message *m, enum verdict v, const char *detail)
{
	struct outcome out;

	gate_check(m, &fx->env, &out);
	if (out.verdict != v || strstr(out.detail, detail) == NULL)
		fail_msg("verdict %d, '%s'; expected %d, '%s'", out.verdict, out.detail, v, detail);
	if (v == VERDICT_REJECT)
		assert_string_equal(out.rcode, "550");
	message_free(m);
}

static int
setup(void **state)
{
	struct milter_fixture *fx = milter_fixture_new("", NOW);

	fx->env.marker_key = key;
	gate_setup(NOW - 100);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	gate_release();
	milter_fixture_free(*state);
	return 0;
}

static void
test_a_fresh_copy_passes_once(void **state)
{
	struct milter_fixture *fx = *state;
	char *marker = marker_at(fx, " the plan", NOW - 5);

	check(fx, copy_message(fx, " the plan", marker, NULL), VERDICT_ACCEPT, "a copy made by Cables");
	check(fx, copy_message(fx, " the plan", marker, NULL), VERDICT_REJECT, "has been used before");
	free(marker);
}

static void
test_everything_else_is_rejected(void **state)
{
	struct milter_fixture *fx = *state;
	char *marker = marker_at(fx, " the plan", NOW - 5);
	char *old = marker_at(fx, " the plan", NOW - 101);
	char *stale = marker_at(fx, " the plan", NOW - REINJECT_GATE_WINDOW - 1);

	check(fx, copy_message(fx, " the plan", NULL, NULL), VERDICT_REJECT, "no marker");
	check(fx, copy_message(fx, " the plan", marker, marker), VERDICT_REJECT, "more than one marker");
	check(fx, copy_message(fx, " the plan!", marker, NULL), VERDICT_REJECT, "does not verify");
	check(fx, copy_message(fx, " the plan", "v2 t=1 n=0123456789abcdef h=00", NULL), VERDICT_REJECT,
	    "does not verify");
	check(fx, copy_message(fx, " the plan", stale, NULL), VERDICT_REJECT, "does not verify");
	check(fx, copy_message(fx, " the plan", old, NULL), VERDICT_REJECT, "made before cables-milter started");
	fx->env.marker_key = NULL;
	check(fx, copy_message(fx, " the plan", marker, NULL), VERDICT_REJECT, "no ReinjectKey");
	fx->env.marker_key = key;
	/* None of the refusals used it up. */
	check(fx, copy_message(fx, " the plan", marker, NULL), VERDICT_ACCEPT, "a copy made by Cables");
	free(marker);
	free(old);
	free(stale);
}

static void
test_a_seen_marker_is_forgotten_when_it_expires(void **state)
{
	struct milter_fixture *fx = *state;
	char *marker = marker_at(fx, " later", NOW - 5);

	check(fx, copy_message(fx, " later", marker, NULL), VERDICT_ACCEPT, "a copy made by Cables");
	/* Past its lifetime it is refused as stale, whether remembered or not. */
	fx->env.now = NOW + REINJECT_GATE_WINDOW;
	check(fx, copy_message(fx, " later", marker, NULL), VERDICT_REJECT, "does not verify");
	fx->env.now = NOW;
	free(marker);
}

static void
test_remembering_is_shared_with_other_listeners(void **state)
{
	struct reinject_stamp fresh = { (long long)NOW - 5, "" }, old = { (long long)NOW - 101, "" };
	const char *why = NULL;

	(void)state;
	memset(fresh.mac, 'a', 64);
	memset(old.mac, 'b', 64);
	assert_int_equal(gate_remember(&fresh, REINJECT_WINDOW, NOW, &why), GATE_NEW);
	assert_null(why);
	assert_int_equal(gate_remember(&fresh, REINJECT_WINDOW, NOW, &why), GATE_SEEN_BEFORE);
	assert_string_equal(why, "the marker has been used before (a replayed copy)");
	assert_int_equal(gate_remember(&old, REINJECT_WINDOW, NOW, &why), GATE_SEEN_BEFORE);
	assert_string_equal(why, "the marker was made before cables-milter started");
	/* Forgotten once its lifetime is over (it would no longer verify either). */
	assert_int_equal(gate_remember(&fresh, REINJECT_WINDOW, NOW + REINJECT_WINDOW, &why), GATE_NEW);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_fresh_copy_passes_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_everything_else_is_rejected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_seen_marker_is_forgotten_when_it_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remembering_is_shared_with_other_listeners, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
