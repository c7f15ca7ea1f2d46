/*
 * test_pgp - the OpenPGP module against a real gpg in a throw-away GnuPG
 * home: key generation and usability checks, PGP/MIME encryption (framing,
 * CRLF, hidden key IDs) and decryption with verification, and the parsing
 * of session-key packets that decides whom a message is for.
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

#include "helpers.h"
#include "pgp.h"
#include "spool.h"

static char home[64];
static char bob[PGP_FPR_LEN + 1], carol[PGP_FPR_LEN + 1];
static struct buf bob_pub, carol_pub;
static const struct addr_opts ao = { false, "+" };

static int
setup_home(void **state)
{
	struct cables_err err;

	buf_init(&bob_pub);
	buf_init(&carol_pub);
	if (pgp_temp_home("/tmp", home, &err) != CABLES_OK ||
	    pgp_generate(home, "bob@b.test", PGP_ALGO_ED25519, 365, bob, &err) != CABLES_OK ||
	    pgp_generate(home, "carol@c.test", PGP_ALGO_ED25519, 0, carol, &err) != CABLES_OK ||
	    pgp_export(home, bob, false, false, &bob_pub, &err) != CABLES_OK ||
	    pgp_export(home, carol, false, false, &carol_pub, &err) != CABLES_OK) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int
teardown_home(void **state)
{
	buf_release(&bob_pub);
	buf_release(&carol_pub);
	pgp_cache_clear();
	pgp_temp_home_remove(home);
	return 0;
}

static struct spool *
spool_of(const void *p, size_t n)
{
	struct spool *sp = spool_new("/tmp", 1 << 20, 0);

	assert_int_equal(spool_append(sp, p, n, NULL), CABLES_OK);
	return sp;
}

static void
test_openpgp_data_is_recognised(void **state)
{
	static const uint8_t pub_new[] = { 0xc6, 0x33, 0x04 }, pub_old[] = { 0x99, 0x01, 0x0d }, der[] = { 0x30, 0x82 };
	static const char armor[] = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEaw==\n";
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n";

	assert_true(pgp_data_is_openpgp((const uint8_t *)armor, strlen(armor)));
	assert_true(pgp_data_is_openpgp(pub_new, sizeof(pub_new)));
	assert_true(pgp_data_is_openpgp(pub_old, sizeof(pub_old)));
	assert_true(pgp_data_is_openpgp((const uint8_t *)bob_pub.data, bob_pub.len));
	assert_false(pgp_data_is_openpgp(der, sizeof(der)));
	assert_false(pgp_data_is_openpgp((const uint8_t *)pem, strlen(pem)));
	assert_false(pgp_data_is_openpgp((const uint8_t *)"", 0));
}

static void
test_generated_keys_can_encrypt_and_sign_for_their_address(void **state)
{
	struct pgp_key_info info;
	struct cables_err err;
	char fpr[PGP_FPR_LEN + 1];
	time_t now = time(NULL);

	assert_int_equal(pgp_key_get(home, bob, &info, &err), CABLES_OK);
	assert_string_equal(info.fpr, bob);
	assert_string_equal(info.algo, "ed25519/cv25519");
	assert_true(info.can_encrypt && info.can_sign && info.secret);
	assert_int_equal(info.nemails, 1);
	assert_string_equal(info.emails[0], "bob@b.test");
	assert_int_equal(info.nsubkeys, 2);
	assert_true(info.expires > now + 364 * 86400 && info.expires < now + 366 * 86400);
	pgp_key_info_release(&info);
	assert_int_equal(pgp_check(home, (uint8_t *)bob_pub.data, bob_pub.len, "bob@b.test", &ao, PGP_USE_ENCRYPT, now,
	    fpr, &err), CABLES_OK);
	assert_string_equal(fpr, bob);
	assert_int_equal(pgp_check(home, (uint8_t *)bob_pub.data, bob_pub.len, "bob@b.test", &ao, PGP_USE_SIGN, now,
	    fpr, &err), CABLES_OK);
}

static void
test_unusable_keys_say_why(void **state)
{
	struct cables_err err;
	char fpr[PGP_FPR_LEN + 1];
	time_t now = time(NULL);

	assert_int_equal(pgp_check(home, (uint8_t *)bob_pub.data, bob_pub.len, "eve@b.test", &ao, PGP_USE_ENCRYPT, now,
	    fpr, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "has no user ID for eve@b.test"));
	assert_int_equal(pgp_check(home, (uint8_t *)bob_pub.data, bob_pub.len, "bob@b.test", &ao, PGP_USE_ENCRYPT,
	    now + 400 * 86400, fpr, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "expired on "));
	/* Carol's key never expires. */
	assert_int_equal(pgp_check(home, (uint8_t *)carol_pub.data, carol_pub.len, "carol@c.test", &ao, PGP_USE_ENCRYPT,
	    now + 4000 * 86400, fpr, &err), CABLES_OK);
	/* A store row gpg cannot read is this server's failure (mail waits), not a missing key. */
	assert_int_equal(pgp_check(home, (const uint8_t *)"junk", 4, "bob@b.test", &ao, PGP_USE_ENCRYPT, now, fpr, &err),
	    CABLES_ERR_INTERNAL);
	assert_non_null(strstr(err.msg, "gpg cannot read a stored OpenPGP key"));
}

