/* pgp_key - OpenPGP key packets and session-key arithmetic without gpg; see pgp_key.h. */
#include "autoconfig.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "pgp_key.h"
#include "pgp_packet.h"
#include "util.h"

#define MPI_BYTES_MAX 1024	/* RSA-8192 */

static const uint8_t oid_cv25519[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01 };
static const uint8_t oid_ed25519[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01 };
static const uint8_t oid_p256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };

struct rd {
	const uint8_t *p;
	size_t n, pos;
};

static bool
rd_bytes(struct rd *r, size_t k, const uint8_t **out)
{
	if (k > r->n - r->pos)
		return false;
	*out = r->p + r->pos;
	r->pos += k;
	return true;
}

static bool
rd_byte(struct rd *r, unsigned int *v)
{
	const uint8_t *b;

	if (!rd_bytes(r, 1, &b))
		return false;
	*v = b[0];
	return true;
}

/* An MPI: a two-byte bit count, then the bytes. */
static bool
rd_mpi(struct rd *r, struct pgp_mpi *m)
{
	const uint8_t *h;
	size_t bits;

	if (!rd_bytes(r, 2, &h))
		return false;
	bits = (size_t)h[0] << 8 | h[1];
	m->len = (bits + 7) / 8;
	return m->len > 0 && m->len <= MPI_BYTES_MAX && rd_bytes(r, m->len, &m->p);
}

static enum pgp_curve
curve_of(const uint8_t *oid, size_t len)
{
	if (len == sizeof(oid_cv25519) && memcmp(oid, oid_cv25519, len) == 0)
		return PGP_CURVE_25519;
	if (len == sizeof(oid_ed25519) && memcmp(oid, oid_ed25519, len) == 0)
		return PGP_CURVE_ED25519;
	if (len == sizeof(oid_p256) && memcmp(oid, oid_p256, len) == 0)
		return PGP_CURVE_P256;
	return PGP_CURVE_NONE;
}

/* Curve fields: OID, point, and for ECDH the KDF parameters. */
static cables_status
read_curve(struct rd *r, struct pgp_keypkt *k, struct cables_err *err)
{
	unsigned int oid_len, kdf_len, one;
	bool x_only;

	if (!rd_byte(r, &oid_len) || oid_len == 0 || oid_len == 0xff || !rd_bytes(r, oid_len, &k->oid) ||
	    !rd_mpi(r, &k->point))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP key packet cut short");
	k->oid_len = oid_len;
	k->curve = curve_of(k->oid, k->oid_len);
	if (k->algo == PGP_PK_ECDH && (!rd_byte(r, &kdf_len) || kdf_len != 3 || !rd_byte(r, &one) || one != 1 ||
	    !rd_byte(r, &k->kdf_hash) || !rd_byte(r, &k->kdf_cipher)))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP ECDH key without valid KDF parameters");
	if ((k->algo == PGP_PK_ECDH && k->curve != PGP_CURVE_25519 && k->curve != PGP_CURVE_P256) ||
	    (k->algo == PGP_PK_ECDSA && k->curve != PGP_CURVE_P256) ||
	    (k->algo == PGP_PK_EDDSA && k->curve != PGP_CURVE_ED25519))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP %s key on a curve other than %s",
		    k->algo == PGP_PK_ECDH ? "ECDH" : k->algo == PGP_PK_ECDSA ? "ECDSA" : "EdDSA",
		    k->algo == PGP_PK_ECDH ? "Curve25519 or P-256" : k->algo == PGP_PK_ECDSA ? "P-256" : "Ed25519");
	x_only = k->curve != PGP_CURVE_P256;
	if (x_only ? k->point.len != 33 || k->point.p[0] != 0x40 : k->point.len != 65 || k->point.p[0] != 0x04)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP key with a malformed public point");
	return CABLES_OK;
}

