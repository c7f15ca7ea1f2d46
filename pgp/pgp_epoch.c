/* pgp_epoch - OpenPGP epoch subkeys made and checked without gpg; see pgp_epoch.h. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "pgp_epoch.h"
#include "pgp_packet.h"
#include "pgp_sign.h"

#define SIG_SUBKEY_BINDING 0x18
#define HASH_SHA256 8
#define SUB_CREATED 2
#define SUB_KEY_EXPIRES 9
#define SUB_ISSUER 16
#define SUB_KEY_FLAGS 27
#define SUB_ISSUER_FPR 33
#define CREATED_SKEW 300	/* a subkey made this far ahead of our clock is still taken */

static const uint8_t cv25519_oid[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01 };

/* A new-format packet header for a body of len bytes. */
static void
put_header(struct buf *b, unsigned int tag, size_t len)
{
	uint8_t h[6];

	h[0] = (uint8_t)(0xc0 | tag);
	if (len < 192) {
		h[1] = (uint8_t)len;
		buf_append(b, h, 2);
	} else if (len < 8384) {
		h[1] = (uint8_t)(((len - 192) >> 8) + 192);
		h[2] = (uint8_t)(len - 192);
		buf_append(b, h, 3);
	} else {
		h[1] = 0xff;
		pgp_be32_put(h + 2, (uint32_t)len);
		buf_append(b, h, 6);
	}
}

struct pkt {
	unsigned int tag;
	const uint8_t *start;	/* the header */
	size_t total;		/* header and body */
	const uint8_t *body;
	size_t len;
};

/* The packet at data[*pos], definite length only; *pos moves past it. */
static cables_status
next_packet(const uint8_t *data, size_t len, size_t *pos, struct pkt *p, struct cables_err *err)
{
	struct pgp_packet_header h;
	cables_status st;

	if ((st = pgp_packet_header_read(data + *pos, len - *pos, &h, err)) != CABLES_OK)
		return st;
	if (h.kind != PGP_LENGTH_DEFINITE || h.body_len > len - *pos - h.header_len)
		return cables_fail(err, CABLES_ERR_SYNTAX, "OpenPGP packet (tag %u) cut short", h.tag);
	p->tag = h.tag;
	p->start = data + *pos;
	p->body = data + *pos + h.header_len;
	p->len = h.body_len;
	p->total = h.header_len + h.body_len;
	*pos += p->total;
	return CABLES_OK;
}

/* The primary key packet of a transferable public key, and where its subkeys start (*end). */
static cables_status
primary_part(const uint8_t *lt, size_t len, struct pkt *primary, size_t *end, struct cables_err *err)
{
	size_t pos = 0, at;
	struct pkt p;
	cables_status st;

	if (len == 0 || (st = next_packet(lt, len, &pos, primary, err)) != CABLES_OK)
		return len == 0 ? cables_fail(err, CABLES_ERR_SYNTAX, "an empty OpenPGP key") : st;
	if (primary->tag != 6)
		return cables_fail(err, CABLES_ERR_SYNTAX, "an OpenPGP public key that starts with packet tag %u",
		    primary->tag);
	for (at = pos; pos < len; at = pos) {
		if ((st = next_packet(lt, len, &pos, &p, err)) != CABLES_OK)
			return st;
		if (p.tag == 14 || p.tag == 7 || p.tag == 5 || p.tag == 6)
			break;
	}
	*end = pos < len || at < len ? at : len;
	return CABLES_OK;
}

/* The binding signature's digest: the primary and subkey packets (0x99-prefixed), the hashed part, the trailer. */
static bool
binding_digest(const struct pkt *primary, const uint8_t *sub, size_t sub_len, const uint8_t *hashed, size_t hlen,
    uint8_t md[32])
{
	uint8_t h[3] = { 0x99 }, trailer[6] = { 4, 0xff };
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok;

	pgp_be32_put(trailer + 2, (uint32_t)hlen);
	ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1;
	h[1] = (uint8_t)(primary->len >> 8), h[2] = (uint8_t)primary->len;
	ok = ok && EVP_DigestUpdate(c, h, 3) == 1 && EVP_DigestUpdate(c, primary->body, primary->len) == 1;
	h[1] = (uint8_t)(sub_len >> 8), h[2] = (uint8_t)sub_len;
	ok = ok && EVP_DigestUpdate(c, h, 3) == 1 && EVP_DigestUpdate(c, sub, sub_len) == 1 &&
	    EVP_DigestUpdate(c, hashed, hlen) == 1 && EVP_DigestUpdate(c, trailer, sizeof(trailer)) == 1 &&
	    EVP_DigestFinal_ex(c, md, NULL) == 1;
	EVP_MD_CTX_free(c);
	return ok;
}

