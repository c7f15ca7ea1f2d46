/*
 * khpgp - OpenPGP private-key operations through cables-keyholder, so that
 * neither the milter nor its gpg ever holds an OpenPGP secret key
 * (doc/privsep.md).
 *
 * khpgp_session_key() opens one public-key encrypted session-key packet
 * (its body, pgp_packet.h) addressed to a (sub)key of the store's OpenPGP
 * key primary (40 hex digits) of the local address addr, whose public key
 * is pub (the store row's bytes): RSA asks the keyholder for the PKCS#1
 * v1.5 decryption of the block; ECDH (Curve25519, P-256) asks it for the
 * shared secret only, and the KDF and key unwrap (RFC 6637) happen here.
 * The result is "ALGO:HEX" for pgp_decrypt_with(); used gets the
 * fingerprint of the (sub)key.  The caller wipes out after use.
 *
 * khpgp_sign() (below) builds an OpenPGP signature here and has only its
 * private-key step done by the keyholder.
 *
 * Errors: CABLES_ERR_IO when the keyholder cannot be reached or answers
 * unavailable / rate-limited (the message is temp-failed and retried);
 * otherwise a property of this message or key (refused, does not decrypt,
 * unsupported algorithm) with the reason.
 */
#ifndef CABLES_KHPGP_H
#define CABLES_KHPGP_H

#include <stddef.h>
#include <stdint.h>

#include "khkey.h"
#include "pgp.h"
#include "pgp_key.h"
#include "pgp_sign.h"

cables_status khpgp_session_key(const struct kh_transport *t, const char *addr, const char *primary,
    const uint8_t *pub, size_t pub_len, const uint8_t *pkesk, size_t pkesk_len, char out[PGP_SESSION_KEY_STR],
    char used[PGP_FPR_LEN + 1], struct cables_err *err);

/*
 * Sign content as addr with the (sub)key keyid of OpenPGP key primary
 * (public key pub): pgp_sign_mime() with the keyholder's SIGN (RSA PKCS#1
 * v1.5 of the SHA-256 DigestInfo, built there; Ed25519 of the digest).
 * Errors as above; out is released by the caller only on success.
 */
cables_status khpgp_sign(const struct kh_transport *t, const char *addr, const char *primary, const uint8_t *pub,
    size_t pub_len, const char *keyid, time_t now, const struct entity_src *content, struct pgp_signed *out,
    struct cables_err *err);

#endif