/* The public fields of a v4 key packet body; *end: where they end. */
static cables_status
read_public(const uint8_t *body, size_t len, struct pgp_keypkt *k, size_t *end, struct cables_err *err)
{
	struct rd r = { body, len, 0 };
	const uint8_t *created;
	unsigned int version;
	cables_status st;

	if (!rd_byte(&r, &version) || !rd_bytes(&r, 4, &created) || !rd_byte(&r, &k->algo))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP key packet cut short");
	if (version != 4)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP version %u key (only version 4 here)", version);
	switch (k->algo) {
	case PGP_PK_RSA: case PGP_PK_RSA_E: case PGP_PK_RSA_S:
		if (!rd_mpi(&r, &k->n) || !rd_mpi(&r, &k->e))
			return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP RSA key packet cut short");
		break;
	case PGP_PK_ECDH: case PGP_PK_ECDSA: case PGP_PK_EDDSA:
		if ((st = read_curve(&r, k, err)) != CABLES_OK)
			return st;
		break;
	default:
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP public-key algorithm %u is not supported "
		    "(RSA, ECDH over Curve25519 or P-256, ECDSA over P-256, EdDSA over Ed25519 are)", k->algo);
	}
	*end = r.pos;
	return CABLES_OK;
}

static void
fingerprint(const uint8_t *pub, size_t len, struct pgp_keypkt *k)
{
	uint8_t head[3] = { 0x99, (uint8_t)(len >> 8), (uint8_t)len };
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(k->fpr, 0, sizeof(k->fpr));
	if (c == NULL || EVP_DigestInit_ex(c, EVP_sha1(), NULL) != 1 || EVP_DigestUpdate(c, head, sizeof(head)) != 1 ||
	    EVP_DigestUpdate(c, pub, len) != 1 || EVP_DigestFinal_ex(c, k->fpr, NULL) != 1)
		memset(k->fpr, 0, sizeof(k->fpr));	/* matches no key ID anybody asks for */
	EVP_MD_CTX_free(c);
	hex_encode(k->fpr + 12, 8, k->keyid);
	k->keyid[16] = '\0';
}

/* The unprotected secret MPIs after the public fields, and their checksum. */
static cables_status
read_secret(const uint8_t *body, size_t len, size_t at, struct pgp_keypkt *k, struct cables_err *err)
{
	struct rd r = { body, len, at };
	const uint8_t *sum;
	unsigned int usage, want, got = 0;
	size_t from;
	bool rsa = k->algo != PGP_PK_ECDH && k->algo != PGP_PK_ECDSA && k->algo != PGP_PK_EDDSA;

	if (!rd_byte(&r, &usage))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key packet cut short");
	if (usage != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP secret key %s is protected (S2K usage %u); the "
		    "key store holds unprotected ones", k->keyid, usage);
	from = r.pos;
	if (!rd_mpi(&r, &k->d) || (rsa && (!rd_mpi(&r, &k->p) || !rd_mpi(&r, &k->q) || !rd_mpi(&r, &k->u))))
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key packet cut short");
	for (size_t i = from; i < r.pos; i++)
		got += body[i];
	if (!rd_bytes(&r, 2, &sum) || r.pos != len)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key packet of the wrong length");
	want = (unsigned int)sum[0] << 8 | sum[1];
	if ((got & 0xffff) != want)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key %s: checksum mismatch", k->keyid);
	k->secret = true;
	return CABLES_OK;
}

static cables_status
read_key(const uint8_t *body, size_t len, unsigned int tag, struct pgp_keypkt *k, struct cables_err *err)
{
	size_t end = 0;
	cables_status st;

	memset(k, 0, sizeof(*k));
	k->tag = tag;
	if ((st = read_public(body, len, k, &end, err)) != CABLES_OK)
		return st;
	fingerprint(body, end, k);
	if (tag == 5 || tag == 7)
		return read_secret(body, len, end, k, err);
	return end == len ? CABLES_OK : cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP public key packet of the wrong "
	    "length");
}