/* An armored message from packets (bytes), as a spool. */
static struct spool *
armored(const uint8_t *packets, size_t n)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	struct buf b;
	struct spool *sp;

	buf_init(&b);
	buf_appends(&b, "-----BEGIN PGP MESSAGE-----\r\nComment: test\r\n\r\n");
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)packets[i] << 16 | (i + 1 < n ? (uint32_t)packets[i + 1] << 8 : 0) |
		    (i + 2 < n ? packets[i + 2] : 0);
		char q[4] = { b64[v >> 18], b64[(v >> 12) & 63], i + 1 < n ? b64[(v >> 6) & 63] : '=',
			i + 2 < n ? b64[v & 63] : '=' };

		buf_append(&b, q, 4);
		if (i % 48 == 45)
			buf_appends(&b, "\r\n");
	}
	buf_appends(&b, "\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n");
	sp = spool_of(b.data, b.len);
	buf_release(&b);
	return sp;
}

static void
test_session_key_packets_name_the_recipients(void **state)
{
	/* new-format PKESK, a marker packet, old-format PKESK (hidden), then encrypted data (tag 18). */
	static const uint8_t pk[] = {
		0xc1, 12, 3, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 18, 0xaa, 0xbb,
		0xca, 3, 'P', 'G', 'P',
		0x84, 11, 3, 0, 0, 0, 0, 0, 0, 0, 0, 18, 0xcc,
		0xd2, 5, 1, 2, 3, 4, 5,
		0xc1, 12, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 18, 0, 0 };
	char ids[4][17];
	size_t n;
	struct spool *sp = armored(pk, sizeof(pk));

	assert_int_equal(pgp_message_keyids(sp, 0, (off_t)spool_size(sp), ids, 4, &n, NULL), CABLES_OK);
	assert_int_equal(n, 2);	/* the packet after the encrypted data is not a session key */
	assert_string_equal(ids[0], "0123456789abcdef");
	assert_string_equal(ids[1], "0000000000000000");
	spool_free(sp);
}

static void
test_truncated_or_hostile_packets_are_not_overread(void **state)
{
	static const uint8_t cases[][8] = {
		{ 0xc1, 200, 3, 1, 2 },			/* length past the end */
		{ 0xc1, 0xff, 0xff, 0xff },		/* five-octet length, cut */
		{ 0xc1, 0xe5, 3, 1 },			/* partial length: not a session key */
		{ 0x87, 1, 2, 3, 4, 5, 6, 7 },		/* old format, indeterminate length */
		{ 0x01, 2, 3 },				/* not a packet */
	};
	char ids[2][17];
	size_t n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool *sp = armored(cases[i], sizeof(cases[i]));

		assert_int_equal(pgp_message_keyids(sp, 0, (off_t)spool_size(sp), ids, 2, &n, NULL), CABLES_OK);
		assert_int_equal(n, 0);
		spool_free(sp);
	}
}

/* Encrypt text to fprs, returning the multipart body and its Content-Type. */
static void
encrypt(const char *text, const char *const *fprs, size_t n, const struct pgp_encrypt_opts *o, struct mem_sink *out,
    char ct[160])
{
	struct entity_src src;
	struct cables_err err;

	entity_src_init(&src);
	entity_src_mem(&src, text, strlen(text));
	mem_sink_init(out);
	assert_int_equal(pgp_encrypt(home, o, fprs, n, &src, &out->sink, ct, &err), CABLES_OK);
}

