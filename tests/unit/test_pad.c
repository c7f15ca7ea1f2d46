/*
 * test_pad - size buckets (powers of two from 4 KiB, Padme above 1 MiB),
 * padding targets under an encryption cost estimate, and the padding field:
 * written to the exact length asked, random, folded, recognised and cut
 * byte for byte, and never recognised in anything else.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pad.h"
#include "util.h"

static cables_status
collect(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)err;
	buf_append(arg, p, n);
	return CABLES_OK;
}

static cables_status
refuse(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)arg;
	(void)p;
	(void)n;
	return cables_fail(err, CABLES_ERR_IO, "sink full");
}

static void
test_buckets(void **state)
{
	static const struct {
		size_t n, want;
	} cases[] = {
		{ 0, 4096 }, { 1, 4096 }, { 4096, 4096 }, { 4097, 8192 }, { 8192, 8192 }, { 100000, 131072 },
		{ 200000, 262144 }, { 1048576, 1048576 },
		/* Padme above 1 MiB: E = 20, S = 5, multiples of 2^15. */
		{ 1048577, 1048576 + 32768 }, { 1500000, 1507328 },
		/* E = 25 (32 MiB), S = 5: multiples of 2^20. */
		{ 33554433, 33554432 + 1048576 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t b = pad_bucket(cases[i].n);

		if (b != cases[i].want)
			fail_msg("pad_bucket(%zu) = %zu, want %zu", cases[i].n, b, cases[i].want);
	}
	/* Padme's bound: never more than 1/2^(S-1) over, S >= 5 above 1 MiB, so under 6.25%. */
	for (size_t n = PAD_POW2_MAX + 1; n < 64u * 1024 * 1024; n = n * 9 / 8 + 12345)
		assert_true(pad_bucket(n) - n < n / 16);
	(void)state;
}

static void
test_targets_fill_the_bucket_and_leave_room_for_the_field(void **state)
{
	static const struct pad_cost costs[] = { { 0, 1, 1 }, { 1200, 11, 8 }, { 700, 4, 3 } };
	unsigned int seed = 16;

	for (size_t c = 0; c < sizeof(costs) / sizeof(costs[0]); c++)
		for (int i = 0; i < 2000; i++) {
			size_t len = 100 + (size_t)(rand_r(&seed) % 400000), t = pad_target(len, &costs[c], 0);
			size_t w = pad_wire(&costs[c], t), b = pad_bucket(pad_wire(&costs[c], len + PAD_FIELD_MIN));

			assert_true(t >= len + PAD_FIELD_MIN);
			/* The bucket of the smallest padded entity, filled as far as whole bytes go. */
			assert_int_equal(pad_bucket(w), b);
			assert_true(w <= b && pad_wire(&costs[c], t + 1) > b);
		}
	(void)state;
}

static void
test_target_plain_cost_is_exactly_the_bucket(void **state)
{
	static const struct pad_cost plain = { 0, 1, 1 };

	assert_int_equal(pad_target(100, &plain, 0), 4096);
	assert_int_equal(pad_target(4076, &plain, 0), 4096);
	/* 4077 + 20 > 4096: the next bucket. */
	assert_int_equal(pad_target(4077, &plain, 0), 8192);
	assert_int_equal(pad_target(150000, &plain, 0), 262144);
	(void)state;
}

static void
test_target_respects_the_cap(void **state)
{
	static const struct pad_cost plain = { 0, 1, 1 };

	/* Up to the cap, not beyond; no room for a field below it: no padding. */
	assert_int_equal(pad_target(600000, &plain, 700000), 700000);
	assert_int_equal(pad_target(699990, &plain, 700000), 699990);
	assert_int_equal(pad_target(700001, &plain, 700000), 700001);
	assert_int_equal(pad_target(100, &plain, 1000000), 4096);
	(void)state;
}

/* Write a field of n bytes; check its form. */
static void
check_field(size_t n, struct buf *b)
{
	const char *p, *end;

	buf_reset(b);
	assert_int_equal(pad_write(n, collect, b, NULL), CABLES_OK);
	if (b->len != n)
		fail_msg("pad_write(%zu) wrote %zu bytes", n, b->len);
	assert_memory_equal(b->data, "Content-Padding: ", 17);
	assert_memory_equal(b->data + n - 2, "\r\n", 2);
	/* Lines of at most 77 characters and CRLF, continuations folded with one blank. */
	for (p = b->data, end = b->data + b->len; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		assert_non_null(nl);
		assert_true(nl - p + 1 <= 79);
		assert_true(p == b->data || *p == ' ');
		p = nl + 1;
	}
}