cables_status
pgp_key_find(const uint8_t *data, size_t len, const char keyid[17], struct pgp_keypkt *k, struct cables_err *err)
{
	struct pgp_packet_header h;
	struct cables_err why;
	size_t pos = 0;
	cables_status st, last = CABLES_ERR_NOTFOUND;

	why.msg[0] = '\0';
	while (pos < len) {
		if ((st = pgp_packet_header_read(data + pos, len - pos, &h, err)) != CABLES_OK)
			return st;
		if (h.kind != PGP_LENGTH_DEFINITE || h.body_len > len - pos - h.header_len)
			return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP key packet (tag %u) cut short", h.tag);
		if (h.tag == 5 || h.tag == 6 || h.tag == 7 || h.tag == 14) {
			st = read_key(data + pos + h.header_len, h.body_len, h.tag, k, &why);
			if (st == CABLES_OK && (keyid == NULL || strcmp(k->keyid, keyid) == 0))
				return CABLES_OK;
			if (st != CABLES_OK)
				last = st;	/* may be the one asked for: say why, when none matches */
		}
		pos += h.header_len + h.body_len;
	}
	memset(k, 0, sizeof(*k));
	if (last != CABLES_ERR_NOTFOUND)
		return cables_fail(err, last, "OpenPGP key %s not found; %s", keyid != NULL ? keyid : "packet", why.msg);
	return cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP key %s not found", keyid != NULL ? keyid : "packet");
}

/* A subpacket area: the issuer key ID (16, or the last 8 bytes of 33), creation time (2), key flags (27). */
static bool
subpackets(const uint8_t *p, size_t n, uint8_t issuer[8], bool *has_issuer, uint32_t *created, unsigned int *flags,
    bool *has_flags)
{
	size_t pos = 0;

	while (pos < n) {
		size_t len;
		unsigned int type;

		if (p[pos] < 192) {
			len = p[pos];
			pos += 1;
		} else if (p[pos] < 255) {
			if (n - pos < 2)
				return false;
			len = ((size_t)(p[pos] - 192) << 8) + p[pos + 1] + 192;
			pos += 2;
		} else {
			if (n - pos < 5)
				return false;
			len = (size_t)p[pos + 1] << 24 | (size_t)p[pos + 2] << 16 | (size_t)p[pos + 3] << 8 | p[pos + 4];
			pos += 5;
		}
		if (len == 0 || len > n - pos)
			return false;
		type = p[pos] & 0x7f;
		if (type == 16 && len == 9) {
			memcpy(issuer, p + pos + 1, 8);
			*has_issuer = true;
		} else if (type == 33 && len == 22 && p[pos + 1] == 4) {
			memcpy(issuer, p + pos + 2 + 12, 8);
			*has_issuer = true;
		} else if (type == 2 && len == 5 && created != NULL) {
			*created = (uint32_t)p[pos + 1] << 24 | (uint32_t)p[pos + 2] << 16 | (uint32_t)p[pos + 3] << 8 |
			    p[pos + 4];
		} else if (type == 27 && len >= 2 && flags != NULL) {
			*flags = p[pos + 1];
			*has_flags = true;
		}
		pos += len;
	}
	return true;
}

cables_status
pgp_key_usage(const uint8_t *data, size_t len, const char keyid[17], unsigned int *flags, bool *revoked,
    struct cables_err *err)
{
	struct pgp_packet_header h;
	struct pgp_keypkt k;
	uint8_t primary[8];
	bool have_primary = false, in_target = false, found = false;
	uint32_t newest = 0;
	size_t pos = 0;

