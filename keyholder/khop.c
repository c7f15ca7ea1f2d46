/* khop - the keyholder's private-key operations; see khop.h. */
#define OPENSSL_SUPPRESS_DEPRECATED	/* RSA_padding_check_PKCS1_OAEP_mgf1: the OAEP check has no EVP form */
#include "autoconfig.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>

#include "khop.h"
#include "pgp_key.h"
#include "pgp_sign.h"

static enum kh_status
failed(struct cables_err *err, const char *what)
{
	cables_fail_ssl(err, CABLES_ERR_CRYPTO, "%s", what);
	return KH_FAILED;
}

/* EVP_PKEY_decrypt of r->data with padding; the result into out. */
static enum kh_status
rsa_decrypt(EVP_PKEY *key, const struct kh_request *r, int padding, struct kh_reply *out, struct cables_err *err)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	size_t len = sizeof(out->data);
	enum kh_status st = KH_OK;

	if ((size_t)EVP_PKEY_get_size(key) != r->len)
		st = failed(err, "the block is not the size of the modulus");
	else if (ctx == NULL || EVP_PKEY_decrypt_init(ctx) <= 0 || EVP_PKEY_CTX_set_rsa_padding(ctx, padding) <= 0 ||
	    EVP_PKEY_decrypt(ctx, out->data, &len, r->data, r->len) <= 0)
		st = failed(err, "RSA decryption failed");
	else
		out->len = len;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return st;
}

/* Is block (the modulus's length) an OAEP encoding, empty label, for one of the digests we accept? */
static bool
oaep_valid(const uint8_t *block, size_t len)
{
	const EVP_MD *mds[] = { EVP_sha1(), EVP_sha256(), EVP_sha384(), EVP_sha512() };
	uint8_t to[KH_DATA_MAX];
	bool ok = false;

	for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]) && !ok; i++)
		for (size_t j = 0; j < sizeof(mds) / sizeof(mds[0]) && !ok; j++)
			ok = RSA_padding_check_PKCS1_OAEP_mgf1(to, (int)sizeof(to), block, (int)len, (int)len, NULL, 0,
			    mds[i], mds[j]) > 0;
	OPENSSL_cleanse(to, sizeof(to));
	ERR_clear_error();
	return ok;
}

/* X25519 with a peer's 32-byte u coordinate (an OpenPGP ECDH key on Curve25519). */
static enum kh_status
x25519(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *dctx = NULL;
	size_t len = sizeof(out->data);
	enum kh_status st = KH_OK;

	if (r->len != 32) {
		cables_fail(err, CABLES_ERR_ARG, "an X25519 peer key of %zu bytes (not 32)", r->len);
		return KH_FAILED;
	}
	/* OpenSSL refuses an all-zero result: a small-order peer point gets no answer. */
	if ((peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, r->data, r->len)) == NULL ||
	    (dctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL || EVP_PKEY_derive_init(dctx) <= 0 ||
	    EVP_PKEY_derive_set_peer(dctx, peer) <= 0 || EVP_PKEY_derive(dctx, out->data, &len) <= 0 || len != 32)
		st = failed(err, "X25519 failed (a small-order peer point?)");
	else
		out->len = len;
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(dctx);
	ERR_clear_error();
	return st;
}

