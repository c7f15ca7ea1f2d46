/*
 * test_pgp_key - OpenPGP secret keys as the keyholder reads them (a key gpg
 * made and exported): each (sub)key found by key ID, turned into an
 * EVP_PKEY whose public half is the packet's (the Curve25519 byte order);
 * protected, damaged, unsupported and mismatched secrets refused with the
 * reason; session-key decoding (checksum, padding) and PKESK parsing strict;
 * and a whole decryption without any secret in gpg: the PKESK opened through
 * khop (as the keyholder would) and khpgp, the message decrypted by gpg with
 * the session key in a home that holds only the public key.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "helpers.h"
#include "khop.h"
#include "khpgp.h"
#include "pgp.h"
#include "pgp_key.h"
#include "pgp_packet.h"
#include "spool.h"

static char home[64], pubhome[64];
static char fpr[PGP_FPR_LEN + 1];
static struct buf sec, pub;
static struct pgp_key_info info;

static int
setup(void **state)
{
	struct cables_err err;
	char fprs[1][PGP_FPR_LEN + 1];
	size_t n;

	buf_init(&sec);
	buf_init(&pub);
	if (pgp_temp_home("/tmp", home, &err) != CABLES_OK || pgp_temp_home("/tmp", pubhome, &err) != CABLES_OK ||
	    pgp_generate(home, "alice@a.test", PGP_ALGO_ED25519, 0, fpr, &err) != CABLES_OK ||
	    pgp_export(home, fpr, true, false, &sec, &err) != CABLES_OK ||
	    pgp_export(home, fpr, false, false, &pub, &err) != CABLES_OK ||
	    pgp_import(pubhome, (const uint8_t *)pub.data, pub.len, fprs, 1, &n, &err) != CABLES_OK ||
	    pgp_key_get(home, fpr, &info, &err) != CABLES_OK) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int
teardown(void **state)
{
	pgp_temp_home_remove(home);
	pgp_temp_home_remove(pubhome);
	buf_release(&sec);
	buf_release(&pub);
	pgp_key_info_release(&info);
	return 0;
}

static void
keyid_of(size_t i, char id[17])
{
	strcpy(id, info.subkeys[i] + PGP_FPR_LEN - 16);
	for (char *p = id; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
}

static void
test_find_and_private(void **state)
{
	struct pgp_keypkt k;
	struct cables_err err;
	char id[17];
	EVP_PKEY *key;

	assert_int_equal(info.nsubkeys, 2);
	keyid_of(0, id);
	assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, id, &k, &err), CABLES_OK);
	assert_true(k.secret);
	assert_int_equal(k.algo, PGP_PK_EDDSA);
	assert_int_equal(k.curve, PGP_CURVE_ED25519);
	assert_non_null(key = pgp_key_private(&k, &err));
	assert_true(EVP_PKEY_is_a(key, "ED25519"));
	EVP_PKEY_free(key);
	keyid_of(1, id);
	assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, id, &k, &err), CABLES_OK);
	assert_int_equal(k.algo, PGP_PK_ECDH);
	assert_int_equal(k.curve, PGP_CURVE_25519);
	assert_int_equal(k.kdf_hash, 8);
	/* The public half checked against the packet's point: gpg's reversed scalar was read right. */
	assert_non_null(key = pgp_key_private(&k, &err));
	assert_true(EVP_PKEY_is_a(key, "X25519"));
	EVP_PKEY_free(key);
	/* The public export: the same key IDs, no secret. */
	assert_int_equal(pgp_key_find((const uint8_t *)pub.data, pub.len, id, &k, &err), CABLES_OK);
	assert_false(k.secret);
	assert_null(pgp_key_private(&k, &err));
	assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, "0123456789abcdef", &k, &err),
	    CABLES_ERR_NOTFOUND);
}

/* The offset of the first secret subkey packet's S2K usage byte, and the packet's body. */
static size_t
subkey_secret_at(uint8_t *p, size_t n, size_t *body, size_t *body_len)
{
	struct pgp_packet_header h;
	size_t pos = 0;

	while (pos < n) {
		assert_int_equal(pgp_packet_header_read(p + pos, n - pos, &h, NULL), CABLES_OK);
		if (h.tag == 7) {
			/* cv25519: version, time, algo, OID (1 + 10), point MPI (2 + 33), KDF (4) */
			*body = pos + h.header_len;
			*body_len = h.body_len;
			return *body + 6 + 11 + 35 + 4;
		}
		pos += h.header_len + h.body_len;
	}
	fail();
	return 0;
}