	*flags = 0;
	*revoked = false;
	while (pos < len) {
		const uint8_t *b;

		if (pgp_packet_header_read(data + pos, len - pos, &h, err) != CABLES_OK)
			return CABLES_ERR_SYNTAX;
		if (h.kind != PGP_LENGTH_DEFINITE || h.body_len > len - pos - h.header_len)
			return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP key packet (tag %u) cut short", h.tag);
		b = data + pos + h.header_len;
		if (h.tag == 5 || h.tag == 6 || h.tag == 7 || h.tag == 14) {
			struct cables_err why;
			bool ok = read_key(b, h.body_len, h.tag, &k, &why) == CABLES_OK;

			if ((h.tag == 5 || h.tag == 6) && !have_primary && ok) {
				memcpy(primary, k.fpr + 12, 8);
				have_primary = true;
			}
			/* A subkey's section ends at the next key; the primary's runs over its user IDs. */
			if (h.tag == 5 || h.tag == 6 || h.tag == 7 || h.tag == 14)
				in_target = ok && strcmp(k.keyid, keyid) == 0;
			found = found || in_target;
		} else if (h.tag == 2 && in_target && have_primary && h.body_len >= 6 && b[0] == 4) {
			size_t hl = (size_t)b[4] << 8 | b[5], ul;
			uint8_t issuer[8];
			bool has_issuer = false, has_flags = false;
			unsigned int f = 0, type = b[1];
			uint32_t created = 0;

			if (6 + hl + 2 > h.body_len)
				goto next;
			ul = (size_t)b[6 + hl] << 8 | b[7 + hl];
			if (8 + hl + ul > h.body_len || !subpackets(b + 6, hl, issuer, &has_issuer, &created, &f, &has_flags) ||
			    !subpackets(b + 8 + hl, ul, issuer, &has_issuer, NULL, NULL, NULL) || !has_issuer ||
			    memcmp(issuer, primary, 8) != 0)
				goto next;
			if (type == 0x20 || type == 0x28)
				*revoked = true;
			else if (((type >= 0x10 && type <= 0x13) || type == 0x1f || type == 0x18) && has_flags &&
			    created >= newest) {
				newest = created;
				*flags = f;
			}
		}
next:
		pos += h.header_len + h.body_len;
	}
	if (!found)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP key %s not found", keyid);
	return CABLES_OK;
}

/* OSSL_PARAM_free(), the values wiped first (OpenSSL 3.0 has no OSSL_PARAM_clear_free). */
static void
params_clear_free(OSSL_PARAM *params)
{
	for (OSSL_PARAM *p = params; p != NULL && p->key != NULL; p++)
		if (p->data != NULL)
			OPENSSL_cleanse(p->data, p->data_size);
	OSSL_PARAM_free(params);
}

static BIGNUM *
bn(const struct pgp_mpi *m)
{
	return BN_bin2bn(m->p, (int)m->len, NULL);
}

/* RSA from n, e, d, p, q; the CRT values are OpenSSL's (iqmp = q^-1 mod p, where OpenPGP keeps p^-1 mod q). */
static EVP_PKEY *
rsa_private(const struct pgp_keypkt *k, struct cables_err *err)
{
	BIGNUM *n = bn(&k->n), *e = bn(&k->e), *d = bn(&k->d), *p = bn(&k->p), *q = bn(&k->q);
	BIGNUM *dp = BN_new(), *dq = BN_new(), *qinv = NULL, *t = BN_new();
	BN_CTX *bctx = BN_CTX_new();
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (n == NULL || e == NULL || d == NULL || p == NULL || q == NULL || dp == NULL || dq == NULL || t == NULL ||
	    bctx == NULL || bld == NULL)
		goto out;
	if (!BN_mul(t, p, q, bctx) || BN_cmp(t, n) != 0) {
		cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP RSA secret key %s does not match its modulus", k->keyid);
		goto done;
	}
	if (!BN_sub(t, p, BN_value_one()) || !BN_mod(dp, d, t, bctx) || !BN_sub(t, q, BN_value_one()) ||
	    !BN_mod(dq, d, t, bctx) || (qinv = BN_mod_inverse(NULL, q, p, bctx)) == NULL)
		goto out;
	if (!OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_D, d) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR1, p) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_FACTOR2, q) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT1, dp) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_EXPONENT2, dq) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, qinv) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) <= 0)
		key = NULL;
out:
	if (key == NULL)
		cables_fail_ssl(err, CABLES_ERR_CRYPTO, "OpenPGP RSA secret key %s", k->keyid);
done:
	params_clear_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_CTX_free(bctx);
	BN_free(n);
	BN_free(e);
	BN_clear_free(d);
	BN_clear_free(p);
	BN_clear_free(q);
	BN_clear_free(dp);
	BN_clear_free(dq);
	BN_clear_free(qinv);
	BN_clear_free(t);
	return key;
}

