/* test_pgp_packet - OpenPGP packet headers and the "is this an encrypted message" test. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pgp_packet.h"
#include "util.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static void
test_headers_old_and_new_format(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[8];
		size_t n;
		cables_status st;
		unsigned int tag;
		bool new_format;
		size_t header_len;
		enum pgp_length_kind kind;
		uint32_t body_len;
	} cases[] = {
		{ "new, one octet", { 0xc1, 0x05 }, 2, CABLES_OK, 1, true, 2, PGP_LENGTH_DEFINITE, 5 },
		{ "new, one octet max", { 0xd2, 191 }, 2, CABLES_OK, 18, true, 2, PGP_LENGTH_DEFINITE, 191 },
		{ "new, two octets min", { 0xc3, 192, 0 }, 3, CABLES_OK, 3, true, 3, PGP_LENGTH_DEFINITE, 192 },
		{ "new, two octets max", { 0xc3, 223, 255 }, 3, CABLES_OK, 3, true, 3, PGP_LENGTH_DEFINITE, 8383 },
		{ "new, five octets", { 0xd4, 255, 0, 1, 0, 0 }, 6, CABLES_OK, 20, true, 6, PGP_LENGTH_DEFINITE, 65536 },
		{ "new, partial 512", { 0xd2, 0xe9 }, 2, CABLES_OK, 18, true, 2, PGP_LENGTH_PARTIAL, 512 },
		{ "new, partial 1", { 0xcb, 0xe0 }, 2, CABLES_OK, 11, true, 2, PGP_LENGTH_PARTIAL, 1 },
		{ "new, partial 2^30", { 0xcb, 0xfe }, 2, CABLES_OK, 11, true, 2, PGP_LENGTH_PARTIAL, 1u << 30 },
		{ "old, one octet", { 0x84, 0x0c }, 2, CABLES_OK, 1, false, 2, PGP_LENGTH_DEFINITE, 12 },
		{ "old, two octets", { 0x85, 0x01, 0x0c }, 3, CABLES_OK, 1, false, 3, PGP_LENGTH_DEFINITE, 268 },
		{ "old, four octets", { 0xa6, 0, 0, 1, 0 }, 5, CABLES_OK, 9, false, 5, PGP_LENGTH_DEFINITE, 256 },
		{ "old, indeterminate", { 0xa3 }, 1, CABLES_OK, 8, false, 1, PGP_LENGTH_INDETERMINATE, 0 },
		{ "empty", { 0 }, 0, CABLES_ERR_SYNTAX, 0, false, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "bit 7 clear", { 0x41, 0x05 }, 2, CABLES_ERR_SYNTAX, 0, false, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "tag 0 new", { 0xc0, 0x05 }, 2, CABLES_ERR_SYNTAX, 0, true, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "tag 0 old", { 0x80, 0x05 }, 2, CABLES_ERR_SYNTAX, 0, false, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "new, no length", { 0xc1 }, 1, CABLES_ERR_SYNTAX, 1, true, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "new, two octets cut", { 0xc1, 200 }, 2, CABLES_ERR_SYNTAX, 1, true, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "new, five octets cut", { 0xc1, 255, 0, 0, 1 }, 5, CABLES_ERR_SYNTAX, 1, true, 0, PGP_LENGTH_DEFINITE, 0 },
		{ "old, four octets cut", { 0x86, 0, 0 }, 3, CABLES_ERR_SYNTAX, 1, false, 0, PGP_LENGTH_DEFINITE, 0 },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct pgp_packet_header h;
		struct cables_err err;
		cables_status st = pgp_packet_header_read(cases[i].bytes, cases[i].n, &h, &err);

		if (st != cases[i].st)
			fail_msg("%s: status %d, expected %d", cases[i].what, st, cases[i].st);
		if (st != CABLES_OK)
			continue;
		if (h.tag != cases[i].tag || h.new_format != cases[i].new_format || h.header_len != cases[i].header_len ||
		    h.kind != cases[i].kind || h.body_len != cases[i].body_len)
			fail_msg("%s: tag %u new %d hlen %zu kind %d len %u", cases[i].what, h.tag, h.new_format,
			    h.header_len, h.kind, (unsigned int)h.body_len);
	}
	(void)state;
}

/* Append a new-format packet with a body of n bytes of x. */
static void
packet(struct buf *b, unsigned int tag, size_t n, uint8_t x)
{
	uint8_t h[6] = { (uint8_t)(0xc0 | tag) };
	size_t hl;

	if (n < 192) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else {
		h[1] = 255;
		h[2] = (uint8_t)(n >> 24);
		h[3] = (uint8_t)(n >> 16);
		h[4] = (uint8_t)(n >> 8);
		h[5] = (uint8_t)n;
		hl = 6;
	}
	buf_append(b, h, hl);
	for (size_t i = 0; i < n; i++)
		buf_append(b, &x, 1);
}

