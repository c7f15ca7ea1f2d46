/* pgp_sign - OpenPGP detached signatures without gpg, and RFC 3156 multipart/signed; see pgp_sign.h. */
#define OPENSSL_SUPPRESS_DEPRECATED	/* SHA256_CTX: the content's state goes to the keyholder, which finishes it */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "pgp_packet.h"
#include "pgp_sign.h"

#define SIG_TYPE_BINARY 0x00
#define SIG_TYPE_TEXT 0x01
#define HASH_SHA256 8

/* The request's fields (pgp_sign.h). */
#define REQ_STATE 0
#define REQ_BYTES 32
#define REQ_TAIL_LEN 40
#define REQ_TAIL 41
#define REQ_HASHED 105

/* The hashed part: version, type, algorithms, hashed subpackets (creation time, issuer fingerprint, issuer). */
static size_t
hashed_part(const struct pgp_keypkt *k, time_t now, uint8_t out[64])
{
	uint8_t *p = out + 6;

	out[0] = 4;
	out[1] = SIG_TYPE_TEXT;
	out[2] = (uint8_t)k->algo;
	out[3] = HASH_SHA256;
	*p++ = 5, *p++ = 2;			/* signature creation time */
	pgp_be32_put(p, (uint32_t)now);
	p += 4;
	*p++ = 22, *p++ = 33, *p++ = 4;		/* issuer fingerprint, v4 */
	memcpy(p, k->fpr, 20);
	p += 20;
	*p++ = 9, *p++ = 16;			/* issuer key ID */
	memcpy(p, k->fpr + 12, 8);
	p += 8;
	out[4] = (uint8_t)((p - out - 6) >> 8);
	out[5] = (uint8_t)(p - out - 6);
	return (size_t)(p - out);
}

static cables_status
sha_update(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return SHA256_Update(arg, p, n) == 1 ? CABLES_OK : cables_fail(err, CABLES_ERR_CRYPTO, "SHA-256");
}

/* The digest a request stands for: its state, the rest of the content, the hashed part and the v4 trailer. */
static void
request_finish(const uint8_t req[PGP_SIGN_REQ_LEN], uint8_t md[32])
{
	uint8_t trailer[6] = { 4, 0xff };
	uint64_t bytes = (uint64_t)pgp_be32_get(req + REQ_BYTES) << 32 | pgp_be32_get(req + REQ_BYTES + 4);
	SHA256_CTX c;

	SHA256_Init(&c);
	for (size_t i = 0; i < 8; i++)
		c.h[i] = pgp_be32_get(req + REQ_STATE + 4 * i);
	c.Nl = (SHA_LONG)(bytes << 3);
	c.Nh = (SHA_LONG)(bytes >> 29);
	c.num = 0;
	SHA256_Update(&c, req + REQ_TAIL, req[REQ_TAIL_LEN]);
	SHA256_Update(&c, req + REQ_HASHED, PGP_SIGN_HASHED_LEN);
	pgp_be32_put(trailer + 2, PGP_SIGN_HASHED_LEN);
	SHA256_Update(&c, trailer, sizeof(trailer));
	SHA256_Final(md, &c);
	OPENSSL_cleanse(&c, sizeof(c));
}

/*
 * The keyholder's request (pgp_sign.h): the SHA-256 state after the
 * content's whole blocks, the rest, and the hashed part; md: the digest.
 */
static cables_status
request(const struct entity_src *content, const uint8_t hashed[PGP_SIGN_HASHED_LEN], uint8_t req[PGP_SIGN_REQ_LEN],
    uint8_t md[32], struct cables_err *err)
{
	SHA256_CTX c;
	uint64_t bytes;
	cables_status st;

	memset(req, 0, PGP_SIGN_REQ_LEN);
	if (SHA256_Init(&c) != 1)
		return cables_fail(err, CABLES_ERR_CRYPTO, "SHA-256");
	if ((st = entity_src_each(content, sha_update, &c, err)) != CABLES_OK)
		return st;
	bytes = ((uint64_t)c.Nh << 29 | c.Nl >> 3) - c.num;
	for (size_t i = 0; i < 8; i++)
		pgp_be32_put(req + REQ_STATE + 4 * i, c.h[i]);
	pgp_be32_put(req + REQ_BYTES, (uint32_t)(bytes >> 32));
	pgp_be32_put(req + REQ_BYTES + 4, (uint32_t)bytes);
	req[REQ_TAIL_LEN] = (uint8_t)c.num;
	memcpy(req + REQ_TAIL, c.data, c.num);
	memcpy(req + REQ_HASHED, hashed, PGP_SIGN_HASHED_LEN);
	request_finish(req, md);
	return CABLES_OK;
}

