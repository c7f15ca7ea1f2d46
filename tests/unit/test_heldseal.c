/* test_heldseal - held messages sealed under a per-message key (lib/heldseal.c). */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "heldseal.h"
#include "util.h"

#define MAGIC_LEN 3		/* "CH1" */
#define INNER_OVERHEAD 31	/* seal.h's blob: "CS1", a 12-byte nonce, the 16-byte tag */
#define ID "0123456789abcdef"
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t store_key[SEAL_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0xff,
};

static const char plain_text[] = "From: <alice@a.test>\r\nTo: <bob@b.test>\r\n\r\nthe plan\r\n";

/* What the milter's key function does, with the keyholder's derivation in place of the keyholder. */
static cables_status
local_key(void *arg, const char *id, const uint8_t salt[HELD_SALT_LEN], uint8_t key[HELD_KEY_LEN],
    struct cables_err *err)
{
	held_key_derive(arg, id, salt, key);
	return CABLES_OK;
}

static cables_status
failing_key(void *arg, const char *id, const uint8_t salt[HELD_SALT_LEN], uint8_t key[HELD_KEY_LEN],
    struct cables_err *err)
{
	return cables_fail(err, CABLES_ERR_IO, "keyholder down");
}

static void
record_init(struct held_record *h)
{
	memset(h, 0, sizeof(*h));
	strlcpy_c(h->id, ID, sizeof(h->id));
	h->sender = xstrdup("alice@a.test");
	h->recipients = xstrdup("bob@b.test\ncarol@c.test");
}

/* A record as the store returns it: h with the sealed plain_text as its message. */
static void
sealed_record(struct held_record *h)
{
	uint8_t *blob;
	size_t blob_len;

	record_init(h);
	assert_int_equal(held_seal(local_key, (void *)store_key, h, (const uint8_t *)plain_text,
	    sizeof(plain_text) - 1, &blob, &blob_len, NULL), CABLES_OK);
	h->message = blob;
	h->message_len = blob_len;
}

static void
record_release(struct held_record *h)
{
	free(h->sender);
	free(h->recipients);
	free(h->message);
	memset(h, 0, sizeof(*h));
}

/*
 * The known answer, computed apart from the code:
 *   import hmac, hashlib
 *   k = bytes.fromhex("000102030405060708090a0b0c0d0e0ff0e1d2c3b4a5968778695a4b3c2d1eff")
 *   m = hmac.new(k, b"cables held-message keys v1", hashlib.sha256).digest()
 *   hmac.new(m, b"0123456789abcdef" + bytes(range(32)), hashlib.sha256).hexdigest()
 */
static void
test_derive_known_answer(void **state)
{
	static const char want[] = "6dd158ccc0afb23f5f6a53c20254414e4fd3f33a2d99f4914f61db0aef5512c8";
	uint8_t salt[HELD_SALT_LEN], key[HELD_KEY_LEN], expected[HELD_KEY_LEN];

	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	assert_true(hex_decode(want, expected, sizeof(expected)));
	held_key_derive(store_key, ID, salt, key);
	assert_memory_equal(key, expected, sizeof(key));

	/* Another salt, another key. */
	salt[31] ^= 1;
	held_key_derive(store_key, ID, salt, key);
	assert_memory_not_equal(key, expected, sizeof(key));
}

static void
test_round_trip(void **state)
{
	struct held_record h;
	struct cables_err err = { "" };
	uint8_t *plain;
	size_t plain_len;

	sealed_record(&h);
	assert_int_equal(h.message_len, MAGIC_LEN + HELD_SALT_LEN + INNER_OVERHEAD + sizeof(plain_text) - 1);
	assert_memory_equal(h.message, "CH1", MAGIC_LEN);
	assert_null(memmem(h.message, h.message_len, "the plan", 8));
	assert_int_equal(held_unseal(local_key, (void *)store_key, &h, &plain, &plain_len, &err), CABLES_OK);
	assert_int_equal(plain_len, sizeof(plain_text) - 1);
	assert_memory_equal(plain, plain_text, plain_len);
	seal_free_secret(plain, plain_len);
	record_release(&h);
}

static void
test_two_seals_differ(void **state)
{
	struct held_record a, b;

	sealed_record(&a);
	sealed_record(&b);
	assert_int_equal(a.message_len, b.message_len);
	/* The salt is random: another key each time, not only another nonce. */
	assert_memory_not_equal(a.message + MAGIC_LEN, b.message + MAGIC_LEN, HELD_SALT_LEN);
	record_release(&a);
	record_release(&b);
}

static void
change_sender(struct held_record *h)
{
	free(h->sender);
	h->sender = xstrdup("mallory@m.test");
}

static void
change_recipient(struct held_record *h)
{
	free(h->recipients);
	h->recipients = xstrdup("bob@b.test\nmallory@m.test");
}

static void
add_recipient(struct held_record *h)
{
	free(h->recipients);
	h->recipients = xstrdup("bob@b.test\ncarol@c.test\nmallory@m.test");
}

/* The blob moved to another record. */
static void
change_id(struct held_record *h)
{
	strlcpy_c(h->id, "0123456789abcdee", sizeof(h->id));
}

static void
change_magic(struct held_record *h)
{
	h->message[2] = '2';
}

static void
flip_salt(struct held_record *h)
{
	h->message[MAGIC_LEN + 5] ^= 0x01;
}

