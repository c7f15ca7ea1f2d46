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
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "helpers.h"
#include "khop.h"
#include "khpgp.h"
#include "pgp.h"
#include "pgp_key.h"
#include "pgp_packet.h"
#include "pgp_sign.h"
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
	if (got.op == KH_OP_PGP_ECDH_UNWRAP)
		khop_pgp_ecdh_unwrap(key, &k, &got, rep, err);
	else
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
	struct pgp_encrypt_opts o = { false, NULL, false };
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

/* The last request fake_call() saw. */
static struct kh_request last_req;

static cables_status
capture_call(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	last_req = *req;
	return fake_call(arg, req, rep, err);
}

/*
 * Signing through the keyholder: the milter sends the content's hash state
 * and the hashed part, never a bare digest, and the keyholder finishes the
 * digest itself; gpg verifies the result.  What a compromised milter might
 * send instead is refused: a bare SHA-256 digest (it could be a subkey
 * binding's or a certification's), a hashed part of a certification (0x13),
 * a subkey binding (0x18) or a key revocation (0x20), another issuer, a
 * creation time a day away, a non-zero pad.
 */
static void
test_sign_only_documents(void **state)
{
	static const char text[] = "Content-Type: text/plain\r\n\r\nsigned by the keyholder, finished there\r\n";
	struct kh_transport t = { capture_call, NULL };
	struct spool *sp = spool_new("/tmp", 1 << 20, 0);
	struct entity_src src;
	struct pgp_signed out;
	struct pgp_verify v;
	struct pgp_keypkt k;
	struct kh_request r;
	struct kh_reply rep;
	struct cables_err err;
	EVP_PKEY *key;
	off_t from, to, sfrom, sto;
	const char *b, *e;
	uint8_t *h;
	uint32_t when;

	assert_int_not_equal(info.sign_keyid[0], '\0');
	entity_src_init(&src);
	entity_src_mem(&src, text, strlen(text));
	assert_int_equal(khpgp_sign(&t, "alice@a.test", fpr, (const uint8_t *)pub.data, pub.len, info.sign_keyid,
	    time(NULL), &src, &out, &err), CABLES_OK);
	assert_int_equal(last_req.op, KH_OP_SIGN);
	assert_int_equal(last_req.len, PGP_SIGN_REQ_LEN);
	/* The signed entity and the signature, as gpg sees them in multipart/signed. */
	assert_int_equal(spool_append(sp, text, strlen(text), NULL), CABLES_OK);
	from = 0;
	to = (off_t)strlen(text);
	assert_non_null(b = memmem(out.epilogue.data, out.epilogue.len, "-----BEGIN PGP SIGNATURE-----", 29));
	assert_non_null(e = memmem(out.epilogue.data, out.epilogue.len, "-----END PGP SIGNATURE-----\r\n", 29));
	sfrom = to + (b - out.epilogue.data);
	sto = to + (e + 29 - out.epilogue.data);
	assert_int_equal(spool_append(sp, out.epilogue.data, out.epilogue.len, NULL), CABLES_OK);
	memset(&v, 0, sizeof(v));
	assert_int_equal(pgp_verify_detached(pubhome, sp, from, to, sfrom, sto, &v, &err), CABLES_OK);
	assert_true(v.signed_);
	assert_true(v.good);
	assert_string_equal(v.fpr + PGP_FPR_LEN - 16, info.sign_keyid);
	pgp_signed_release(&out);
	spool_free(sp);

	assert_int_equal(pgp_key_find((const uint8_t *)sec.data, sec.len, info.sign_keyid, &k, &err), CABLES_OK);
	assert_non_null(key = pgp_key_private(&k, &err));
	r = last_req;
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_OK);
	h = r.data + PGP_SIGN_REQ_LEN - PGP_SIGN_HASHED_LEN;
	r.len = 32;		/* a bare digest */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	assert_int_equal(rep.len, 0);
	r = last_req;
	h[1] = 0x13;		/* a certification */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	h[1] = 0x18;		/* a subkey binding */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	h[1] = 0x20;		/* a key revocation */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	r = last_req;
	h[44] ^= 1;		/* another issuer key ID */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	r = last_req;
	when = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 | (uint32_t)h[10] << 8 | h[11];
	when += 86400;		/* created tomorrow */
	h[8] = (uint8_t)(when >> 24), h[9] = (uint8_t)(when >> 16), h[10] = (uint8_t)(when >> 8), h[11] = (uint8_t)when;
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	r = last_req;
	r.data[40] = 64;	/* a tail as long as a block */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	r = last_req;
	r.data[41 + 63] = 1;	/* non-zero padding after the tail */
	assert_int_equal(khop_perform(key, &r, &rep, &err), KH_FAILED);
	EVP_PKEY_free(key);
}

/* A keyholder that refuses the padding, and one that answers a block whose session key is damaged. */
static cables_status
bad_padding_call(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	memset(rep, 0, sizeof(*rep));
	rep->status = KH_FAILED;
	return CABLES_OK;
}