/* Pure Ed25519 over the digest's bytes, as legacy OpenPGP EdDSA signs the hash: r || s. */
static enum kh_status
ed25519_sign(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	EVP_MD_CTX *c;
	size_t len = sizeof(out->data);
	enum kh_status st = KH_OK;

	if (r->len != 32 && r->len != 48 && r->len != 64) {
		cables_fail(err, CABLES_ERR_ARG, "a %zu-byte digest is not one Ed25519 signs here", r->len);
		return KH_FAILED;
	}
	if ((c = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(c, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(c, out->data, &len, r->data, r->len) != 1 || len != 64)
		st = failed(err, "Ed25519 signing failed");
	else
		out->len = len;
	EVP_MD_CTX_free(c);
	ERR_clear_error();
	return st;
}

bool
khop_cofactor_one(EVP_PKEY *key)
{
	BIGNUM *h = NULL;
	bool one = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_COFACTOR, &h) == 1 && BN_is_one(h);

	BN_free(h);
	return one;
}

/*
 * ECDH on a curve of cofactor 1 with the key's own EC_KEY and group:
 * decoding the point into the group checks that it is on the curve (an
 * invalid-curve point would leak the key to whoever asks, a compromised
 * milter), infinity is refused, and every other point on such a curve is of
 * the group's order.  The EVP way below builds a new group and key for each
 * peer point, which made this operation cost twice its multiplication.
 */
static enum kh_status
ecdh_cofactor_one(const EC_KEY *ec, const EC_GROUP *g, const struct kh_request *r, struct kh_reply *out,
    struct cables_err *err)
{
	EC_POINT *p;
	size_t len = ((size_t)EC_GROUP_get_degree(g) + 7) / 8;
	int n;
	enum kh_status st = KH_FAILED;

	if (len == 0 || len > sizeof(out->data))
		return failed(err, "the key's curve is too large");
	if ((p = EC_POINT_new(g)) == NULL || EC_POINT_oct2point(g, p, r->data, r->len, NULL) != 1)
		st = failed(err, "the peer point is not on the curve");
	else if (EC_POINT_is_at_infinity(g, p))
		st = failed(err, "the peer point is not valid");
	else if ((n = ECDH_compute_key(out->data, len, p, ec, NULL)) <= 0 || (size_t)n != len)
		st = failed(err, "ECDH failed");
	else {
		out->len = len;
		st = KH_OK;
	}
	EC_POINT_free(p);
	ERR_clear_error();
	return st;
}

static enum kh_status
ecdh(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	const EC_KEY *ec = EVP_PKEY_get0_EC_KEY(key);
	const EC_GROUP *g = ec != NULL ? EC_KEY_get0_group(ec) : NULL;
	char group[64];
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *pctx = NULL, *cctx = NULL, *dctx = NULL;
	EVP_PKEY *peer = NULL;
	size_t len = sizeof(out->data);
	enum kh_status st = KH_FAILED;

	if (g != NULL && EC_GROUP_get0_cofactor(g) != NULL && BN_is_one(EC_GROUP_get0_cofactor(g)))
		return ecdh_cofactor_one(ec, g, r, out, err);
	ERR_clear_error();
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
		return failed(err, "the key has no named curve");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)r->data, r->len);
	params[2] = OSSL_PARAM_construct_end();
	/*
	 * fromdata decodes the point: one off the curve fails (an invalid-curve
	 * point would leak the key to whoever asks, a compromised milter), and
	 * the quick check says so again whatever provider decoded it; curves
	 * of cofactor 1 went the way above, so the full check of
	 * set_peer_ex(…, 1), a second scalar multiplication, is needed here.
	 */
	if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(pctx) <= 0 ||
	    EVP_PKEY_fromdata(pctx, &peer, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		st = failed(err, "the peer point is not on the curve");
	else if ((cctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL)) == NULL || EVP_PKEY_public_check_quick(cctx) != 1)
		st = failed(err, "the peer point is not valid");
	else if ((dctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL || EVP_PKEY_derive_init(dctx) <= 0 ||
	    EVP_PKEY_derive_set_peer_ex(dctx, peer, 1) <= 0)
		st = failed(err, "the peer point is not valid");
	else if (EVP_PKEY_derive(dctx, out->data, &len) <= 0)
		st = failed(err, "ECDH failed");
	else {
		out->len = len;
		st = KH_OK;
	}
	EVP_PKEY_free(peer);
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_CTX_free(dctx);
	ERR_clear_error();
	return st;
}

static const EVP_MD *
rsa_digest(int nid)
{
	switch (nid) {
	case NID_sha256: return EVP_sha256();
	case NID_sha384: return EVP_sha384();
	case NID_sha512: return EVP_sha512();
	default: return NULL;
	}
}

