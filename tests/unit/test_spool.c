/* test_spool - message bodies in memory, then in an unlinked temporary file. */
#include "autoconfig.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helpers.h"
#include "spool.h"
#include "util.h"

/* Bytes that differ at every offset, so that a read at the wrong place shows. */
static uint8_t
pattern(size_t i)
{
	return (uint8_t)(i * 131 + i / 253 + 7);
}

static uint8_t *
pattern_bytes(size_t n)
{
	uint8_t *p = xmalloc(n > 0 ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = pattern(i);
	return p;
}

static size_t
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Append total pattern bytes in pieces of chunk. */
static void
append_pattern(struct spool *sp, size_t from, size_t total, size_t chunk)
{
	uint8_t *p = pattern_bytes(from + total);
	struct cables_err err = { "" };

	for (size_t done = 0; done < total; done += chunk) {
		size_t n = total - done < chunk ? total - done : chunk;
		cables_status st = spool_append(sp, p + from + done, n, &err);

		if (st != CABLES_OK)
			fail_msg("append at %zu: %s", from + done, err.msg);
	}
	free(p);
}

/* Read the whole spool back in pieces of chunk and compare with the pattern. */
static void
assert_reads_back(const struct spool *sp, size_t size, size_t chunk)
{
	uint8_t *buf = xmalloc(chunk);
	size_t off = 0, got;

	assert_int_equal(spool_size(sp), size);
	while (off < size) {
		assert_int_equal(spool_pread(sp, (off_t)off, buf, chunk, &got, NULL), CABLES_OK);
		assert_int_equal(got, size - off < chunk ? size - off : chunk);
		for (size_t i = 0; i < got; i++)
			if (buf[i] != pattern(off + i))
				fail_msg("byte %zu is %u, want %u", off + i, buf[i], pattern(off + i));
		off += got;
	}
	got = 99;
	assert_int_equal(spool_pread(sp, (off_t)size, buf, chunk, &got, NULL), CABLES_OK);
	assert_int_equal(got, 0);
	free(buf);
}

static void
test_small_content_stays_in_memory(void **state)
{
	char *dir = test_tempdir();
	struct spool *sp = spool_new(dir, 1000, 0);
	char buf[64];
	size_t got;

	assert_int_equal(spool_size(sp), 0);
	assert_int_equal(spool_pread(sp, 0, buf, sizeof(buf), &got, NULL), CABLES_OK);
	assert_int_equal(got, 0);
	append_pattern(sp, 0, 999, 100);
	assert_false(spool_on_disk(sp));
	append_pattern(sp, 999, 1, 1);		/* exactly at mem_limit: still in memory */
	assert_false(spool_on_disk(sp));
	assert_int_equal(dir_entries(dir), 0);
	assert_reads_back(sp, 1000, 1000);
	assert_reads_back(sp, 1000, 7);
	assert_reads_back(sp, 1000, 4096);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_crossing_mem_limit_moves_to_disk(void **state)
{
	const size_t limits[] = { 0, 1, 1000, SPOOL_MEMORY_LIMIT };

	for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		char *dir = test_tempdir();
		struct spool *sp = spool_new(dir, limits[k], 0);
		size_t total = limits[k] + 200000;

		if (limits[k] > 0) {
			append_pattern(sp, 0, limits[k], 333);
			assert_false(spool_on_disk(sp));
		}
		append_pattern(sp, limits[k], 1, 1);
		assert_true(spool_on_disk(sp));
		append_pattern(sp, limits[k] + 1, total - limits[k] - 1, 4093);
		assert_true(spool_on_disk(sp));
		assert_reads_back(sp, total, total);
		assert_reads_back(sp, total, 8192);
		assert_reads_back(sp, total, 1001);
		spool_free(sp);
		test_rmdir(dir);
		free(dir);
	}
}

static void
test_pread_at_offsets_and_past_the_end(void **state)
{
	const size_t limits[] = { SPOOL_MEMORY_LIMIT, 10 };

	for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		char *dir = test_tempdir();
		struct spool *sp = spool_new(dir, limits[k], 0);
		const struct {
			off_t offset;
			size_t n, want;
		} cases[] = {
			{ 0, 100, 100 },
			{ 0, 1000, 100 },	/* partial read at the end */
			{ 37, 10, 10 },
			{ 90, 50, 10 },
			{ 99, 5, 1 },
			{ 100, 5, 0 },		/* at the end */
			{ 101, 5, 0 },		/* past the end */
			{ 1000000, 5, 0 },
			{ -1, 5, 0 },
			{ 50, 0, 0 },
		};
		uint8_t buf[1000];

		append_pattern(sp, 0, 100, 30);
		assert_int_equal(spool_on_disk(sp) != 0, limits[k] < 100);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			size_t got = 12345;

			memset(buf, 0, sizeof(buf));
			assert_int_equal(spool_pread(sp, cases[i].offset, buf, cases[i].n, &got, NULL), CABLES_OK);
			if (got != cases[i].want)
				fail_msg("limit %zu, offset %lld, n %zu: got %zu, want %zu", limits[k],
				    (long long)cases[i].offset, cases[i].n, got, cases[i].want);
			for (size_t j = 0; j < got; j++)
				assert_int_equal(buf[j], pattern((size_t)cases[i].offset + j));
			/* Nothing is written past what was read. */
			for (size_t j = got; j < sizeof(buf); j++)
				assert_int_equal(buf[j], 0);
		}
		spool_free(sp);
		test_rmdir(dir);
		free(dir);
	}
}