/* The primary key's signature over md as OpenPGP MPIs, appended to b. */
static cables_status
sign_digest(const struct pgp_keypkt *k, EVP_PKEY *key, const uint8_t md[32], struct buf *b, struct cables_err *err)
{
	uint8_t sig[1024];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *mc = NULL;
	EVP_PKEY_CTX *pc = NULL;
	ECDSA_SIG *es = NULL;
	cables_status st = CABLES_OK;

	if (k->algo == PGP_PK_EDDSA) {
		if ((mc = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(mc, NULL, NULL, NULL, key) != 1 ||
		    EVP_DigestSign(mc, sig, &slen, md, 32) != 1 || slen != 64)
			st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "signing the epoch subkey with Ed25519");
		else
			pgp_mpi_append(b, sig, 32), pgp_mpi_append(b, sig + 32, 32);
	} else if (k->algo == PGP_PK_RSA || k->algo == PGP_PK_RSA_S) {
		if ((pc = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_sign_init(pc) != 1 ||
		    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) != 1 ||
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) != 1 || EVP_PKEY_sign(pc, sig, &slen, md, 32) != 1)
			st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "signing the epoch subkey with RSA");
		else
			pgp_mpi_append(b, sig, slen);
	} else if (k->algo == PGP_PK_ECDSA) {
		const unsigned char *p = sig;
		uint8_t rs[64];

		if ((pc = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_sign_init(pc) != 1 ||
		    EVP_PKEY_sign(pc, sig, &slen, md, 32) != 1 || (es = d2i_ECDSA_SIG(NULL, &p, (long)slen)) == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) != 32 || BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) != 32)
			st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "signing the epoch subkey with ECDSA");
		else
			pgp_mpi_append(b, rs, 32), pgp_mpi_append(b, rs + 32, 32);
	} else {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP primary key algorithm %u cannot bind an epoch subkey "
		    "(EdDSA, RSA and ECDSA can)", k->algo);
	}
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	EVP_MD_CTX_free(mc);
	return st;
}

/* The subkey binding signature packet of sub by primary k (key), its expiry and flags hashed. */
static cables_status
binding(const struct pkt *primary, const struct pgp_keypkt *k, EVP_PKEY *key, const uint8_t *sub, size_t sub_len,
    long long created, long long not_after, struct buf *out, struct cables_err *err)
{
	uint8_t hashed[6 + 6 + 6 + 3 + 23], md[32], *p = hashed + 6;
	struct buf body;
	cables_status st;

	hashed[0] = 4, hashed[1] = SIG_SUBKEY_BINDING, hashed[2] = (uint8_t)k->algo, hashed[3] = HASH_SHA256;
	*p++ = 5, *p++ = SUB_CREATED;
	pgp_be32_put(p, (uint32_t)created), p += 4;
	*p++ = 5, *p++ = SUB_KEY_EXPIRES;
	pgp_be32_put(p, (uint32_t)(not_after - created)), p += 4;
	*p++ = 2, *p++ = SUB_KEY_FLAGS, *p++ = PGP_FLAG_ENCRYPT;
	*p++ = 22, *p++ = SUB_ISSUER_FPR, *p++ = 4;
	memcpy(p, k->fpr, 20), p += 20;
	hashed[4] = 0, hashed[5] = (uint8_t)(p - hashed - 6);
	if (!binding_digest(primary, sub, sub_len, hashed, (size_t)(p - hashed), md))
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "hashing the epoch subkey binding");
	buf_init(&body);
	buf_append(&body, hashed, (size_t)(p - hashed));
	buf_append(&body, "\0\012\011\020", 4);		/* unhashed: the issuer key ID */
	buf_append(&body, k->fpr + 12, 8);
	buf_append(&body, md, 2);
	if ((st = sign_digest(k, key, md, &body, err)) == CABLES_OK) {
		put_header(out, 2, body.len);
		buf_append(out, body.data, body.len);
	}
	buf_release(&body);
	return st;
}

