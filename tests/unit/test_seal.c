/* test_seal - the store key file and AES-256-GCM sealing of private keys. */
#include "autoconfig.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "helpers.h"
#include "seal.h"
#include "util.h"

#define HEADER_LEN 15	/* "CS1" + 12-byte nonce */
#define TAG_LEN 16
#define AAD "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const uint8_t test_key[SEAL_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0xff,
};

static char *
write_file(const char *dir, const char *name, const char *text, size_t len, mode_t mode)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static char *
read_text(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *text = xmalloc(4096);

	assert_non_null(f);
	*len = fread(text, 1, 4095, f);
	text[*len] = '\0';
	fclose(f);
	return text;
}

static uint8_t *
pattern_bytes(size_t n, unsigned seed)
{
	uint8_t *p = xmalloc(n > 0 ? n : 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 29 + seed + i / 7);
	return p;
}

static void
test_key_load_creates_private_hex_file(void **state)
{
	char *dir = test_tempdir(), *path = xasprintf("%s/store.key", dir), *text;
	uint8_t key[SEAL_KEY_LEN], again[SEAL_KEY_LEN], decoded[SEAL_KEY_LEN], zero[SEAL_KEY_LEN] = { 0 };
	struct cables_err err = { "" };
	struct stat sb;
	mode_t old;
	size_t len;

	/* 0600 comes from the code, not from a friendly umask. */
	old = umask(0);
	assert_int_equal(seal_key_load(path, true, key, &err), CABLES_OK);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);

	text = read_text(path, &len);
	assert_int_equal(len, 2 * SEAL_KEY_LEN + 1);
	assert_int_equal(text[2 * SEAL_KEY_LEN], '\n');
	for (size_t i = 0; i < 2 * SEAL_KEY_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", text[i]));
	text[2 * SEAL_KEY_LEN] = '\0';
	assert_true(hex_decode(text, decoded, SEAL_KEY_LEN));
	assert_memory_equal(decoded, key, SEAL_KEY_LEN);
	assert_memory_not_equal(key, zero, SEAL_KEY_LEN);

	/* Read back, with and without create: the same key, the file untouched. */
	assert_int_equal(seal_key_load(path, false, again, &err), CABLES_OK);
	assert_memory_equal(again, key, SEAL_KEY_LEN);
	memset(again, 0, sizeof(again));
	assert_int_equal(seal_key_load(path, true, again, &err), CABLES_OK);
	assert_memory_equal(again, key, SEAL_KEY_LEN);
	free(text);
	text = read_text(path, &len);
	assert_int_equal(len, 2 * SEAL_KEY_LEN + 1);
	text[2 * SEAL_KEY_LEN] = '\0';
	assert_true(hex_decode(text, decoded, SEAL_KEY_LEN));
	assert_memory_equal(decoded, key, SEAL_KEY_LEN);
	free(text);
	free(path);
	test_rmdir(dir);
	free(dir);
}

static void
test_key_load_creates_a_different_key_each_time(void **state)
{
	char *dir = test_tempdir(), *a = xasprintf("%s/a.key", dir), *b = xasprintf("%s/b.key", dir);
	uint8_t ka[SEAL_KEY_LEN], kb[SEAL_KEY_LEN];

	assert_int_equal(seal_key_load(a, true, ka, NULL), CABLES_OK);
	assert_int_equal(seal_key_load(b, true, kb, NULL), CABLES_OK);
	assert_memory_not_equal(ka, kb, SEAL_KEY_LEN);
	free(a);
	free(b);
	test_rmdir(dir);
	free(dir);
}

static void
test_key_load_missing_file_without_create(void **state)
{
	char *dir = test_tempdir(), *path = xasprintf("%s/store.key", dir);
	char *deep = xasprintf("%s/no-such-dir/store.key", dir);
	uint8_t key[SEAL_KEY_LEN];
	struct cables_err err = { "" };
	struct stat sb;

	assert_int_equal(seal_key_load(path, false, key, &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, path));
	assert_int_not_equal(stat(path, &sb), 0);
	/* With create, a missing directory is an I/O error too. */
	err.msg[0] = '\0';
	assert_int_equal(seal_key_load(deep, true, key, &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, deep));
	free(path);
	free(deep);
	test_rmdir(dir);
	free(dir);
}

