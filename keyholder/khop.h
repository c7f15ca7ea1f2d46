/*
 * khop - the private-key operations cables-keyholder performs for the
 * milter, one request at a time, on a key it has unsealed itself.
 *
 * khop_perform() checks that the operation suits the key (RSA operations on
 * an RSA key, ECDH and ECDSA on an EC key) and the bounds of the data, and
 * refuses what would make the key a general oracle:
 *   - KH_OP_RSA_DECRYPT checks PKCS#1 v1.5 type 2 padding itself and answers
 *     only the unpadded content (at most KHOP_KEY_MAX bytes: a content key);
 *   - KH_OP_RSA_DECRYPT_OAEP answers the raw block only when it is a valid
 *     OAEP encoding with an empty label for one of SHA-1/256/384/512 (MGF1
 *     with any of them), so the raw decryption is no signing oracle;
 *   - KH_OP_ECDH validates the peer point on the key's curve; on an X25519
 *     key (OpenPGP Curve25519) it takes a 32-byte u coordinate and refuses
 *     a small-order one (an all-zero result);
 *   - KH_OP_SIGN signs only a digest of the length of SHA-256/384/512 (or
 *     SHA-1 and SHA-224 for ECDSA, whose callers do not say which); on an
 *     Ed25519 key (OpenPGP EdDSA) a 32/48/64-byte digest, signed as a
 *     message with pure Ed25519, as RFC 4880bis EdDSA signs the hash;
 *     for an OpenPGP key (KH_KEY_PGP) never a digest but the content's
 *     SHA-256 state and the signature's hashed part (pgp_sign.h): the
 *     digest is finished here, so that only a document signature of this
 *     (sub)key, created now, can be made (no certification, subkey binding,
 *     revocation or direct-key signature with a primary key).
 * It never logs and never returns key material; the reply it fills may
 * hold a secret (a content key, a shared secret): the caller wipes it.
 * Returns KH_OK or KH_FAILED (with the reason in err).
 */
#ifndef CABLES_KHOP_H
#define CABLES_KHOP_H

#include <openssl/evp.h>

#include "khproto.h"
#include "pgp_key.h"

#define KHOP_KEY_MAX 64		/* the longest content-encryption key unwrapped with PKCS#1 v1.5 */

/* Whether an EC key's curve has cofactor 1 (an unknown answer is "no"): ECDH then needs no order check. */
bool khop_cofactor_one(EVP_PKEY *key);
enum kh_status khop_perform(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err);

/*
 * KH_OP_PGP_ECDH_UNWRAP with an OpenPGP ECDH key and k, its (sub)key's
 * packet (the KDF's parameters and fingerprint): r's data is the ephemeral
 * key (32 bytes on Curve25519, a 65-byte point on P-256) and the wrapped
 * session key; ECDH as KH_OP_ECDH, then the RFC 6637 KDF, AES key unwrap
 * and the session key's checksum (pgp_key.h).  The answer: the unwrapped
 * algo || key || checksum || padding.  KH_FAILED when any step fails: a
 * junk session-key packet fails here, where its cost is counted.
 */
enum kh_status khop_pgp_ecdh_unwrap(EVP_PKEY *key, const struct pgp_keypkt *k, const struct kh_request *r,
    struct kh_reply *out, struct cables_err *err);

/*
 * The answer to a KH_OP_RSA_DECRYPT that failed, when the keyholder may no
 * longer say so (KeyholderFailureRateLimit spent): implicit rejection, as
 * OpenSSL 3.2 and draft-irtf-cfrg-rsa-guidance do it.  A "content key" of
 * 0 to KHOP_KEY_MAX bytes (uniform length, as a padding-conforming block
 * chosen by an attacker would give) made from HMAC-SHA-256 under the
 * SHA-256 of the private exponent over the block: the same block gets the
 * same answer every time, as a block that decrypts does, and nothing
 * tells it from one that decrypts but the mail that will not open with
 * it.  KH_OK, or KH_FAILED when no HMAC could be made.
 */
enum kh_status khop_substitute(EVP_PKEY *key, const struct kh_request *r, struct kh_reply *out, struct cables_err *err);

#endif