/* X25519 or Ed25519 from the secret MPI: front-padded to 32 bytes; reversed for X25519 (gpg's byte order). */
static EVP_PKEY *
raw_private(const struct pgp_keypkt *k, struct cables_err *err)
{
	uint8_t raw[32], pub[32];
	size_t publen = sizeof(pub);
	bool x = k->curve == PGP_CURVE_25519;
	EVP_PKEY *key = NULL;

	if (k->d.len > 32)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key %s: scalar longer than 32 bytes",
		    k->keyid), NULL;
	memset(raw, 0, sizeof(raw));
	memcpy(raw + 32 - k->d.len, k->d.p, k->d.len);
	if (x)
		for (size_t i = 0; i < 16; i++) {
			uint8_t t = raw[i];

			raw[i] = raw[31 - i];
			raw[31 - i] = t;
		}
	key = EVP_PKEY_new_raw_private_key(x ? EVP_PKEY_X25519 : EVP_PKEY_ED25519, NULL, raw, sizeof(raw));
	OPENSSL_cleanse(raw, sizeof(raw));
	if (key == NULL)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "OpenPGP secret key %s", k->keyid), NULL;
	if (EVP_PKEY_get_raw_public_key(key, pub, &publen) != 1 || publen != 32 || memcmp(pub, k->point.p + 1, 32) != 0) {
		EVP_PKEY_free(key);
		ERR_clear_error();
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key %s does not match its public key",
		    k->keyid), NULL;
	}
	return key;
}

static EVP_PKEY *
p256_private(const struct pgp_keypkt *k, struct cables_err *err)
{
	BIGNUM *d = bn(&k->d);
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL, *check = NULL;
	EVP_PKEY *key = NULL;

	if (d == NULL || bld == NULL || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, d) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->point.p, k->point.len) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params) <= 0)
		cables_fail_ssl(err, CABLES_ERR_CRYPTO, "OpenPGP P-256 secret key %s", k->keyid);
	else if ((check = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL || EVP_PKEY_pairwise_check(check) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
		ERR_clear_error();
		cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP secret key %s does not match its public key", k->keyid);
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	params_clear_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(d);
	return key;
}

EVP_PKEY *
pgp_key_private(const struct pgp_keypkt *k, struct cables_err *err)
{
	if (!k->secret)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "OpenPGP key %s: no secret part", k->keyid), NULL;
	switch (k->curve) {
	case PGP_CURVE_NONE: return rsa_private(k, err);
	case PGP_CURVE_P256: return p256_private(k, err);
	default: return raw_private(k, err);
	}
}

static const EVP_MD *
kdf_md(unsigned int id)
{
	switch (id) {
	case 8: return EVP_sha256();
	case 9: return EVP_sha384();
	case 10: return EVP_sha512();
	default: return NULL;
	}
}

static const EVP_CIPHER *
kek_cipher(unsigned int id)
{
	switch (id) {
	case 7: return EVP_aes_128_wrap();
	case 8: return EVP_aes_192_wrap();
	case 9: return EVP_aes_256_wrap();
	default: return NULL;
	}
}

/* RFC 6637 section 7: Hash(00 00 00 01 || ZZ || Param), Param naming the curve, KDF and recipient. */
static bool
kdf(const struct pgp_keypkt *k, const EVP_MD *md, const uint8_t *zz, size_t zzlen, uint8_t out[EVP_MAX_MD_SIZE])
{
	static const uint8_t counter[4] = { 0, 0, 0, 1 };
	uint8_t head[2] = { (uint8_t)k->oid_len, PGP_PK_ECDH };
	uint8_t kdfp[4] = { 3, 1, (uint8_t)k->kdf_hash, (uint8_t)k->kdf_cipher };
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = c != NULL && EVP_DigestInit_ex(c, md, NULL) == 1 && EVP_DigestUpdate(c, counter, 4) == 1 &&
	    EVP_DigestUpdate(c, zz, zzlen) == 1 && EVP_DigestUpdate(c, head, 1) == 1 &&
	    EVP_DigestUpdate(c, k->oid, k->oid_len) == 1 && EVP_DigestUpdate(c, head + 1, 1) == 1 &&
	    EVP_DigestUpdate(c, kdfp, 4) == 1 && EVP_DigestUpdate(c, "Anonymous Sender    ", 20) == 1 &&
	    EVP_DigestUpdate(c, k->fpr, 20) == 1 && EVP_DigestFinal_ex(c, out, NULL) == 1;

	EVP_MD_CTX_free(c);
	return ok;
}