static void
test_key_load_refuses_a_file_others_can_read(void **state)
{
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	const struct {
		mode_t mode;
		cables_status expect;
	} cases[] = {
		{ 0644, CABLES_ERR_UNUSABLE },
		{ 0640, CABLES_ERR_UNUSABLE },
		{ 0604, CABLES_ERR_UNUSABLE },
		{ 0620, CABLES_ERR_UNUSABLE },
		{ 0601, CABLES_ERR_UNUSABLE },
		{ 0600, CABLES_OK },
		{ 0400, CABLES_OK },
	};
	char *dir = test_tempdir();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_file(dir, "store.key", hex, strlen(hex), cases[i].mode);
		uint8_t key[SEAL_KEY_LEN];
		struct cables_err err = { "" };
		cables_status st = seal_key_load(path, true, key, &err);

		if (st != cases[i].expect)
			fail_msg("mode %04o: status %d (%s)", (unsigned)cases[i].mode, st, err.msg);
		if (st == CABLES_OK) {
			assert_int_equal(key[0], 0x00);
			assert_int_equal(key[1], 0x11);
			assert_int_equal(key[31], 0xff);
		} else {
			assert_non_null(strstr(err.msg, "chmod 600"));
			assert_non_null(strstr(err.msg, path));
		}
		unlink(path);
		free(path);
	}
	test_rmdir(dir);
	free(dir);
}

static void
test_key_load_rejects_bad_content(void **state)
{
	const struct {
		const char *what;
		const char *text;
		cables_status expect;
	} cases[] = {
		{ "empty", "", CABLES_ERR_SYNTAX },
		{ "short", "abc\n", CABLES_ERR_SYNTAX },
		{ "63 digits", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n",
		    CABLES_ERR_SYNTAX },
		{ "65 digits", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n",
		    CABLES_ERR_SYNTAX },
		{ "non-hex digit", "0123456789abcdef0123456789abcdef0123456789abcdeg0123456789abcdef\n",
		    CABLES_ERR_SYNTAX },
		{ "space inside", "0123456789abcdef0123456789abcdef 123456789abcdef0123456789abcdef\n",
		    CABLES_ERR_SYNTAX },
		{ "leading space", " 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
		    CABLES_ERR_SYNTAX },
		{ "text after the digits", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefxy",
		    CABLES_ERR_SYNTAX },
		{ "a second line", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nmore\n",
		    CABLES_ERR_SYNTAX },
		{ "two newlines", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n\n",
		    CABLES_ERR_SYNTAX },
		{ "no newline", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", CABLES_OK },
		{ "upper case", "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n", CABLES_OK },
	};
	char *dir = test_tempdir();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = write_file(dir, "store.key", cases[i].text, strlen(cases[i].text), 0600);
		uint8_t key[SEAL_KEY_LEN];
		struct cables_err err = { "" };
		cables_status st = seal_key_load(path, true, key, &err);

		if (st != cases[i].expect)
			fail_msg("%s: status %d (%s)", cases[i].what, st, err.msg);
		if (st == CABLES_OK) {
			assert_int_equal(key[0], 0x01);
			assert_int_equal(key[7], 0xef);
			assert_int_equal(key[31], 0xef);
		} else {
			assert_non_null(strstr(err.msg, "expected 64 hex digits"));
			assert_non_null(strstr(err.msg, path));
		}
		/* A bad file is never replaced, even with create. */
		{
			size_t len;
			char *text = read_text(path, &len);

			assert_int_equal(len, strlen(cases[i].text));
			assert_memory_equal(text, cases[i].text, len);
			free(text);
		}
		unlink(path);
		free(path);
	}
	test_rmdir(dir);
	free(dir);
}