static void
test_refusals(void **state)
{
	uint8_t *copy = malloc(sec.len);
	struct pgp_keypkt k;
	struct cables_err err;
	size_t at, body = 0, blen = 0, sum;	/* set by subkey_secret_at(), which gcc -O2 cannot see */
	char id[17];

	keyid_of(1, id);
	memcpy(copy, sec.data, sec.len);
	at = subkey_secret_at(copy, sec.len, &body, &blen);
	assert_int_equal(copy[at], 0);
	copy[at] = 254;		/* protected with a passphrase */
	assert_int_equal(pgp_key_find(copy, sec.len, id, &k, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "protected"));
	memcpy(copy, sec.data, sec.len);
	copy[body + blen - 1] ^= 1;	/* checksum */
	assert_int_equal(pgp_key_find(copy, sec.len, id, &k, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "checksum"));
	memcpy(copy, sec.data, sec.len);
	/*
	 * The scalar's last byte, the checksum made right again.  In gpg's
	 * order that is RFC 7748's first byte, whose low 3 bits X25519 clears:
	 * flip a bit it keeps.
	 */
	copy[body + blen - 3] ^= 0x10;
	sum = (size_t)copy[body + blen - 2] << 8 | copy[body + blen - 1];
	sum = (sum + (copy[body + blen - 3] & 0x10 ? 0x10 : 0x10000 - 0x10)) & 0xffff;
	copy[body + blen - 2] = (uint8_t)(sum >> 8);
	copy[body + blen - 1] = (uint8_t)sum;
	assert_int_equal(pgp_key_find(copy, sec.len, id, &k, &err), CABLES_OK);
	assert_null(pgp_key_private(&k, &err));
	assert_non_null(strstr(err.msg, "does not match its public key"));
	memcpy(copy, sec.data, sec.len);
	copy[body + 5] = 17;	/* DSA */
	assert_int_equal(pgp_key_find(copy, sec.len, id, &k, &err), CABLES_ERR_UNUSABLE);
	assert_non_null(strstr(err.msg, "algorithm 17 is not supported"));
	memcpy(copy, sec.data, sec.len);
	assert_int_equal(pgp_key_find(copy, body + blen - 1, id, &k, &err), CABLES_ERR_SYNTAX);	/* cut short */
	free(copy);
}

static void
test_session_key_decode(void **state)
{
	uint8_t m[40];
	char out[PGP_SESSION_KEY_STR];
	unsigned int sum = 0;

	m[0] = 9;
	for (int i = 0; i < 32; i++)
		sum += m[1 + i] = (uint8_t)(i * 7 + 1);
	m[33] = (uint8_t)(sum >> 8);
	m[34] = (uint8_t)sum;
	memset(m + 35, 5, 5);	/* PKCS#5 to 40 */
	assert_int_equal(pgp_session_key_decode(m, 40, true, out, NULL), CABLES_OK);
	assert_int_equal(strncmp(out, "9:01080f", 8), 0);
	assert_int_equal(strlen(out), 2 + 64);
	assert_int_equal(pgp_session_key_decode(m, 35, false, out, NULL), CABLES_OK);
	m[39] = 4;		/* padding bytes disagree */
	assert_int_equal(pgp_session_key_decode(m, 40, true, out, NULL), CABLES_ERR_CRYPTO);
	m[39] = 5;
	m[34] ^= 1;		/* checksum */
	assert_int_equal(pgp_session_key_decode(m, 40, true, out, NULL), CABLES_ERR_CRYPTO);
	m[34] ^= 1;
	m[0] = 1;		/* IDEA: not one here */
	assert_int_equal(pgp_session_key_decode(m, 40, true, out, NULL), CABLES_ERR_CRYPTO);
	m[0] = 7;		/* AES-128 with 32 bytes of key: the length is wrong */
	assert_int_equal(pgp_session_key_decode(m, 40, true, out, NULL), CABLES_ERR_CRYPTO);
	assert_string_equal(out, "");
}

static void
test_pkesk_parse(void **state)
{
	uint8_t ecdh[10 + 35 + 1 + 40], rsa[10 + 2 + 3];
	struct pgp_pkesk k;

	memset(ecdh, 0, sizeof(ecdh));
	ecdh[0] = 3;
	memset(ecdh + 1, 0xab, 8);
	ecdh[9] = 18;
	ecdh[10] = 1, ecdh[11] = 7;	/* 263 bits */
	ecdh[12] = 0x40;
	ecdh[45] = 40;
	assert_int_equal(pgp_packet_pkesk_parse(ecdh, sizeof(ecdh), &k, NULL), CABLES_OK);
	assert_string_equal(k.keyid, "abababababababab");
	assert_int_equal(k.mpi_len, 33);
	assert_int_equal(k.wrapped_len, 40);
	ecdh[45] = 41;		/* wrapped key overruns the packet */
	assert_int_equal(pgp_packet_pkesk_parse(ecdh, sizeof(ecdh), &k, NULL), CABLES_ERR_SYNTAX);
	ecdh[45] = 39;		/* a byte left after it */
	assert_int_equal(pgp_packet_pkesk_parse(ecdh, sizeof(ecdh), &k, NULL), CABLES_ERR_SYNTAX);
	memset(rsa, 0, sizeof(rsa));
	rsa[0] = 3;
	rsa[9] = 1;
	rsa[10] = 0, rsa[11] = 17;	/* 17 bits: 3 bytes */
	rsa[12] = 1;
	assert_int_equal(pgp_packet_pkesk_parse(rsa, sizeof(rsa), &k, NULL), CABLES_OK);
	assert_int_equal(k.mpi_len, 3);
	rsa[9] = 16;		/* ElGamal */
	assert_int_equal(pgp_packet_pkesk_parse(rsa, sizeof(rsa), &k, NULL), CABLES_ERR_UNUSABLE);
	rsa[0] = 6;		/* version 6 */
	assert_int_equal(pgp_packet_pkesk_parse(rsa, sizeof(rsa), &k, NULL), CABLES_ERR_SYNTAX);
}