static void
test_encrypted_only_with_session_keys_then_data(void **state)
{
	static const struct {
		const char *what;
		unsigned int tags[6];	/* 0 ends; 100+tag: a partial-length data packet (512) */
		size_t lens[6];
		cables_status st;
		const char *why;
	} cases[] = {
		{ "PKESK, SEIPD", { 1, 18 }, { 12, 40 }, CABLES_OK, NULL },
		{ "two PKESK, SKESK, marker, SEIPD", { 1, 1, 3, 10, 18 }, { 268, 12, 13, 3, 40 }, CABLES_OK, NULL },
		{ "SKESK, SED", { 3, 9 }, { 13, 40 }, CABLES_OK, NULL },
		{ "PKESK, AEAD", { 1, 20 }, { 12, 40 }, CABLES_OK, NULL },
		{ "PKESK, partial SEIPD", { 1, 118 }, { 12, 0 }, CABLES_OK, NULL },
		{ "literal data (plaintext labelled PGP/MIME)", { 11 }, { 40 }, CABLES_ERR_SYNTAX, "packet tag 11" },
		{ "compressed data", { 8 }, { 40 }, CABLES_ERR_SYNTAX, "packet tag 8" },
		{ "one-pass signature, literal", { 4, 11 }, { 13, 40 }, CABLES_ERR_SYNTAX, "packet tag 4" },
		{ "PKESK, literal", { 1, 11 }, { 12, 40 }, CABLES_ERR_SYNTAX, "packet tag 11" },
		{ "SEIPD without a session key", { 18 }, { 40 }, CABLES_ERR_SYNTAX, "encrypted data packet (tag 18) without" },
		{ "PKESK only", { 1 }, { 12 }, CABLES_ERR_SYNTAX, "no encrypted data packet after 1 session-key packet" },
		{ "PKESK, empty SEIPD", { 1, 18 }, { 12, 0 }, CABLES_ERR_SYNTAX, "empty encrypted data packet" },
	};

	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		struct buf b;
		struct cables_err err;
		cables_status st;

		buf_init(&b);
		for (size_t k = 0; k < 6 && cases[i].tags[k] != 0; k++) {
			if (cases[i].tags[k] > 100) {
				uint8_t h[2] = { (uint8_t)(0xc0 | (cases[i].tags[k] - 100)), 0xe9 };

				buf_append(&b, h, 2);
				for (size_t j = 0; j < 512; j++)
					buf_append(&b, "x", 1);
			} else {
				packet(&b, cases[i].tags[k], cases[i].lens[k], 3);
			}
		}
		st = pgp_packet_is_encrypted((const uint8_t *)b.data, b.len, NULL, &err);
		if (st != cases[i].st)
			fail_msg("%s: status %d (%s)", cases[i].what, st, st != CABLES_OK ? err.msg : "");
		if (cases[i].why != NULL && strstr(err.msg, cases[i].why) == NULL)
			fail_msg("%s: '%s', expected '%s'", cases[i].what, err.msg, cases[i].why);
		buf_release(&b);
	}
	(void)state;
}