static void
test_seal_round_trip_lengths(void **state)
{
	const size_t lengths[] = { 0, 1, 15, 16, 17, 1000, 65536 };

	for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
		size_t n = lengths[k], blob_len = 0, plain_len = 99;
		uint8_t *plain = pattern_bytes(n, 3), *blob = NULL, *opened = NULL;
		struct cables_err err = { "" };

		assert_int_equal(seal_close(test_key, AAD, plain, n, &blob, &blob_len, &err), CABLES_OK);
		assert_non_null(blob);
		assert_int_equal(blob_len, HEADER_LEN + n + TAG_LEN);
		assert_memory_equal(blob, "CS1", 3);
		/* The plaintext does not appear in the blob. */
		if (n >= 16)
			assert_memory_not_equal(blob + HEADER_LEN, plain, 16);
		assert_int_equal(seal_open(test_key, AAD, blob, blob_len, &opened, &plain_len, &err), CABLES_OK);
		assert_non_null(opened);
		assert_int_equal(plain_len, n);
		if (n > 0)
			assert_memory_equal(opened, plain, n);
		seal_free_secret(opened, plain_len);
		free(blob);
		free(plain);
	}
	seal_free_secret(NULL, 0);
}

/* Expect seal_open to fail with st and to hand back no plaintext. */
static void
assert_does_not_open(const char *what, const uint8_t *key, const char *aad, const uint8_t *blob,
    size_t blob_len, cables_status st, const char *reason)
{
	uint8_t sentinel = 0, *plain = &sentinel;
	size_t plain_len = 12345;
	struct cables_err err = { "" };
	cables_status got = seal_open(key, aad, blob, blob_len, &plain, &plain_len, &err);

	if (got != st)
		fail_msg("%s: status %d, want %d (%s)", what, got, st, err.msg);
	if (plain != NULL)
		fail_msg("%s: plaintext returned", what);
	assert_int_equal(plain_len, 0);
	if (strstr(err.msg, reason) == NULL)
		fail_msg("%s: message '%s' lacks '%s'", what, err.msg, reason);
}

static void
seal_pattern(size_t n, uint8_t **blob, size_t *blob_len)
{
	uint8_t *plain = pattern_bytes(n, 9);

	assert_int_equal(seal_close(test_key, AAD, plain, n, blob, blob_len, NULL), CABLES_OK);
	free(plain);
}

static void
test_open_rejects_other_aad(void **state)
{
	uint8_t *blob;
	size_t blob_len;

	seal_pattern(100, &blob, &blob_len);
	assert_does_not_open("other fingerprint", test_key,
	    "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", blob, blob_len,
	    CABLES_ERR_CRYPTO, "does not open");
	assert_does_not_open("empty aad", test_key, "", blob, blob_len, CABLES_ERR_CRYPTO, "does not open");
	assert_does_not_open("aad prefix", test_key, "0123456789abcdef", blob, blob_len,
	    CABLES_ERR_CRYPTO, "does not open");
	free(blob);
}

static void
test_open_rejects_any_flipped_bit(void **state)
{
	const size_t lengths[] = { 0, 100 };

	for (size_t k = 0; k < sizeof(lengths) / sizeof(lengths[0]); k++) {
		uint8_t *blob;
		size_t blob_len;

		seal_pattern(lengths[k], &blob, &blob_len);
		for (size_t i = 0; i < blob_len; i++) {
			for (int bit = 0; bit < 8; bit++) {
				char what[64];

				snprintf(what, sizeof(what), "length %zu, byte %zu, bit %d", lengths[k], i, bit);
				blob[i] ^= (uint8_t)(1u << bit);
				if (i < 3)
					assert_does_not_open(what, test_key, AAD, blob, blob_len, CABLES_ERR_SYNTAX,
					    "unknown format");
				else
					assert_does_not_open(what, test_key, AAD, blob, blob_len, CABLES_ERR_CRYPTO,
					    "does not open");
				blob[i] ^= (uint8_t)(1u << bit);
			}
		}
		free(blob);
	}
}

static void
test_open_rejects_truncated_or_extended_blob(void **state)
{
	uint8_t *blob, *longer;
	size_t blob_len;

	seal_pattern(40, &blob, &blob_len);
	for (size_t n = 0; n < blob_len; n++) {
		char what[64];

		snprintf(what, sizeof(what), "truncated to %zu bytes", n);
		if (n < HEADER_LEN + TAG_LEN)
			assert_does_not_open(what, test_key, AAD, blob, n, CABLES_ERR_SYNTAX, "unknown format");
		else
			assert_does_not_open(what, test_key, AAD, blob, n, CABLES_ERR_CRYPTO, "does not open");
	}
	longer = xmalloc(blob_len + 1);
	memcpy(longer, blob, blob_len);
	longer[blob_len] = 0;
	assert_does_not_open("one byte appended", test_key, AAD, longer, blob_len + 1, CABLES_ERR_CRYPTO,
	    "does not open");
	free(longer);
	free(blob);
}