cables_status
pgp_sign_request_digest(const uint8_t *req, size_t len, const char keyid[17], time_t now, uint8_t md[32],
    unsigned int *algo, struct cables_err *err)
{
	const uint8_t *h = req + REQ_HASHED;
	uint64_t bytes;
	char issuer[17];
	long long skew;

	*algo = 0;
	if (len != PGP_SIGN_REQ_LEN)
		return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signing request of %zu bytes (not %d)", len,
		    PGP_SIGN_REQ_LEN);
	bytes = (uint64_t)pgp_be32_get(req + REQ_BYTES) << 32 | pgp_be32_get(req + REQ_BYTES + 4);
	if (bytes % 64 != 0 || bytes >> 61 != 0 || req[REQ_TAIL_LEN] >= 64)
		return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signing request with a malformed hash state");
	for (size_t i = req[REQ_TAIL_LEN]; i < 64; i++)
		if (req[REQ_TAIL + i] != 0)
			return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signing request with non-zero padding");
	/* Exactly what hashed_part() writes: a document signature, never a certification, binding or revocation. */
	if (h[0] != 4 || (h[1] != SIG_TYPE_BINARY && h[1] != SIG_TYPE_TEXT))
		return cables_fail(err, CABLES_ERR_ARG, "OpenPGP signature type 0x%02x is not a document signature",
		    h[1]);
	if (h[3] != HASH_SHA256 || h[4] != 0 || h[5] != PGP_SIGN_HASHED_LEN - 6 || h[6] != 5 || h[7] != 2 ||
	    h[12] != 22 || h[13] != 33 || h[14] != 4 || h[35] != 9 || h[36] != 16 || memcmp(h + 15 + 12, h + 37, 8) != 0)
		return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signature's hashed part other than creation time, "
		    "issuer fingerprint and issuer key ID with SHA-256");
	hex_encode(h + 37, 8, issuer);
	issuer[16] = '\0';
	if (strcmp(issuer, keyid) != 0)
		return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signature naming issuer %s, not key %s", issuer,
		    keyid);
	skew = (long long)pgp_be32_get(h + 8) - (long long)now;
	if (skew > PGP_SIGN_SKEW || skew < -PGP_SIGN_SKEW)
		return cables_fail(err, CABLES_ERR_ARG, "an OpenPGP signature created %lld s from now", skew);
	*algo = h[2];
	request_finish(req, md);
	return CABLES_OK;
}

/* An MPI of the big-endian bytes v[0..n): leading zeros dropped, the bit count first. */
void
pgp_mpi_append(struct buf *b, const uint8_t *v, size_t n)
{
	size_t bits;
	uint8_t h[2];

	while (n > 1 && v[0] == 0)
		v++, n--;
	bits = n * 8;
	for (uint8_t top = v[0]; bits > 0 && !(top & 0x80); top <<= 1)
		bits--;
	h[0] = (uint8_t)(bits >> 8);
	h[1] = (uint8_t)bits;
	buf_append(b, h, 2);
	buf_append(b, v, n);
}

/* An ECDSA signature (DER, as OpenSSL and the keyholder give it) as r || s, 32 bytes each (P-256). */
static bool
ecdsa_raw(uint8_t *sig, size_t *len)
{
	const unsigned char *p = sig;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)*len);
	const BIGNUM *r, *s;
	bool ok;

	if (es == NULL)
		return false;
	ECDSA_SIG_get0(es, &r, &s);
	ok = p == sig + *len && BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
	ECDSA_SIG_free(es);
	*len = 64;
	return ok;
}

/* The signature packet (tag 2, new format) into pkt. */
static void
packet(const struct pgp_keypkt *k, const uint8_t *hashed, size_t hlen, const uint8_t md[32], const uint8_t *sig,
    size_t slen, struct buf *pkt)
{
	struct buf body;
	uint8_t h[6];

	buf_init(&body);
	buf_append(&body, hashed, hlen);
	buf_append(&body, "\0\0", 2);		/* no unhashed subpackets */
	buf_append(&body, md, 2);		/* the digest's left 16 bits */
	if (k->algo == PGP_PK_EDDSA || k->algo == PGP_PK_ECDSA) {
		pgp_mpi_append(&body, sig, 32);
		pgp_mpi_append(&body, sig + 32, 32);
	} else {
		pgp_mpi_append(&body, sig, slen);
	}
	h[0] = 0xc2;
	if (body.len < 192) {
		h[1] = (uint8_t)body.len;
		buf_append(pkt, h, 2);
	} else if (body.len < 8384) {
		h[1] = (uint8_t)(((body.len - 192) >> 8) + 192);
		h[2] = (uint8_t)(body.len - 192);
		buf_append(pkt, h, 3);
	} else {
		h[1] = 0xff;
		pgp_be32_put(h + 2, (uint32_t)body.len);
		buf_append(pkt, h, 6);
	}
	buf_append(pkt, body.data, body.len);
	buf_release(&body);
}

