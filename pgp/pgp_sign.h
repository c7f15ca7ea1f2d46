/*
 * pgp_sign - an OpenPGP v4 detached signature (RFC 4880 section 5.2.3)
 * built here, without gpg, and the RFC 3156 section 5 multipart/signed
 * entity around it.  Only the private-key step is someone else's: sign()
 * gets the signing request below (never a bare digest) and answers the raw signature (RSA: the PKCS#1
 * v1.5 signature of the digest, as long as the modulus; EdDSA: r || s, 64
 * bytes; ECDSA P-256: DER, as OpenSSL writes it), so the secret key can
 * stay in cables-keyholder.
 *
 * The signature: type 0x01 (canonical text: the entity is CRLF already, as
 * RFC 3156 requires), SHA-256, hashed subpackets signature creation time,
 * issuer fingerprint (33) and issuer key ID (16).  k is the signing
 * (sub)key's public packet (pgp_key.h), RSA, ECDSA (P-256) or EdDSA.
 *
 * out: the Content-Type of the multipart/signed entity and the bytes that
 * go before the signed entity (prologue: up to the first boundary) and
 * after it (epilogue: the application/pgp-signature part and the closing
 * boundary); pgp_signed_release() frees them.
 */
#ifndef CABLES_PGP_SIGN_H
#define CABLES_PGP_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "entity.h"
#include "pgp_key.h"
#include "status.h"
#include "util.h"

/*
 * The signing request (the keyholder's KH_KEY_PGP sign data), PGP_SIGN_REQ_LEN bytes:
 *   the SHA-256 state after the content's whole 64-byte blocks (8 words, big-endian) |
 *   the length of those blocks in bytes (8, big-endian) | the rest's length (1, < 64) |
 *   the rest of the content (64, zero after it) | the signature's hashed part (PGP_SIGN_HASHED_LEN).
 * The signer finishes the digest itself, with the hashed part and the v4
 * trailer, after pgp_sign_request_digest() has checked that the hashed
 * part is exactly the one pgp_sign_mime() writes: a document signature
 * (type 0x00 or 0x01), SHA-256, created within PGP_SIGN_SKEW seconds of
 * now, issuer fingerprint and key ID those of keyid.  So a signer that is
 * handed only digests' states, whoever asks, makes no certification, key
 * binding, revocation or direct-key signature with a primary key that
 * also signs mail (a bare digest would let a compromised milter add its
 * own subkey to a user's key, revoke it or certify other keys, lastingly).
 * md: the digest to sign; *algo: the public-key algorithm the hashed part
 * names.  CABLES_ERR_ARG with the reason otherwise.
 */
#define PGP_SIGN_HASHED_LEN 45
#define PGP_SIGN_REQ_LEN (32 + 8 + 1 + 64 + PGP_SIGN_HASHED_LEN)
#define PGP_SIGN_SKEW 3600

cables_status pgp_sign_request_digest(const uint8_t *req, size_t len, const char keyid[17], time_t now, uint8_t md[32],
    unsigned int *algo, struct cables_err *err);

typedef cables_status (*pgp_sign_fn)(void *arg, const struct pgp_keypkt *k, const uint8_t *req, size_t req_len,
    uint8_t *sig, size_t max, size_t *len, struct cables_err *err);

struct pgp_signed {
	char content_type[200];
	struct buf prologue;
	struct buf epilogue;
};

cables_status pgp_sign_mime(const struct pgp_keypkt *k, time_t now, const struct entity_src *content, pgp_sign_fn sign,
    void *arg, struct pgp_signed *out, struct cables_err *err);
void pgp_signed_release(struct pgp_signed *s);

/* Append an OpenPGP MPI of the big-endian bytes v[0..n) (leading zeros dropped, the bit count first) to b. */
void pgp_mpi_append(struct buf *b, const uint8_t *v, size_t n);

#endif