/* Lowercase hex, as the key store names OpenPGP keys (pgp.h) and the keyholder protocol wants them. */
static void
fpr_hex(const uint8_t fpr[20], char out[41])
{
	hex_encode(fpr, 20, out);
	out[40] = '\0';
}

void
pgp_epoch_secret_free(uint8_t *secret, size_t len)
{
	if (secret == NULL)
		return;
	OPENSSL_cleanse(secret, len);
	free(secret);
}

cables_status
pgp_epoch_make(const uint8_t *lt, size_t lt_len, const struct pgp_keypkt *primary, EVP_PKEY *key, long long created,
    long long not_after, struct buf *pub, uint8_t **secret, size_t *secret_len, struct pgp_epoch_info *info,
    struct cables_err *err)
{
	uint8_t raw[32], scalar[32], point[33], kdf[4] = { 3, 1, 8, 7 };	/* SHA-256, AES-128 */
	size_t plen = 32, end, sum = 0;
	struct pkt pp;
	struct buf sub;
	uint8_t *sec;
	size_t n;
	struct pgp_keypkt sk;
	EVP_PKEY *x = NULL;
	cables_status st;

	*secret = NULL;
	*secret_len = 0;
	if ((st = primary_part(lt, lt_len, &pp, &end, err)) != CABLES_OK)
		return st;
	if (pp.len < 6 || memcmp(pp.body, "\004", 1) != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "not a version 4 OpenPGP primary key");
	/* A Curve25519 secret as RFC 7748 clamps it: gpg keeps it so. */
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "no randomness for the epoch subkey");
	raw[0] &= 248, raw[31] &= 127, raw[31] |= 64;
	point[0] = 0x40;
	if ((x = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, raw, sizeof(raw))) == NULL ||
	    EVP_PKEY_get_raw_public_key(x, point + 1, &plen) != 1 || plen != 32) {
		OPENSSL_cleanse(raw, sizeof(raw));
		EVP_PKEY_free(x);
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "making the epoch subkey");
	}
	EVP_PKEY_free(x);
	for (size_t i = 0; i < 32; i++)
		scalar[i] = raw[31 - i];	/* gpg's MPI is big-endian: RFC 7748's bytes reversed */
	OPENSSL_cleanse(raw, sizeof(raw));

	buf_init(&sub);
	buf_append(&sub, "\004", 1);
	buf_append(&sub, (uint8_t[4]){ 0 }, 4);
	pgp_be32_put((uint8_t *)sub.data + 1, (uint32_t)created);
	buf_append(&sub, (uint8_t[2]){ PGP_PK_ECDH, sizeof(cv25519_oid) }, 2);
	buf_append(&sub, cv25519_oid, sizeof(cv25519_oid));
	pgp_mpi_append(&sub, point, sizeof(point));
	buf_append(&sub, kdf, sizeof(kdf));

	/* The secret packet in one fixed buffer, so no reallocation leaves a copy of the scalar behind. */
	sec = xmalloc(sub.len + 64);
	sec[0] = 0xc7;
	sec[1] = (uint8_t)(sub.len + 1 + 2 + 32 + 2);	/* < 192: one length octet */
	memcpy(sec + 2, sub.data, sub.len);
	n = 2 + sub.len;
	sec[n++] = 0;		/* S2K usage 0: the store's seal protects it */
	sec[n++] = 0x00, sec[n++] = 0xff;	/* 255 bits: the clamped scalar's top byte (raw[31]) is 0x40..0x7f */
	memcpy(sec + n, scalar, 32);
	OPENSSL_cleanse(scalar, sizeof(scalar));
	for (size_t i = n - 2; i < n + 32; i++)
		sum += sec[i];
	n += 32;
	sec[n++] = (uint8_t)(sum >> 8), sec[n++] = (uint8_t)sum;

	buf_init(pub);
	buf_append(pub, lt, end);
	put_header(pub, 14, sub.len);
	buf_append(pub, sub.data, sub.len);
	if ((st = binding(&pp, primary, key, (const uint8_t *)sub.data, sub.len, created, not_after, pub, err)) !=
	    CABLES_OK) {
		buf_release(pub);
		goto out;
	}
	if ((st = pgp_key_find(sec, n, NULL, &sk, err)) != CABLES_OK) {
		buf_release(pub);
		goto out;
	}
	memset(info, 0, sizeof(*info));
	fpr_hex(sk.fpr, info->fpr);
	strlcpy_c(info->keyid, sk.keyid, sizeof(info->keyid));
	fpr_hex(primary->fpr, info->primary);
	info->created = created;
	info->not_after = not_after;
	*secret = sec;
	*secret_len = n;
	sec = NULL;