static void
test_open_rejects_wrong_key(void **state)
{
	uint8_t *blob, other[SEAL_KEY_LEN];
	size_t blob_len;

	seal_pattern(64, &blob, &blob_len);
	memcpy(other, test_key, SEAL_KEY_LEN);
	other[SEAL_KEY_LEN - 1] ^= 0x80;
	assert_does_not_open("last key bit", other, AAD, blob, blob_len, CABLES_ERR_CRYPTO, "wrong store key");
	memset(other, 0, sizeof(other));
	assert_does_not_open("zero key", other, AAD, blob, blob_len, CABLES_ERR_CRYPTO, "wrong store key");
	free(blob);
}

static void
test_open_rejects_bad_magic(void **state)
{
	const char *magics[] = { "CS2", "cs1", "\0\0\0", "XYZ" };
	uint8_t *blob;
	size_t blob_len;

	seal_pattern(50, &blob, &blob_len);
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		memcpy(blob, magics[i], 3);
		assert_does_not_open(magics[i], test_key, AAD, blob, blob_len, CABLES_ERR_SYNTAX, "unknown format");
	}
	free(blob);
}

static void
test_two_seals_of_the_same_secret_differ(void **state)
{
	uint8_t *a, *b, *plain = pattern_bytes(48, 5), *opened;
	size_t a_len, b_len, opened_len;

	assert_int_equal(seal_close(test_key, AAD, plain, 48, &a, &a_len, NULL), CABLES_OK);
	assert_int_equal(seal_close(test_key, AAD, plain, 48, &b, &b_len, NULL), CABLES_OK);
	assert_int_equal(a_len, b_len);
	/* Fresh nonce, hence a different ciphertext and tag. */
	assert_memory_not_equal(a + 3, b + 3, 12);
	assert_memory_not_equal(a + HEADER_LEN, b + HEADER_LEN, 48);
	assert_memory_not_equal(a + HEADER_LEN + 48, b + HEADER_LEN + 48, TAG_LEN);
	assert_int_equal(seal_open(test_key, AAD, a, a_len, &opened, &opened_len, NULL), CABLES_OK);
	assert_memory_equal(opened, plain, 48);
	seal_free_secret(opened, opened_len);
	assert_int_equal(seal_open(test_key, AAD, b, b_len, &opened, &opened_len, NULL), CABLES_OK);
	assert_memory_equal(opened, plain, 48);
	seal_free_secret(opened, opened_len);
	free(a);
	free(b);
	free(plain);
}

/* Moving a sealed key to another key's row is detected. */
static void
test_blob_cannot_move_between_rows(void **state)
{
	const char *fpr_a = "aaaa000000000000000000000000000000000000000000000000000000000000";
	const char *fpr_b = "bbbb000000000000000000000000000000000000000000000000000000000000";
	uint8_t *plain = pattern_bytes(200, 1), *blob;
	size_t blob_len;

	assert_int_equal(seal_close(test_key, fpr_a, plain, 200, &blob, &blob_len, NULL), CABLES_OK);
	assert_does_not_open("row b", test_key, fpr_b, blob, blob_len, CABLES_ERR_CRYPTO, "tampered");
	free(blob);
	free(plain);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_load_creates_private_hex_file),
		cmocka_unit_test(test_key_load_creates_a_different_key_each_time),
		cmocka_unit_test(test_key_load_missing_file_without_create),
		cmocka_unit_test(test_key_load_refuses_a_file_others_can_read),
		cmocka_unit_test(test_key_load_rejects_bad_content),
		cmocka_unit_test(test_seal_round_trip_lengths),
		cmocka_unit_test(test_open_rejects_other_aad),
		cmocka_unit_test(test_open_rejects_any_flipped_bit),
		cmocka_unit_test(test_open_rejects_truncated_or_extended_blob),
		cmocka_unit_test(test_open_rejects_wrong_key),
		cmocka_unit_test(test_open_rejects_bad_magic),
		cmocka_unit_test(test_two_seals_of_the_same_secret_differ),
		cmocka_unit_test(test_blob_cannot_move_between_rows),
	};

	return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