static cables_status
bad_checksum_call(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err)
{
	memset(rep, 0, sizeof(*rep));
	rep->status = KH_OK;
	rep->data[0] = 9;		/* AES-256, a key, a checksum that does not match */
	memset(rep->data + 1, 0x41, 32);
	rep->data[33] = 0, rep->data[34] = 1;
	rep->len = 35;
	return CABLES_OK;
}

/*
 * RSA: bad PKCS#1 padding (the keyholder fails) and good padding with a bad
 * session key give the same status and the same reason, which goes into the
 * delivered copy's X-Cables: no padding oracle for whoever reads it.
 */
static void
test_rsa_failures_look_alike(void **state)
{
	static const char text[] = "Content-Type: text/plain\r\n\r\nx\r\n";
	struct kh_transport pad = { bad_padding_call, NULL }, sum = { bad_checksum_call, NULL };
	struct spool *cipher = spool_new("/tmp", 1 << 20, 0);
	struct pgp_encrypt_opts o = { false, NULL, false };
	struct entity_src src;
	struct byte_sink sink;
	struct buf out, rpub;
	struct cables_err e1, e2;
	char rhome[64], rfpr[PGP_FPR_LEN + 1], ct[160], ids[4][17], sk[PGP_SESSION_KEY_STR], used[PGP_FPR_LEN + 1];
	const char *fprs[1] = { rfpr }, *b, *e;
	uint8_t body[PGP_PKESK_MAX];
	size_t n, len;

	buf_init(&out);
	buf_init(&rpub);
	sink.write = buf_write;
	sink.arg = &out;
	assert_int_equal(pgp_temp_home("/tmp", rhome, &e1), CABLES_OK);
	assert_int_equal(pgp_generate(rhome, "dave@a.test", PGP_ALGO_RSA3072, 0, rfpr, &e1), CABLES_OK);
	assert_int_equal(pgp_export(rhome, rfpr, false, false, &rpub, &e1), CABLES_OK);
	entity_src_init(&src);
	entity_src_mem(&src, text, strlen(text));
	assert_int_equal(pgp_encrypt(rhome, &o, fprs, 1, &src, &sink, ct, &e1), CABLES_OK);
	assert_non_null(b = memmem(out.data, out.len, "-----BEGIN PGP MESSAGE-----", 27));
	assert_non_null(e = memmem(out.data, out.len, "-----END PGP MESSAGE-----\r\n", 27));
	assert_int_equal(spool_append(cipher, out.data, out.len, NULL), CABLES_OK);
	assert_int_equal(pgp_message_keyids(cipher, b - out.data, e + 27 - out.data, ids, 4, &n, &e1), CABLES_OK);
	assert_int_equal(pgp_message_pkesk(cipher, b - out.data, e + 27 - out.data, ids[0], body, &len, &e1), CABLES_OK);
	for (char *p = rfpr; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	assert_int_equal(khpgp_session_key(&pad, "dave@a.test", rfpr, (const uint8_t *)rpub.data, rpub.len, body, len,
	    sk, used, &e1), CABLES_ERR_CRYPTO);
	assert_int_equal(khpgp_session_key(&sum, "dave@a.test", rfpr, (const uint8_t *)rpub.data, rpub.len, body, len,
	    sk, used, &e2), CABLES_ERR_CRYPTO);
	assert_string_equal(e1.msg, e2.msg);
	spool_free(cipher);
	buf_release(&out);
	buf_release(&rpub);
	pgp_temp_home_remove(rhome);
}

/* Key flags from the key's own signatures: the Ed25519 primary certifies and signs, the Curve25519 subkey encrypts. */
static void
test_key_usage(void **state)
{
	char id0[17], id1[17];
	unsigned int flags;
	bool revoked;

	keyid_of(0, id0);
	keyid_of(1, id1);
	for (int i = 0; i < 2; i++) {
		const struct buf *b = i == 0 ? &sec : &pub;

		assert_int_equal(pgp_key_usage((const uint8_t *)b->data, b->len, id0, &flags, &revoked, NULL), CABLES_OK);
		assert_int_equal(flags, PGP_FLAG_CERTIFY | PGP_FLAG_SIGN);
		assert_false(revoked);
		assert_int_equal(pgp_key_usage((const uint8_t *)b->data, b->len, id1, &flags, &revoked, NULL), CABLES_OK);
		assert_int_equal(flags & PGP_FLAG_ENCRYPT, PGP_FLAG_ENCRYPT);
		assert_int_equal(flags & (PGP_FLAG_CERTIFY | PGP_FLAG_SIGN), 0);
		assert_false(revoked);
		assert_int_equal(pgp_key_usage((const uint8_t *)b->data, b->len, "0102030405060708", &flags, &revoked,
		    NULL), CABLES_ERR_NOTFOUND);
	}
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
		cmocka_unit_test(test_sign_only_documents),
		cmocka_unit_test(test_rsa_failures_look_alike),
		cmocka_unit_test(test_key_usage),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