static void
test_session_keys_must_be_whole_and_definite(void **state)
{
	/* Old format PKESK of 12, cut after 5 bytes of body. */
	static const uint8_t cut[] = { 0x84, 12, 3, 1, 2, 3, 4 };
	/* A PKESK with a partial length (only data packets may have one). */
	static const uint8_t partial[] = { 0xc1, 0xe0, 3, 0xd2, 2, 1, 1 };
	/* The first partial chunk of a data packet must be at least 512 bytes. */
	static const uint8_t small_chunk[] = { 0xc1, 1, 3, 0xd2, 0xe1, 1, 1 };
	/* A PKESK whose 5-octet length overflows what is left. */
	static const uint8_t huge[] = { 0xc1, 255, 0xff, 0xff, 0xff, 0xff, 0xd2, 1, 1 };
	struct cables_err err;
	size_t nsk = 99;

	assert_int_equal(pgp_packet_is_encrypted(cut, sizeof(cut), &nsk, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "cut short"));
	assert_int_equal(nsk, 0);
	assert_int_equal(pgp_packet_is_encrypted(partial, sizeof(partial), NULL, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "without a definite length"));
	assert_int_equal(pgp_packet_is_encrypted(small_chunk, sizeof(small_chunk), NULL, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "fewer than 512"));
	assert_int_equal(pgp_packet_is_encrypted(huge, sizeof(huge), NULL, &err), CABLES_ERR_SYNTAX);
	assert_int_equal(pgp_packet_is_encrypted(NULL, 0, NULL, &err), CABLES_ERR_SYNTAX);
	(void)state;
}

static void
test_pkesk_key_id(void **state)
{
	static const uint8_t v3[] = { 3, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1 };
	static const uint8_t v6[] = { 6, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1 };
	char id[17];

	assert_true(pgp_packet_pkesk_keyid(v3, sizeof(v3), id));
	assert_string_equal(id, "123456789abcdef0");
	assert_false(pgp_packet_pkesk_keyid(v6, sizeof(v6), id));
	assert_false(pgp_packet_pkesk_keyid(v3, 8, id));
	(void)state;
}

/* A v3 PKESK naming key ID id (8 bytes), with an old (old_format) or new header and a 4-byte junk MPI. */
static void
pkesk(struct buf *b, const uint8_t id[8], bool old_format)
{
	uint8_t h[2] = { old_format ? 0x84 : 0xc1, 13 }, v = 3, algo_mpi[4] = { 1, 0, 8, 0x5a };

	buf_append(b, h, 2);
	buf_append(b, &v, 1);
	buf_append(b, id, 8);
	buf_append(b, algo_mpi, 4);
}