static void
test_temp_file_is_unlinked(void **state)
{
	char *dir = test_tempdir();
	struct spool *sp = spool_new(dir, 16, 0);

	append_pattern(sp, 0, 10, 10);
	assert_false(spool_on_disk(sp));
	append_pattern(sp, 10, 5000, 100);
	assert_true(spool_on_disk(sp));
	assert_int_equal(dir_entries(dir), 0);
	assert_reads_back(sp, 5010, 512);
	spool_free(sp);
	assert_int_equal(dir_entries(dir), 0);
	test_rmdir(dir);
	free(dir);
}

static void
test_max_size_is_enforced_exactly(void **state)
{
	/* In memory, moving to disk on the last append, and on disk all along. */
	const size_t limits[] = { SPOOL_MEMORY_LIMIT, 150, 10 };
	const size_t max = 200;

	for (size_t k = 0; k < sizeof(limits) / sizeof(limits[0]); k++) {
		char *dir = test_tempdir();
		struct spool *sp = spool_new(dir, limits[k], max);
		struct cables_err err = { "" };
		uint8_t *big = pattern_bytes(max + 1);

		append_pattern(sp, 0, 120, 40);
		append_pattern(sp, 120, 80, 80);	/* exactly max_size */
		assert_int_equal(spool_size(sp), max);
		assert_int_equal(spool_on_disk(sp) != 0, limits[k] < max);

		assert_int_equal(spool_append(sp, "x", 1, &err), CABLES_ERR_TOOBIG);
		assert_non_null(strstr(err.msg, "MaxMessageSize"));
		assert_non_null(strstr(err.msg, "200"));
		err.msg[0] = '\0';
		assert_int_equal(spool_append(sp, big, max + 1, &err), CABLES_ERR_TOOBIG);
		assert_non_null(strstr(err.msg, "MaxMessageSize"));
		assert_int_equal(spool_append(sp, big, SIZE_MAX, NULL), CABLES_ERR_TOOBIG);
		/* The earlier content is intact, and an empty append is still fine. */
		assert_reads_back(sp, max, 64);
		assert_int_equal(spool_append(sp, "", 0, &err), CABLES_OK);
		assert_reads_back(sp, max, 1000);
		free(big);
		spool_free(sp);
		test_rmdir(dir);
		free(dir);
	}
}

static void
test_single_append_over_max_size_stores_nothing(void **state)
{
	char *dir = test_tempdir();
	struct spool *sp = spool_new(dir, 10, 100);
	uint8_t *big = pattern_bytes(101);
	struct cables_err err = { "" };

	assert_int_equal(spool_append(sp, big, 101, &err), CABLES_ERR_TOOBIG);
	assert_non_null(strstr(err.msg, "MaxMessageSize (100 bytes)"));
	assert_int_equal(spool_size(sp), 0);
	assert_false(spool_on_disk(sp));
	assert_int_equal(spool_append(sp, big, 100, &err), CABLES_OK);
	assert_reads_back(sp, 100, 33);
	free(big);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_unlimited_when_max_size_is_zero(void **state)
{
	char *dir = test_tempdir();
	struct spool *sp = spool_new(dir, 1024, 0);

	append_pattern(sp, 0, 3 * 1024 * 1024 + 17, 65536);
	assert_true(spool_on_disk(sp));
	assert_reads_back(sp, 3 * 1024 * 1024 + 17, 100000);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_missing_tmpdir_fails_when_moving_to_disk(void **state)
{
	char *base = test_tempdir();
	char *dir = xasprintf("%s/no-such-dir", base);
	struct spool *sp = spool_new(dir, 10, 0);
	struct cables_err err = { "" };
	uint8_t buf[32];
	size_t got;

	/* Small content needs no directory. */
	append_pattern(sp, 0, 8, 8);
	assert_false(spool_on_disk(sp));
	assert_int_equal(spool_append(sp, "0123456789", 10, &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, dir));
	assert_false(spool_on_disk(sp));
	/* The spool keeps what was stored before the failure. */
	assert_int_equal(spool_size(sp), 8);
	assert_int_equal(spool_pread(sp, 0, buf, sizeof(buf), &got, NULL), CABLES_OK);
	assert_int_equal(got, 8);
	for (size_t i = 0; i < got; i++)
		assert_int_equal(buf[i], pattern(i));
	/* A small append still fits in memory. */
	append_pattern(sp, 8, 2, 2);
	assert_reads_back(sp, 10, 4);
	spool_free(sp);
	free(dir);
	test_rmdir(base);
	free(base);
}

static void
test_free_null_is_fine(void **state)
{
	spool_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_content_stays_in_memory),
		cmocka_unit_test(test_crossing_mem_limit_moves_to_disk),
		cmocka_unit_test(test_pread_at_offsets_and_past_the_end),
		cmocka_unit_test(test_temp_file_is_unlinked),
		cmocka_unit_test(test_max_size_is_enforced_exactly),
		cmocka_unit_test(test_single_append_over_max_size_stores_nothing),
		cmocka_unit_test(test_unlimited_when_max_size_is_zero),
		cmocka_unit_test(test_missing_tmpdir_fails_when_moving_to_disk),
		cmocka_unit_test(test_free_null_is_fine),
	};

	return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