out:
	pgp_epoch_secret_free(sec, sub.len + 64);
	buf_release(&sub);
	return st;
}

/* The public key of primary key packet k, for checking its signatures. */
static EVP_PKEY *
public_key(const struct pgp_keypkt *k)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;
	BIGNUM *n = NULL, *e = NULL;

	if (k->algo == PGP_PK_EDDSA)
		return k->point.len == 33 && k->point.p[0] == 0x40 ?
		    EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k->point.p + 1, 32) : NULL;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	if (k->algo == PGP_PK_RSA || k->algo == PGP_PK_RSA_S) {
		if ((n = BN_bin2bn(k->n.p, (int)k->n.len, NULL)) == NULL ||
		    (e = BN_bin2bn(k->e.p, (int)k->e.len, NULL)) == NULL ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL)
			goto out;
	} else if (k->algo == PGP_PK_ECDSA && k->curve == PGP_CURVE_P256) {
		if (!OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, k->point.p, k->point.len) ||
		    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
		    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
			goto out;
	} else {
		goto out;
	}
	if (EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		key = NULL;
out:
	ERR_clear_error();
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	return key;
}

/* One MPI at p[*pos..n) into v, left-padded to want bytes (0: its own length, at most 1024). */
static bool
read_mpi(const uint8_t *p, size_t n, size_t *pos, uint8_t *v, size_t want, size_t *got)
{
	size_t bits, len;

	if (n - *pos < 2)
		return false;
	bits = (size_t)p[*pos] << 8 | p[*pos + 1];
	len = (bits + 7) / 8;
	if (len == 0 || len > n - *pos - 2 || len > (want != 0 ? want : 1024))
		return false;
	if (want == 0)
		want = len;
	memset(v, 0, want - len);
	memcpy(v + want - len, p + *pos + 2, len);
	*pos += 2 + len;
	*got = want;
	return true;
}

/* Does sig (the MPIs at p[0..n)) verify md with primary key k? */
static bool
verify_digest(const struct pgp_keypkt *k, const uint8_t *p, size_t n, const uint8_t md[32])
{
	uint8_t sig[1024], der[80];
	size_t pos = 0, a = 0, b = 0;
	EVP_PKEY *key = public_key(k);
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	ECDSA_SIG *es = NULL;
	unsigned char *dp = der;
	int dlen;
	bool ok = false;

	if (key == NULL)
		return false;
	if (k->algo == PGP_PK_EDDSA || k->algo == PGP_PK_ECDSA) {
		if (!read_mpi(p, n, &pos, sig, 32, &a) || !read_mpi(p, n, &pos, sig + 32, 32, &b) || pos != n)
			goto out;
		if (k->algo == PGP_PK_EDDSA) {
			ok = (mc = EVP_MD_CTX_new()) != NULL && EVP_DigestVerifyInit(mc, NULL, NULL, NULL, key) == 1 &&
			    EVP_DigestVerify(mc, sig, 64, md, 32) == 1;
		} else {
			BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);

			if ((es = ECDSA_SIG_new()) == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
				BN_free(r);
				BN_free(s);
				goto out;
			}
			ok = (dlen = i2d_ECDSA_SIG(es, &dp)) > 0 && (pc = EVP_PKEY_CTX_new(key, NULL)) != NULL &&
			    EVP_PKEY_verify_init(pc) == 1 && EVP_PKEY_verify(pc, der, (size_t)dlen, md, 32) == 1;
		}
	} else {
		ok = read_mpi(p, n, &pos, sig, k->n.len, &a) && pos == n && (pc = EVP_PKEY_CTX_new(key, NULL)) != NULL &&
		    EVP_PKEY_verify_init(pc) == 1 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 && EVP_PKEY_verify(pc, sig, a, md, 32) == 1;
	}