static void
test_field_has_the_exact_length_and_form(void **state)
{
	struct buf b;

	buf_init(&b);
	for (size_t n = PAD_FIELD_MIN; n < 3000; n++)
		check_field(n, &b);
	check_field(65535, &b);
	check_field(524288, &b);
	buf_release(&b);
	(void)state;
}

static void
test_field_is_random(void **state)
{
	struct buf a, b;

	buf_init(&a);
	buf_init(&b);
	assert_int_equal(pad_write(200, collect, &a, NULL), CABLES_OK);
	assert_int_equal(pad_write(200, collect, &b, NULL), CABLES_OK);
	assert_int_equal(a.len, b.len);
	assert_memory_not_equal(a.data, b.data, a.len);
	buf_release(&a);
	buf_release(&b);
	(void)state;
}

static void
test_write_errors(void **state)
{
	struct cables_err err;
	struct buf b;

	buf_init(&b);
	assert_int_equal(pad_write(19, collect, &b, &err), CABLES_ERR_ARG);
	assert_string_equal(err.msg, "a padding field cannot be 19 bytes long");
	assert_int_equal(b.len, 0);
	assert_int_equal(pad_write(100, refuse, NULL, &err), CABLES_ERR_IO);
	assert_string_equal(err.msg, "sink full");
	buf_release(&b);
	(void)state;
}

static void
test_strip_cuts_exactly_the_field(void **state)
{
	static const char entity[] = "Content-Type: text/plain; hp=\"cipher\"\r\n\r\nHello.\r\n";
	static const char bare[] = "\r\nbody without header fields\r\n";
	struct buf b;

	buf_init(&b);
	for (size_t n = PAD_FIELD_MIN; n < 1200; n += 7) {
		buf_reset(&b);
		assert_int_equal(pad_write(n, collect, &b, NULL), CABLES_OK);
		buf_appends(&b, entity);
		assert_int_equal(pad_strip(b.data, b.len), n);
		assert_string_equal(b.data + n, entity);
	}
	/* An entity with no header field of its own: the empty line follows. */
	buf_reset(&b);
	assert_int_equal(pad_write(300, collect, &b, NULL), CABLES_OK);
	buf_appends(&b, bare);
	assert_int_equal(pad_strip(b.data, b.len), 300);
	buf_release(&b);
	(void)state;
}

static void
test_strip_leaves_everything_else(void **state)
{
	static const char *const cases[] = {
		"Content-Type: text/plain\r\nContent-Padding: AAAA\r\n\r\nx",	/* not the first field */
		"Content-Padding: AA=A\r\nContent-Type: text/plain\r\n\r\nx",	/* not base64 characters */
		"Content-Padding: AA-A\r\nContent-Type: text/plain\r\n\r\nx",
		"Content-Padding: \r\nContent-Type: text/plain\r\n\r\nx",	/* empty */
		"Content-Padding: AAAA\r\n",					/* nothing follows */
		"Content-Padding: AAAA\r\nnot a field\r\n",			/* no header follows */
		"Content-Paddings: AAAA\r\nContent-Type: text/plain\r\n\r\nx",	/* another name */
		"X-Padding: AAAA\r\nContent-Type: text/plain\r\n\r\nx",
		"Content-Padding: AA\rAA\r\nContent-Type: text/plain\r\n\r\nx",	/* bare CR */
		"",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (pad_strip(cases[i], strlen(cases[i])) != 0)
			fail_msg("case %zu was taken for padding", i);
	/* Case and folding as another writer may have them. */
	{
		static const char other[] = "content-padding:AB\r\n\tCD\r\nContent-Type: text/plain\r\n\r\n";

		assert_int_equal(pad_strip(other, strlen(other)), 25);
	}
	(void)state;
}

static void
test_names(void **state)
{
	enum pad_mode m;

	assert_true(pad_mode_parse("Buckets", &m));
	assert_int_equal(m, PAD_BUCKETS);
	assert_true(pad_mode_parse(pad_mode_name(PAD_NONE), &m));
	assert_int_equal(m, PAD_NONE);
	assert_false(pad_mode_parse("padme", &m));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_targets_fill_the_bucket_and_leave_room_for_the_field),
		cmocka_unit_test(test_target_plain_cost_is_exactly_the_bucket),
		cmocka_unit_test(test_target_respects_the_cap),
		cmocka_unit_test(test_field_has_the_exact_length_and_form),
		cmocka_unit_test(test_field_is_random),
		cmocka_unit_test(test_write_errors),
		cmocka_unit_test(test_strip_cuts_exactly_the_field),
		cmocka_unit_test(test_strip_leaves_everything_else),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("pad", tests, NULL, NULL);
}