static uint32_t
crc24(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xb704ce;

	while (n--) {
		crc ^= (uint32_t)*p++ << 16;
		for (int i = 0; i < 8; i++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864cfb;
		}
	}
	return crc & 0xffffff;
}

/* ASCII armor (RFC 4880 section 6.2), CRLF line ends. */
static void
armor(const uint8_t *p, size_t n, struct buf *out)
{
	uint8_t crc[3];
	char line[80];
	uint32_t c = crc24(p, n);

	buf_appends(out, "-----BEGIN PGP SIGNATURE-----\r\n\r\n");
	for (size_t i = 0; i < n; i += 48) {
		EVP_EncodeBlock((unsigned char *)line, p + i, (int)(n - i < 48 ? n - i : 48));
		buf_printf(out, "%s\r\n", line);
	}
	crc[0] = (uint8_t)(c >> 16);
	crc[1] = (uint8_t)(c >> 8);
	crc[2] = (uint8_t)c;
	EVP_EncodeBlock((unsigned char *)line, crc, 3);
	buf_printf(out, "=%s\r\n-----END PGP SIGNATURE-----\r\n", line);
}

cables_status
pgp_sign_mime(const struct pgp_keypkt *k, time_t now, const struct entity_src *content, pgp_sign_fn sign, void *arg,
    struct pgp_signed *out, struct cables_err *err)
{
	uint8_t hashed[64], md[32], sig[1024], rnd[16], req[PGP_SIGN_REQ_LEN];
	char boundary[48];
	size_t hlen, slen = 0;
	struct buf pkt;
	cables_status st;

	memset(out, 0, sizeof(*out));
	buf_init(&out->prologue);
	buf_init(&out->epilogue);
	if (k->algo != PGP_PK_EDDSA && k->algo != PGP_PK_ECDSA && k->algo != PGP_PK_RSA && k->algo != PGP_PK_RSA_S)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s cannot sign (algorithm %u; RSA, "
		    "ECDSA P-256 and Ed25519 sign here)", k->keyid, k->algo);
	hlen = hashed_part(k, now, hashed);
	if (hlen != PGP_SIGN_HASHED_LEN)
		return cables_fail(err, CABLES_ERR_INTERNAL, "OpenPGP: a hashed part of %zu bytes", hlen);
	if ((st = request(content, hashed, req, md, err)) != CABLES_OK ||
	    (st = sign(arg, k, req, sizeof(req), sig, sizeof(sig), &slen, err)) != CABLES_OK)
		return st;
	if (k->algo == PGP_PK_ECDSA && !ecdsa_raw(sig, &slen))
		return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: a malformed ECDSA signature for key %s", k->keyid);
	if (k->algo == PGP_PK_EDDSA || k->algo == PGP_PK_ECDSA ? slen != 64 : slen != k->n.len)
		return cables_fail(err, CABLES_ERR_CRYPTO, "OpenPGP: a signature of %zu bytes for key %s", slen,
		    k->keyid);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return cables_fail(err, CABLES_ERR_CRYPTO, "no random boundary");
	strcpy(boundary, "----=_cables_");
	hex_encode(rnd, sizeof(rnd), boundary + strlen(boundary));
	snprintf(out->content_type, sizeof(out->content_type),
	    "multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\";\r\n\tboundary=\"%s\"",
	    boundary);
	buf_printf(&out->prologue, "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n--%s\r\n", boundary);
	buf_printf(&out->epilogue, "\r\n--%s\r\nContent-Type: application/pgp-signature; name=\"signature.asc\"\r\n"
	    "Content-Description: OpenPGP digital signature\r\nContent-Disposition: attachment; "
	    "filename=\"signature.asc\"\r\n\r\n", boundary);
	buf_init(&pkt);
	packet(k, hashed, hlen, md, sig, slen, &pkt);
	armor((const uint8_t *)pkt.data, pkt.len, &out->epilogue);
	buf_printf(&out->epilogue, "\r\n--%s--\r\n", boundary);
	buf_release(&pkt);
	OPENSSL_cleanse(md, sizeof(md));
	return CABLES_OK;
}

void
pgp_signed_release(struct pgp_signed *s)
{
	buf_release(&s->prologue);
	buf_release(&s->epilogue);
}