out:
	ERR_clear_error();
	ECDSA_SIG_free(es);
	EVP_PKEY_CTX_free(pc);
	EVP_MD_CTX_free(mc);
	EVP_PKEY_free(key);
	return ok;
}

struct binding_facts {
	bool has_created, has_expiry, has_flags, has_issuer;
	uint32_t created, expires;
	unsigned int flags;
	uint8_t issuer[8];
};

/*
 * A subpacket area into f (hashed: expiry and flags count only there);
 * false when malformed, when it holds a critical subpacket we do not know,
 * or when the hashed area repeats a creation time, key expiration time or
 * key flags (GnuPG reads the first of two: we would check another).
 */
static bool
read_subpackets(const uint8_t *p, size_t n, bool hashed, struct binding_facts *f)
{
	size_t pos = 0;

	while (pos < n) {
		size_t len;
		unsigned int type;
		const uint8_t *v;

		if (p[pos] < 192) {
			len = p[pos++];
		} else if (p[pos] < 255) {
			if (n - pos < 2)
				return false;
			len = ((size_t)(p[pos] - 192) << 8) + p[pos + 1] + 192;
			pos += 2;
		} else {
			if (n - pos < 5)
				return false;
			len = pgp_be32_get(p + pos + 1);
			pos += 5;
		}
		if (len == 0 || len > n - pos)
			return false;
		type = p[pos] & 0x7f;
		v = p + pos + 1;
		if (hashed && ((type == SUB_CREATED && (f->has_created || len != 5)) ||
		    (type == SUB_KEY_EXPIRES && (f->has_expiry || len != 5)) ||
		    (type == SUB_KEY_FLAGS && (f->has_flags || len < 2))))
			return false;
		if (type == SUB_CREATED && len == 5 && hashed)
			f->created = pgp_be32_get(v), f->has_created = true;
		else if (type == SUB_KEY_EXPIRES && len == 5 && hashed)
			f->expires = pgp_be32_get(v), f->has_expiry = true;
		else if (type == SUB_KEY_FLAGS && len >= 2 && hashed)
			f->flags = v[0], f->has_flags = true;
		else if (type == SUB_ISSUER && len == 9)
			memcpy(f->issuer, v, 8), f->has_issuer = true;
		else if (type == SUB_ISSUER_FPR && len == 22 && v[0] == 4)
			memcpy(f->issuer, v + 13, 8), f->has_issuer = true;
		else if (p[pos] & 0x80)
			return false;
		pos += len;
	}
	return true;
}

/* The binding signature sig over (primary, sub): its facts, verified with pk. */
static cables_status
check_binding(const struct pkt *primary, const struct pgp_keypkt *pk, const struct pkt *sub, const struct pkt *sig,
    struct binding_facts *f, struct cables_err *err)
{
	const uint8_t *b = sig->body;
	size_t hl, ul;
	uint8_t md[32];

	memset(f, 0, sizeof(*f));
	if (sig->len < 6 || b[0] != 4)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey's signature is not a version 4 one");
	if (b[1] != SIG_SUBKEY_BINDING)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey's signature is of type 0x%02x, not a "
		    "subkey binding (0x18)", b[1]);
	if (b[2] != pk->algo || b[3] != HASH_SHA256)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey binding is not made with SHA-256 by the "
		    "primary key's algorithm");
	hl = (size_t)b[4] << 8 | b[5];
	if (6 + hl + 2 > sig->len || 8 + hl + (ul = (size_t)b[6 + hl] << 8 | b[7 + hl]) + 2 > sig->len ||
	    !read_subpackets(b + 6, hl, true, f) || !read_subpackets(b + 8 + hl, ul, false, f))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey binding's subpackets are malformed, "
		    "repeated or hold a critical one not understood");
	if (!f->has_issuer || memcmp(f->issuer, pk->fpr + 12, 8) != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey binding is not issued by the long-term "
		    "primary key %s", pk->keyid);
	if (!binding_digest(primary, sub->body, sub->len, b, 6 + hl, md))
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "hashing the epoch subkey binding");
	if (memcmp(md, b + 8 + hl + ul, 2) != 0 || !verify_digest(pk, b + 10 + hl + ul, sig->len - 10 - hl - ul, md))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey binding does not verify with the "
		    "long-term primary key %s", pk->keyid);
	return CABLES_OK;
}