static void
test_keep_pkesks_of_the_recipient_only(void **state)
{
	static const uint8_t bob[8] = { 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0xb0, 0x01 };
	static const uint8_t carol[8] = { 0xca, 0xca, 0xca, 0xca, 0xca, 0xca, 0xca, 0x02 };
	static const uint8_t hidden[8] = { 0 };
	static const uint8_t skesk[] = { 0xc3, 4, 4, 9, 3, 0 }, marker[] = { 0xca, 3, 'P', 'G', 'P' };
	static const uint8_t seipd[] = { 0xd2, 5, 1, 'D', 'A', 'T', 'A' }, tail[] = { 0xcb, 1, 'T' };
	const char bob_ids[][17] = { "1111111111111111", "b0b0b0b0b0b0b001" };
	const char carol_ids[][17] = { "cacacacacacaca02" };
	const char wildcard[][17] = { "0000000000000000" };
	struct buf b, want;
	struct cables_err err;
	size_t n, kept;

	/* carol's PKESK, a hidden one, an SKESK, a marker, bob's, then the data and a trailing packet. */
	buf_init(&b);
	pkesk(&b, carol, false);
	pkesk(&b, hidden, false);
	buf_append(&b, skesk, sizeof(skesk));
	buf_append(&b, marker, sizeof(marker));
	pkesk(&b, bob, true);
	buf_append(&b, seipd, sizeof(seipd));
	buf_append(&b, tail, sizeof(tail));

	/* For bob: his packet (old header kept as it was), then the rest byte for byte. */
	buf_init(&want);
	pkesk(&want, bob, true);
	buf_append(&want, seipd, sizeof(seipd));
	buf_append(&want, tail, sizeof(tail));
	{
		struct buf c;

		buf_init(&c);
		buf_append(&c, b.data, b.len);
		n = c.len;
		assert_int_equal(pgp_packet_keep_pkesks((uint8_t *)c.data, &n, bob_ids, 2, &kept, &err), CABLES_OK);
		assert_int_equal(kept, 1);
		assert_int_equal(n, want.len);
		assert_memory_equal(c.data, want.data, n);
		assert_int_equal(pgp_packet_is_encrypted((uint8_t *)c.data, n, NULL, &err), CABLES_OK);
		buf_release(&c);
	}
	/* For carol: hers only. */
	n = b.len;
	assert_int_equal(pgp_packet_keep_pkesks((uint8_t *)b.data, &n, carol_ids, 1, &kept, &err), CABLES_OK);
	assert_int_equal(kept, 1);
	assert_int_equal(n, 15 + sizeof(seipd) + sizeof(tail));
	assert_memory_equal(b.data + 3, carol, 8);
	assert_memory_equal(b.data + 15, seipd, sizeof(seipd));
	buf_release(&b);
	buf_release(&want);

	/* A wildcard ID is never kept, even when asked for: a hidden PKESK could be anybody's. */
	buf_init(&b);
	pkesk(&b, hidden, false);
	buf_append(&b, seipd, sizeof(seipd));
	n = b.len;
	assert_int_equal(pgp_packet_keep_pkesks((uint8_t *)b.data, &n, wildcard, 1, &kept, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(kept, 0);
	assert_non_null(strstr(err.msg, "no public-key encrypted session key"));
	buf_release(&b);
	(void)state;
}

static void
test_keep_pkesks_refuses_what_is_not_encrypted(void **state)
{
	static const uint8_t literal[] = { 0xcb, 3, 'b', 0, 'x' };
	/* Two PKESKs naming the same key: both kept (a re-encryption to one key, say). */
	static const uint8_t twice[] = { 0xc1, 9, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0xc1, 9, 3, 1, 2, 3, 4, 5, 6, 7, 8,
	    0xd2, 1, 1 };
	/* A v6 PKESK (no key ID): dropped. */
	static const uint8_t v6[] = { 0xc1, 9, 6, 1, 2, 3, 4, 5, 6, 7, 8, 0xd2, 1, 1 };
	const char ids[][17] = { "0102030405060708" };
	uint8_t buf[sizeof(twice)];
	struct cables_err err;
	size_t n, kept;

	memcpy(buf, literal, sizeof(literal));
	n = sizeof(literal);
	assert_int_equal(pgp_packet_keep_pkesks(buf, &n, ids, 1, &kept, &err), CABLES_ERR_SYNTAX);
	n = 0;
	assert_int_equal(pgp_packet_keep_pkesks(buf, &n, ids, 1, &kept, &err), CABLES_ERR_SYNTAX);
	memcpy(buf, twice, sizeof(twice));
	n = sizeof(twice);
	assert_int_equal(pgp_packet_keep_pkesks(buf, &n, ids, 1, &kept, &err), CABLES_OK);
	assert_int_equal(kept, 2);
	assert_int_equal(n, sizeof(twice));
	assert_memory_equal(buf, twice, n);
	memcpy(buf, v6, sizeof(v6));
	n = sizeof(v6);
	assert_int_equal(pgp_packet_keep_pkesks(buf, &n, ids, 1, &kept, &err), CABLES_ERR_NOTFOUND);
	n = sizeof(v6);
	assert_int_equal(pgp_packet_keep_pkesks(buf, &n, NULL, 0, &kept, &err), CABLES_ERR_NOTFOUND);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_old_and_new_format),
		cmocka_unit_test(test_encrypted_only_with_session_keys_then_data),
		cmocka_unit_test(test_session_keys_must_be_whole_and_definite),
		cmocka_unit_test(test_pkesk_key_id),
		cmocka_unit_test(test_keep_pkesks_of_the_recipient_only),
		cmocka_unit_test(test_keep_pkesks_refuses_what_is_not_encrypted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