static enum kh_status
sign(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	bool rsa = EVP_PKEY_is_a(key, "RSA");
	const EVP_MD *md = rsa ? rsa_digest(r->md_nid) : NULL;
	EVP_PKEY_CTX *ctx;
	size_t len = sizeof(out->data);
	enum kh_status st = KH_OK;

	if (rsa && (md == NULL || (size_t)EVP_MD_get_size(md) != r->len)) {
		cables_fail(err, CABLES_ERR_ARG, "digest %d of %zu bytes is not one RSA signs here", r->md_nid, r->len);
		return KH_FAILED;
	}
	if (!rsa && r->len != 20 && r->len != 28 && r->len != 32 && r->len != 48 && r->len != 64) {
		cables_fail(err, CABLES_ERR_ARG, "a %zu-byte digest is not one ECDSA signs here", r->len);
		return KH_FAILED;
	}
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 ||
	    (rsa && (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, md) <= 0)) ||
	    EVP_PKEY_sign(ctx, out->data, &len, r->data, r->len) <= 0)
		st = failed(err, "signing failed");
	else
		out->len = len;
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return st;
}

/*
 * OpenPGP: the request is the content's hash state and the signature's
 * hashed part (pgp_sign.h), never a bare digest; the digest is finished
 * here, so that only a document signature by this (sub)key, made now,
 * can come out (no certification, key binding or revocation).
 */
static enum kh_status
pgp_sign(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	struct kh_request d;
	char keyid[17];
	unsigned int algo;
	bool rsa = EVP_PKEY_is_a(key, "RSA"), ed = EVP_PKEY_is_a(key, "ED25519");
	enum kh_status st;

	memcpy(keyid, r->fingerprint + 40, 16);
	keyid[16] = '\0';
	memset(&d, 0, sizeof(d));
	d.op = r->op;
	d.key = r->key;
	d.md_nid = NID_sha256;
	memcpy(d.fingerprint, r->fingerprint, sizeof(d.fingerprint));
	if (pgp_sign_request_digest(r->data, r->len, keyid, time(NULL), d.data, &algo, err) != CABLES_OK)
		return KH_FAILED;
	if (rsa ? algo != PGP_PK_RSA && algo != PGP_PK_RSA_S : algo != (ed ? PGP_PK_EDDSA : PGP_PK_ECDSA)) {
		cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signature naming algorithm %u for a %s key", algo,
		    EVP_PKEY_get0_type_name(key));
		return KH_FAILED;
	}
	d.len = 32;
	st = ed ? ed25519_sign(key, &d, out, err) : sign(key, &d, out, err);
	OPENSSL_cleanse(&d, sizeof(d));
	return st;
}

enum kh_status
khop_pgp_ecdh_unwrap(EVP_PKEY *key, const struct pgp_keypkt *k, const struct kh_request *r, struct kh_reply *out,
    struct cables_err *err)
{
	struct kh_request dh;
	struct kh_reply shared;
	char decoded[PGP_SESSION_KEY_STR];
	size_t plen = k->curve == PGP_CURVE_25519 ? 32 : 65, mlen = 0;
	enum kh_status st;

	memset(out, 0, sizeof(*out));
	if (r->len <= plen || r->len - plen > KHOP_KEY_MAX) {
		cables_fail(err, CABLES_ERR_ARG, "ecdh-unwrap: %zu bytes for a %zu-byte ephemeral key", r->len, plen);
		out->status = KH_FAILED;
		return KH_FAILED;
	}
	memcpy(&dh, r, sizeof(dh));
	dh.op = KH_OP_ECDH;
	dh.len = plen;
	if ((st = khop_perform(key, &dh, &shared, err)) == KH_OK &&
	    (pgp_ecdh_unwrap(k, shared.data, shared.len, r->data + plen, r->len - plen, out->data, &mlen, err) !=
	    CABLES_OK || pgp_session_key_decode(out->data, mlen, true, decoded, err) != CABLES_OK))
		st = KH_FAILED;
	if (st == KH_OK)
		out->len = mlen;
	else
		OPENSSL_cleanse(out, sizeof(*out));
	out->status = st;
	OPENSSL_cleanse(&dh, sizeof(dh));
	OPENSSL_cleanse(&shared, sizeof(shared));
	OPENSSL_cleanse(decoded, sizeof(decoded));
	return st;
}