static bool
has(const struct buf *b, const char *s)
{
	return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

/* The armored message inside a PGP/MIME body. */
static void
armor_range(const struct buf *body, off_t *from, off_t *to)
{
	const char *b = memmem(body->data, body->len, "-----BEGIN PGP MESSAGE-----", 27);
	const char *e = memmem(body->data, body->len, "-----END PGP MESSAGE-----\r\n", 27);

	assert_non_null(b);
	assert_non_null(e);
	*from = b - body->data;
	*to = e + 27 - body->data;
}

static void
test_encrypt_then_decrypt_round_trips_with_crlf_and_signature(void **state)
{
	static const char text[] = "Content-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9f" "e\r\n.dot\r\n";
	const char *to[] = { bob, carol };
	struct pgp_encrypt_opts o = { false, carol, false };
	struct mem_sink out, plain;
	struct pgp_verify v;
	struct cables_err err;
	struct spool *sp;
	char ct[160], boundary[64], ids[4][17];
	size_t n;
	off_t from, end;

	encrypt(text, to, 2, &o, &out, ct);
	assert_non_null(strstr(ct, "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\""));
	assert_int_equal(sscanf(strstr(ct, "boundary=\"") + 10, "%63[^\"]", boundary), 1);
	assert_true(has(&out.data, "\r\nContent-Type: application/pgp-encrypted\r\n"));
	assert_true(has(&out.data, "\r\n\r\nVersion: 1\r\n"));
	assert_true(has(&out.data, "\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n"));
	assert_true(has(&out.data, boundary));
	for (size_t i = 0; i < out.data.len; i++)
		if (out.data.data[i] == '\n')
			assert_true(i > 0 && out.data.data[i - 1] == '\r');
	armor_range(&out.data, &from, &end);
	sp = spool_of(out.data.data, out.data.len);
	assert_int_equal(pgp_message_keyids(sp, from, end, ids, 4, &n, &err), CABLES_OK);
	assert_int_equal(n, 2);
	/* The home holds both secrets: gpg decrypts with the one whose packet is kept, each in turn. */
	for (size_t k = 0; k < 2; k++) {
		mem_sink_init(&plain);
		assert_int_equal(pgp_decrypt(home, sp, from, end, (const char (*)[17])&ids[k], 1, &plain.sink, &v, &err),
		    CABLES_OK);
		assert_int_equal(plain.data.len, strlen(text));
		assert_memory_equal(plain.data.data, text, strlen(text));
		assert_int_equal(strlen(v.decrypted_by), PGP_FPR_LEN);
		assert_string_equal(v.decrypted_by + PGP_FPR_LEN - 16, ids[k]);
		assert_true(v.signed_ && v.good);
		assert_true(pgp_key_has(home, (uint8_t *)carol_pub.data, carol_pub.len, v.fpr));
		assert_false(pgp_key_has(home, (uint8_t *)bob_pub.data, bob_pub.len, v.fpr));
		mem_sink_release(&plain);
	}
	/* Neither: gpg does not run. */
	mem_sink_init(&plain);
	assert_int_equal(pgp_decrypt(home, sp, from, end, (const char (*)[17])&ids[2], 0, &plain.sink, &v, &err),
	    CABLES_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "OpenPGP: no public-key encrypted session key"));
	assert_int_equal(plain.data.len, 0);
	spool_free(sp);
	mem_sink_release(&plain);
	mem_sink_release(&out);
}

static void
test_hidden_recipients_show_no_key_id(void **state)
{
	const char *to[] = { bob };
	struct pgp_encrypt_opts o = { true, NULL, false };
	struct mem_sink out;
	struct spool *sp;
	char ct[160], ids[2][17];
	size_t n;
	off_t from, end;

	encrypt("Content-Type: text/plain\r\n\r\nhi\r\n", to, 1, &o, &out, ct);
	armor_range(&out.data, &from, &end);
	sp = spool_of(out.data.data, out.data.len);
	assert_int_equal(pgp_message_keyids(sp, from, end, ids, 2, &n, NULL), CABLES_OK);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "0000000000000000");
	spool_free(sp);
	mem_sink_release(&out);
}

static void
test_broken_input_fails_with_a_reason(void **state)
{
	const char *nobody[] = { "0123456789012345678901234567890123456789" };
	struct pgp_encrypt_opts o = { false, NULL, false };
	struct entity_src src;
	struct mem_sink out, plain;
	struct pgp_verify v;
	struct cables_err err;
	struct spool *sp;
	char ct[160];
	static const char garbage[] = "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA3q6\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n";

	entity_src_init(&src);
	entity_src_mem(&src, "x", 1);
	mem_sink_init(&out);
	assert_int_not_equal(pgp_encrypt(home, &o, nobody, 1, &src, &out.sink, ct, &err), CABLES_OK);
	assert_non_null(strstr(err.msg, "OpenPGP"));
	assert_int_equal(pgp_encrypt(home, &o, nobody, 0, &src, &out.sink, ct, &err), CABLES_ERR_ARG);
	sp = spool_of(garbage, strlen(garbage));
	mem_sink_init(&plain);
	assert_int_not_equal(pgp_decrypt(home, sp, 0, (off_t)spool_size(sp), (const char (*)[17])&"7abacdef01234567",
	    1, &plain.sink, &v, &err), CABLES_OK);
	assert_non_null(strstr(err.msg, "OpenPGP"));
	spool_free(sp);
	mem_sink_release(&plain);
	mem_sink_release(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openpgp_data_is_recognised),
		cmocka_unit_test(test_generated_keys_can_encrypt_and_sign_for_their_address),
		cmocka_unit_test(test_unusable_keys_say_why),
		cmocka_unit_test(test_session_key_packets_name_the_recipients),
		cmocka_unit_test(test_truncated_or_hostile_packets_are_not_overread),
		cmocka_unit_test(test_encrypt_then_decrypt_round_trips_with_crlf_and_signature),
		cmocka_unit_test(test_hidden_recipients_show_no_key_id),
		cmocka_unit_test(test_broken_input_fails_with_a_reason),
	};

	return cmocka_run_group_tests(tests, setup_home, teardown_home);
}
