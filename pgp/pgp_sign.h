/*
 * pgp_sign - an OpenPGP v4 detached signature (RFC 4880 section 5.2.3)
 * built here, without gpg, and the RFC 3156 section 5 multipart/signed
 * entity around it.  Only the private-key step is someone else's: sign()
 * gets the SHA-256 digest and answers the raw signature (RSA: the PKCS#1
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

typedef cables_status (*pgp_sign_fn)(void *arg, const struct pgp_keypkt *k, const uint8_t digest[32], uint8_t *sig,
    size_t max, size_t *len, struct cables_err *err);

struct pgp_signed {
	char content_type[200];
	struct buf prologue;
	struct buf epilogue;
};

cables_status pgp_sign_mime(const struct pgp_keypkt *k, time_t now, const struct entity_src *content, pgp_sign_fn sign,
    void *arg, struct pgp_signed *out, struct cables_err *err);
void pgp_signed_release(struct pgp_signed *s);

#endif