cables_status
pgp_epoch_check(const uint8_t *data, size_t len, const uint8_t *lt, size_t lt_len, long long now,
    long long max_validity, struct pgp_epoch_info *info, struct cables_err *err)
{
	struct pkt lp, p, primary, sub = { 0 }, sig = { 0 };
	struct pgp_keypkt pk, sk;
	struct binding_facts f;
	size_t pos = 0, end, nsub = 0, nsig = 0;
	long long created, not_after;
	cables_status st;

	memset(info, 0, sizeof(*info));
	if ((st = primary_part(lt, lt_len, &lp, &end, err)) != CABLES_OK)
		return st;
	if ((st = pgp_key_find(lp.start, lp.total, NULL, &pk, err)) != CABLES_OK)
		return st;
	if (len == 0 || (st = next_packet(data, len, &pos, &primary, err)) != CABLES_OK)
		return len == 0 ? cables_fail(err, CABLES_ERR_SYNTAX, "an empty OpenPGP epoch key") : st;
	if (primary.tag != 6 || primary.len != lp.len || memcmp(primary.body, lp.body, lp.len) != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch key's primary key is not the long-term key %s",
		    pk.keyid);
	while (pos < len) {
		if ((st = next_packet(data, len, &pos, &p, err)) != CABLES_OK)
			return st;
		if (p.tag == 14) {
			sub = p;
			nsub++;
		} else if (p.tag == 2 && nsub > 0) {
			sig = p;
			nsig++;
		} else if (nsub > 0 || (p.tag != 2 && p.tag != 13 && p.tag != 17)) {
			return cables_fail(err, CABLES_ERR_UNUSABLE, "an OpenPGP epoch key with a packet of tag %u where a "
			    "user ID, its signature or the one subkey belong", p.tag);
		}
	}
	if (nsub != 1 || nsig != 1)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "an OpenPGP epoch key must hold one subkey with one binding "
		    "signature (it has %zu and %zu)", nsub, nsig);
	if ((st = pgp_key_find(sub.start, sub.total, NULL, &sk, err)) != CABLES_OK)
		return st;
	if (sk.algo != PGP_PK_ECDH && sk.algo != PGP_PK_RSA_E && sk.algo != PGP_PK_RSA)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey (algorithm %u) cannot encrypt", sk.algo);
	if ((st = check_binding(&primary, &pk, &sub, &sig, &f, err)) != CABLES_OK)
		return st;
	created = pgp_be32_get(sub.body + 1);
	if (!f.has_flags || (f.flags & ~PGP_FLAG_ENCRYPT) != 0 || (f.flags & PGP_FLAG_ENCRYPT) == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey's key flags (0x%02x) are not encryption "
		    "only", f.has_flags ? f.flags : 0);
	if (!f.has_expiry || f.expires == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey does not expire: no short-lived key");
	not_after = created + (long long)f.expires;
	if (not_after - created > max_validity)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey is valid for %lld days: no short-lived key",
		    (not_after - created) / 86400);
	if (created > now + CREATED_SKEW || (f.has_created && (long long)f.created > now + CREATED_SKEW))
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey is not valid yet (made at %lld)", created);
	if (now >= not_after)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch subkey expired at %lld", not_after);
	fpr_hex(sk.fpr, info->fpr);
	strlcpy_c(info->keyid, sk.keyid, sizeof(info->keyid));
	fpr_hex(pk.fpr, info->primary);
	info->created = created;
	info->not_after = not_after;
	return CABLES_OK;
}
