/*
 * pgp_key - OpenPGP v4 key packets read without gpg (RFC 4880 section 5.5,
 * RFC 6637, draft-ietf-openpgp-rfc4880bis-10 for EdDSA and Curve25519),
 * and the session-key arithmetic that goes with them, so that a secret key
 * can be used by cables-keyholder and the milter can open a session-key
 * packet with the keyholder's help while gpg never holds the secret.
 *
 * pgp_key_find() walks a transferable key (public or secret, binary, as
 * gpg --export[-secret-keys] writes it) for the (sub)key with a given key
 * ID (NULL: the first key packet that can be read, the primary key).  Supported: RSA (algorithms 1, 2, 3), ECDH (18) over Curve25519 and
 * NIST P-256, ECDSA (19) over P-256, EdDSA (22) over Ed25519.  A secret part must be unprotected
 * (S2K usage 0; the key store seals it) and its checksum must match.
 * Everything else is CABLES_ERR_UNUSABLE with what it is; bytes that are
 * not a key are CABLES_ERR_SYNTAX; no such key ID is CABLES_ERR_NOTFOUND.
 * A struct pgp_keypkt points into the caller's bytes: it owns nothing and
 * lives as long as they do.
 *
 * pgp_key_private() makes an EVP_PKEY (owned by the caller) of a secret
 * (sub)key and checks that its public half is the packet's: RSA, X25519
 * (gpg keeps the Curve25519 scalar as a big-endian MPI, i.e. reversed
 * against RFC 7748 and OpenSSL's raw private key), Ed25519 (the seed), EC
 * P-256.
 *
 * pgp_ecdh_unwrap() is RFC 6637 section 8 after the shared secret: the KDF
 * (the key's hash, its parameters, "Anonymous Sender    ", the recipient's
 * fingerprint) and AES key unwrap (RFC 3394); pgp_session_key_decode()
 * checks an unwrapped or RSA-decrypted session key (algorithm, key,
 * checksum, and for ECDH the PKCS#5 padding) and writes it as GPGME's
 * override-session-key wants it, "ALGO:HEX".  Buffers holding secrets are
 * wiped before these functions return.
 */
#ifndef CABLES_PGP_KEY_H
#define CABLES_PGP_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "status.h"

enum pgp_pk_algo { PGP_PK_RSA = 1, PGP_PK_RSA_E = 2, PGP_PK_RSA_S = 3, PGP_PK_ECDH = 18, PGP_PK_ECDSA = 19,
    PGP_PK_EDDSA = 22 };
enum pgp_curve { PGP_CURVE_NONE, PGP_CURVE_25519, PGP_CURVE_ED25519, PGP_CURVE_P256 };

struct pgp_mpi {
	const uint8_t *p;	/* the value's bytes, big-endian, without the bit count */
	size_t len;
};

struct pgp_keypkt {
	unsigned int tag;		/* 5 secret key, 6 public key, 7 secret subkey, 14 public subkey */
	unsigned int algo;		/* enum pgp_pk_algo */
	enum pgp_curve curve;
	uint8_t fpr[20];		/* v4 fingerprint */
	char keyid[17];			/* its last 8 bytes, lowercase hex */
	struct pgp_mpi n, e;		/* RSA */
	const uint8_t *oid;		/* ECDH, ECDSA, EdDSA: the curve's OID */
	size_t oid_len;
	struct pgp_mpi point;		/* ECDH, ECDSA, EdDSA: the public point (0x40 || x, or 04 || x || y) */
	unsigned int kdf_hash, kdf_cipher;	/* ECDH */
	bool secret;			/* a secret packet: the MPIs below are set */
	struct pgp_mpi d, p, q, u;	/* RSA; for the curves the secret is d */
};

/*
 * What the key's own signatures in a transferable key (the store's export:
 * trusted, not verified here) say about (sub)key keyid: its key flags
 * (RFC 4880 5.2.3.21: 0x01 certify, 0x02 sign, 0x04 | 0x08 encrypt) from
 * the newest self-signature (user ID certification or direct-key for the
 * primary, subkey binding for a subkey) issued by the primary key, 0 when
 * none carries flags; *revoked when the primary issued a revocation of it
 * (0x20, 0x28).  CABLES_ERR_NOTFOUND without that key ID.
 */
#define PGP_FLAG_CERTIFY 0x01
#define PGP_FLAG_SIGN 0x02
#define PGP_FLAG_ENCRYPT 0x0c
cables_status pgp_key_usage(const uint8_t *data, size_t len, const char keyid[17], unsigned int *flags, bool *revoked,
    struct cables_err *err);

#define PGP_SESSION_KEY_STR (4 + 2 * 32 + 1)	/* "9:" and 64 hex digits */

cables_status pgp_key_find(const uint8_t *data, size_t len, const char keyid[17], struct pgp_keypkt *k,
    struct cables_err *err);

EVP_PKEY *pgp_key_private(const struct pgp_keypkt *k, struct cables_err *err);

/*
 * The key-encryption key from the shared secret (the X25519 output, or the
 * x coordinate for P-256) and k's KDF parameters, then the unwrapped
 * session key into m (room for wrapped_len bytes), *mlen its length.
 */
cables_status pgp_ecdh_unwrap(const struct pgp_keypkt *k, const uint8_t *shared, size_t shared_len,
    const uint8_t *wrapped, size_t wrapped_len, uint8_t *m, size_t *mlen, struct cables_err *err);

/* algo || key || checksum [|| PKCS#5 padding when padded] -> "ALGO:HEX"; m is not changed. */
cables_status pgp_session_key_decode(const uint8_t *m, size_t mlen, bool padded, char out[PGP_SESSION_KEY_STR],
    struct cables_err *err);

#endif