/* HMAC-SHA-256 under kdk of label || data. */
static bool
substitute_prf(const uint8_t kdk[32], const char *label, const struct kh_request *r, uint8_t out[32])
{
	uint8_t msg[16 + KH_DATA_MAX];
	size_t n = strlen(label);
	unsigned int len = 32;
	bool ok;

	memcpy(msg, label, n);
	memcpy(msg + n, r->data, r->len);
	ok = HMAC(EVP_sha256(), kdk, 32, msg, n + r->len, out, &len) != NULL && len == 32;
	OPENSSL_cleanse(msg, sizeof(msg));
	return ok;
}

enum kh_status
khop_substitute(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	uint8_t d[KH_DATA_MAX], kdk[32], len[32], m[64];
	BIGNUM *bn = NULL;
	int size = EVP_PKEY_get_size(key);
	bool ok;

	memset(out, 0, sizeof(*out));
	/*
	 * The key derivation key: SHA-256 of the private exponent, so the
	 * answer to a block is the same in every run, as for a block that
	 * decrypts.  (No fallback: an RSA key whose d cannot be read gets
	 * "failed", which the keyholder's own keys never do.)
	 */
	ok = size > 0 && (size_t)size <= sizeof(d) && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &bn) == 1 &&
	    BN_bn2binpad(bn, d, size) == size && SHA256(d, (size_t)size, kdk) != NULL;
	BN_clear_free(bn);
	OPENSSL_cleanse(d, sizeof(d));
	ok = ok && substitute_prf(kdk, "length", r, len) && substitute_prf(kdk, "message 1", r, m) &&
	    substitute_prf(kdk, "message 2", r, m + 32);
	if (ok) {
		out->len = (((size_t)len[0] << 8) | len[1]) % (KHOP_KEY_MAX + 1);
		memcpy(out->data, m, out->len);
		out->status = KH_OK;
	}
	OPENSSL_cleanse(kdk, sizeof(kdk));
	OPENSSL_cleanse(m, sizeof(m));
	ERR_clear_error();
	if (!ok) {
		OPENSSL_cleanse(out, sizeof(*out));
		return failed(err, "no substitute key could be made");
	}
	return KH_OK;
}

enum kh_status
khop_perform(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err)
{
	bool rsa = EVP_PKEY_is_a(key, "RSA"), ec = EVP_PKEY_is_a(key, "EC");
	bool x = EVP_PKEY_is_a(key, "X25519"), ed = EVP_PKEY_is_a(key, "ED25519");
	enum kh_status st;

	memset(out, 0, sizeof(*out));
	if ((r->op == KH_OP_RSA_DECRYPT || r->op == KH_OP_RSA_DECRYPT_OAEP) ? !rsa :
	    r->op == KH_OP_ECDH ? !(ec || x) : !(rsa || ec || ed)) {
		cables_fail(err, CABLES_ERR_UNUSABLE, "%s does not suit a %s key", kh_op_name(r->op),
		    EVP_PKEY_get0_type_name(key));
		return KH_FAILED;
	}
	switch (r->op) {
	case KH_OP_RSA_DECRYPT:
		st = rsa_decrypt(key, r, RSA_PKCS1_PADDING, out, err);
		if (st == KH_OK && out->len > KHOP_KEY_MAX) {
			st = KH_FAILED;
			cables_fail(err, CABLES_ERR_CRYPTO, "the decrypted content is longer than a content key");
		}
		break;
	case KH_OP_RSA_DECRYPT_OAEP:
		st = rsa_decrypt(key, r, RSA_NO_PADDING, out, err);
		if (st == KH_OK && !oaep_valid(out->data, out->len)) {
			st = KH_FAILED;
			cables_fail(err, CABLES_ERR_CRYPTO, "the block is not an OAEP encoding");
		}
		break;
	case KH_OP_ECDH:
		st = x ? x25519(key, r, out, err) : ecdh(key, r, out, err);
		break;
	default:
		if (r->key == KH_KEY_PGP)
			st = pgp_sign(key, r, out, err);
		else
			st = ed ? ed25519_sign(key, r, out, err) : sign(key, r, out, err);
		break;
	}
	if (st != KH_OK) {
		OPENSSL_cleanse(out, sizeof(*out));
		out->status = st;
	}
	return st;
}