cables_status
pgp_ecdh_unwrap(const struct pgp_keypkt *k, const uint8_t *shared, size_t shared_len, const uint8_t *wrapped,
    size_t wrapped_len, uint8_t *m, size_t *mlen, struct cables_err *err)
{
	const EVP_MD *md = kdf_md(k->kdf_hash);
	const EVP_CIPHER *cipher = kek_cipher(k->kdf_cipher);
	uint8_t kek[EVP_MAX_MD_SIZE];
	EVP_CIPHER_CTX *c = NULL;
	int n1 = 0, n2 = 0;
	cables_status st = CABLES_OK;

	*mlen = 0;
	if (k->algo != PGP_PK_ECDH || md == NULL || cipher == NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP ECDH key %s: KDF hash %u or key wrap %u is not "
		    "supported (SHA-256/384/512, AES)", k->keyid, k->kdf_hash, k->kdf_cipher);
	if (wrapped_len < 24 || wrapped_len % 8 != 0 || wrapped_len > 64)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP ECDH: wrapped session key of %zu bytes",
		    wrapped_len);
	if ((size_t)EVP_MD_get_size(md) < (size_t)EVP_CIPHER_get_key_length(cipher))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP ECDH key %s: KDF hash shorter than the key wrap "
		    "key", k->keyid);
	if (!kdf(k, md, shared, shared_len, kek) || (c = EVP_CIPHER_CTX_new()) == NULL)
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "OpenPGP ECDH KDF");
	else {
		EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		if (EVP_DecryptInit_ex(c, cipher, NULL, kek, NULL) != 1 ||
		    EVP_DecryptUpdate(c, m, &n1, wrapped, (int)wrapped_len) != 1 || EVP_DecryptFinal_ex(c, m + n1, &n2) != 1)
			st = cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP ECDH: the session key does not unwrap "
			    "(not encrypted to this key, or damaged)");
		else
			*mlen = (size_t)(n1 + n2);
	}
	EVP_CIPHER_CTX_free(c);
	OPENSSL_cleanse(kek, sizeof(kek));
	ERR_clear_error();
	return st;
}

/* The key length of an OpenPGP symmetric algorithm gpg decrypts, or 0. */
static size_t
sym_key_len(unsigned int algo)
{
	switch (algo) {
	case 2: return 24;	/* TripleDES */
	case 3: return 16;	/* CAST5 */
	case 4: return 16;	/* Blowfish */
	case 7: case 11: return 16;	/* AES-128, Camellia-128 */
	case 8: case 12: return 24;	/* AES-192, Camellia-192 */
	case 9: case 10: case 13: return 32;	/* AES-256, Twofish, Camellia-256 */
	default: return 0;
	}
}

cables_status
pgp_session_key_decode(const uint8_t *m, size_t mlen, bool padded, char out[PGP_SESSION_KEY_STR],
    struct cables_err *err)
{
	size_t len = mlen, klen;
	unsigned int sum = 0;
	int w;

	out[0] = '\0';
	if (padded) {
		unsigned int pad = len > 0 ? m[len - 1] : 0;

		if (pad == 0 || pad > 8 || pad > len)
			return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: the session key does not decode");
		for (size_t i = len - pad; i < len; i++)
			if (m[i] != pad)
				return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: the session key does not decode");
		len -= pad;
	}
	if (len < 3 || (klen = sym_key_len(m[0])) == 0 || len != 1 + klen + 2)
		return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: the session key does not decode");
	for (size_t i = 1; i <= klen; i++)
		sum += m[i];
	if ((sum & 0xffff) != ((unsigned int)m[1 + klen] << 8 | m[2 + klen]))
		return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: the session key does not decode");
	w = snprintf(out, PGP_SESSION_KEY_STR, "%u:", m[0]);
	hex_encode(m + 1, klen, out + w);
	out[w + 2 * klen] = '\0';
	return CABLES_OK;
}