/* The keyholder, in process: khop on the key pgp_key_private made of the secret export. */
static cables_status
fake_call(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	uint8_t wire[KH_REQUEST_SIZE];
	struct kh_request got;
	struct pgp_keypkt k;
	char keyid[17];
	EVP_PKEY *key;

	assert_int_equal(kh_request_encode(wire, req, NULL), CABLES_OK);
	assert_int_equal(kh_request_decode(&got, wire, NULL), CABLES_OK);
	assert_int_equal(got.key, KH_KEY_PGP);
	assert_int_equal(strncmp(got.fingerprint, fpr, 40), 0);
	memcpy(keyid, got.fingerprint + 40, 16);
	keyid[16] = '\0';
	assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, keyid, &k, err), CABLES_OK);
	assert_non_null(key = pgp_key_private(&k, err));
	khop_perform(key, &got, rep, err);
	EVP_PKEY_free(key);
	return CABLES_OK;
}

static cables_status
spool_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

static cables_status
buf_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	buf_append(arg, p, n);
	return CABLES_OK;
}

static void
test_decrypt_without_secret_in_gpg(void **state)
{
	static const char text[] = "Content-Type: text/plain\r\n\r\nthe plan\r\n";
	struct kh_transport t = { fake_call, NULL };
	struct spool *cipher = spool_new("/tmp", 1 << 20, 0), *plain = spool_new("/tmp", 1 << 20, 0);
	struct buf out;
	struct byte_sink sink = { buf_write, &out }, psink = { spool_write, plain };
	const char *b, *e;
	struct entity_src src;
	struct pgp_encrypt_opts o = { false, NULL };
	struct pgp_verify v;
	struct cables_err err;
	const char *fprs[1] = { fpr };
	char ct[160], ids[4][17], sk[PGP_SESSION_KEY_STR], used[PGP_FPR_LEN + 1], got[128];
	uint8_t body[PGP_PKESK_MAX];
	size_t n, len;
	off_t from, to;

	entity_src_init(&src);
	entity_src_mem(&src, text, strlen(text));
	buf_init(&out);
	assert_int_equal(pgp_encrypt(pubhome, &o, fprs, 1, &src, &sink, ct, &err), CABLES_OK);
	/* The body of multipart/encrypted: the armored message is its second part. */
	assert_non_null(b = memmem(out.data, out.len, "-----BEGIN PGP MESSAGE-----", 27));
	assert_non_null(e = memmem(out.data, out.len, "-----END PGP MESSAGE-----\r\n", 27));
	from = b - out.data;
	to = e + 27 - out.data;
	assert_int_equal(spool_append(cipher, out.data, out.len, NULL), CABLES_OK);
	buf_release(&out);
	assert_int_equal(pgp_message_keyids(cipher, from, to, ids, 4, &n, &err), CABLES_OK);
	assert_int_equal(n, 1);
	assert_int_equal(pgp_message_pkesk(cipher, from, to, ids[0], body, &len, &err), CABLES_OK);
	assert_int_equal(khpgp_session_key(&t, "alice@a.test", fpr, (const uint8_t *)pub.data, pub.len, body, len, sk,
	    used, &err), CABLES_OK);
	assert_int_equal(strncmp(sk, "9:", 2), 0);	/* AES-256 */
	assert_string_equal(used + PGP_FPR_LEN - 16, ids[0]);
	/* pubhome holds no secret key at all: only the session key lets gpg decrypt. */
	assert_int_equal(pgp_decrypt_with(pubhome, cipher, from, to, (const char (*)[17])ids, 1, sk, &psink, &v, &err),
	    CABLES_OK);
	assert_true(spool_pread(plain, 0, got, sizeof(got), &len, NULL) == CABLES_OK);
	assert_int_equal(len, strlen(text));
	assert_memory_equal(got, text, len);
	sk[5] ^= 1;		/* a wrong session key does not decrypt */
	spool_free(plain);
	plain = spool_new("/tmp", 1 << 20, 0);
	psink.arg = plain;
	assert_int_not_equal(pgp_decrypt_with(pubhome, cipher, from, to, (const char (*)[17])ids, 1, sk, &psink, &v,
	    &err), CABLES_OK);
	spool_free(cipher);
	spool_free(plain);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_find_and_private),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_session_key_decode),
		cmocka_unit_test(test_pkesk_parse),
		cmocka_unit_test(test_decrypt_without_secret_in_gpg),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