static void
flip_body(struct held_record *h)
{
	h->message[MAGIC_LEN + HELD_SALT_LEN + 20] ^= 0x80;
}

static void
flip_tag(struct held_record *h)
{
	h->message[h->message_len - 1] ^= 0x01;
}

static void
cut_last_byte(struct held_record *h)
{
	h->message_len--;
}

static void
cut_to_salt(struct held_record *h)
{
	h->message_len = MAGIC_LEN + HELD_SALT_LEN;
}

static void
cut_to_magic(struct held_record *h)
{
	h->message_len = MAGIC_LEN;
}

static void
cut_to_nothing(struct held_record *h)
{
	h->message_len = 0;
}

static void
cut_after_salt(struct held_record *h)
{
	h->message_len = MAGIC_LEN + HELD_SALT_LEN + 1;
}

static void
test_unseal_refuses_changed_records(void **state)
{
	static const struct {
		const char *name;
		void (*change)(struct held_record *);
	} cases[] = {
		{ "sender changed", change_sender },
		{ "recipient changed", change_recipient },
		{ "recipient added", add_recipient },
		{ "id changed", change_id },
		{ "wrong magic", change_magic },
		{ "salt byte changed", flip_salt },
		{ "ciphertext byte changed", flip_body },
		{ "tag byte changed", flip_tag },
		{ "last byte cut", cut_last_byte },
		{ "cut after the salt", cut_to_salt },
		{ "cut after the magic", cut_to_magic },
		{ "empty", cut_to_nothing },
		{ "one byte after the salt", cut_after_salt },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct held_record h;
		struct cables_err err = { "" };
		uint8_t sentinel = 0, *plain = &sentinel;
		size_t plain_len = 12345;
		cables_status got;

		sealed_record(&h);
		cases[i].change(&h);
		got = held_unseal(local_key, (void *)store_key, &h, &plain, &plain_len, &err);
		if (got != CABLES_ERR_CRYPTO)
			fail_msg("%s: status %d, want %d (%s)", cases[i].name, got, CABLES_ERR_CRYPTO, err.msg);
		if (plain != NULL || plain_len != 0)
			fail_msg("%s: plaintext returned", cases[i].name);
		record_release(&h);
	}
}

/* Every single byte of the blob matters. */
static void
test_unseal_refuses_any_changed_byte(void **state)
{
	struct held_record h;
	uint8_t *plain;
	size_t plain_len;

	sealed_record(&h);
	for (size_t i = 0; i < h.message_len; i++) {
		h.message[i] ^= 0x01;
		assert_int_equal(held_unseal(local_key, (void *)store_key, &h, &plain, &plain_len, NULL),
		    CABLES_ERR_CRYPTO);
		h.message[i] ^= 0x01;
	}
	assert_int_equal(held_unseal(local_key, (void *)store_key, &h, &plain, &plain_len, NULL), CABLES_OK);
	seal_free_secret(plain, plain_len);
	record_release(&h);
}

static void
test_unseal_refuses_another_store_key(void **state)
{
	struct held_record h;
	uint8_t other[SEAL_KEY_LEN], *plain;
	size_t plain_len;

	memcpy(other, store_key, sizeof(other));
	other[0] ^= 0x01;
	sealed_record(&h);
	assert_int_equal(held_unseal(local_key, other, &h, &plain, &plain_len, NULL), CABLES_ERR_CRYPTO);
	record_release(&h);
}

/* A key function that fails (the keyholder down) gives its own error, not "changed". */
static void
test_key_function_error_passes_through(void **state)
{
	struct held_record h;
	struct cables_err err = { "" };
	uint8_t *plain, *blob;
	size_t plain_len, blob_len;

	sealed_record(&h);
	assert_int_equal(held_unseal(failing_key, NULL, &h, &plain, &plain_len, &err), CABLES_ERR_IO);
	assert_string_equal(err.msg, "keyholder down");
	assert_int_equal(held_seal(failing_key, NULL, &h, (const uint8_t *)"x", 1, &blob, &blob_len, NULL),
	    CABLES_ERR_IO);
	assert_null(blob);
	record_release(&h);
}

static void
test_seal_refuses_malformed_id(void **state)
{
	static const char *ids[] = { "0123456789ABCDEF", "0123456789abcdeg", "0123456789abcde", "" };

	for (size_t i = 0; i < N_ELEMENTS(ids); i++) {
		struct held_record h;
		uint8_t *blob;
		size_t blob_len;

		record_init(&h);
		strlcpy_c(h.id, ids[i], sizeof(h.id));
		assert_int_equal(held_seal(local_key, (void *)store_key, &h, (const uint8_t *)"x", 1, &blob,
		    &blob_len, NULL), CABLES_ERR_ARG);
		assert_null(blob);
		record_release(&h);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_derive_known_answer),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_two_seals_differ),
		cmocka_unit_test(test_unseal_refuses_changed_records),
		cmocka_unit_test(test_unseal_refuses_any_changed_byte),
		cmocka_unit_test(test_unseal_refuses_another_store_key),
		cmocka_unit_test(test_key_function_error_passes_through),
		cmocka_unit_test(test_seal_refuses_malformed_id),
	};

	return cmocka_run_group_tests_name("heldseal", tests, NULL, NULL);
}
