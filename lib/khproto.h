/*
 * khproto - the cables-keyholder wire protocol: fixed-size binary frames
 * between cables-milter (the client) and cables-keyholder (the only process
 * that can unseal private keys).
 *
 * Every request is exactly KH_REQUEST_SIZE bytes and every reply exactly
 * KH_REPLY_SIZE bytes, so neither side ever sizes a buffer from the peer:
 *
 *   request: "CKH1" | op (1) | key kind (1) | digest nid (2) | address length (2) |
 *            data length (2) | fingerprint (64, lowercase hex) |
 *            address (KH_ADDR_MAX, zero padded) | data (KH_DATA_MAX, zero padded)
 *   reply:   "CKR1" | status (1) | 0 (1) | data length (2) | data (KH_DATA_MAX)
 *
 * Integers are big-endian.  kh_request_decode() and kh_reply_decode() are
 * strict: a wrong magic, an unknown op or status, a length out of range, a
 * byte that is not allowed where it is, or non-zero padding is a protocol
 * error (CABLES_ERR_SYNTAX), and the keyholder drops such a peer instead of
 * guessing what it meant.  Encoders never fail on a request built within
 * the limits below; they return CABLES_ERR_ARG otherwise.
 *
 * No module here owns heap memory: requests and replies are plain structs.
 * Callers holding secrets in them (a decrypted key block, a shared secret)
 * wipe them with OPENSSL_cleanse() after use.
 */
#ifndef CABLES_KHPROTO_H
#define CABLES_KHPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define KH_ADDR_MAX 256		/* address bytes, NUL excluded, at most KH_ADDR_MAX - 1 */
#define KH_FPR_LEN 64		/* SHA-256 of the DER certificate, hex */
#define KH_DATA_MAX 1024	/* an RSA-8192 block */
#define KH_REQUEST_SIZE (4 + 1 + 1 + 2 + 2 + 2 + KH_FPR_LEN + KH_ADDR_MAX + KH_DATA_MAX)
#define KH_REPLY_SIZE (4 + 1 + 1 + 2 + KH_DATA_MAX)
#define KH_VOUCH_MAX 8		/* digests in a KH_OP_VOUCH answer: what keyd serves of one address */

enum kh_op {
	KH_OP_RSA_DECRYPT = 1,	/* PKCS#1 v1.5 decryption of one block; the result is the unpadded key */
	KH_OP_RSA_DECRYPT_OAEP,	/* raw decryption, answered only when the block is a valid OAEP encoding */
	KH_OP_ECDH,		/* ECDH with a peer point (X9.62 octets); the shared x coordinate */
	KH_OP_SIGN,		/* sign a digest: RSA PKCS#1 v1.5 DigestInfo (nid = digest) or ECDSA (DER) */
	KH_OP_EXCHANGE_SIGN,	/* keyd only: Ed25519 with ExchangeKey over lib/xsign.h's message; address "@DOMAIN",
				 * data kind (1) || SHA-512 (64), nid NID_sha512, fingerprint 64 '0's;
				 * the answer: signature (64) || public key (32) */
	KH_OP_PGP_ECDH_UNWRAP,	/* OpenPGP ECDH key only: the ephemeral key (32-byte u, or 65-byte P-256 point) ||
				 * the wrapped session key; the keyholder does ECDH, the RFC 6637 KDF and the AES
				 * key unwrap, so it sees a junk session-key packet fail; the answer: the
				 * unwrapped algo || key || checksum || PKCS#5 padding */
	KH_OP_EPOCH_CURRENT,	/* keyd only: the address's current epoch key as the keyholder checked it (its seal
				 * opens with KeyStoreKey, its private key matches, the current long-term
				 * certificate issued it); data one 0 byte, fingerprint 64 '0's; the answer:
				 * SHA-256 of that epoch certificate's DER (32), or nothing when there is none */
	KH_OP_VOUCH,		/* keyd only: which long-term keys of a local address the keyholder holds (its
				 * row's seal opens with KeyStoreKey under its fingerprint, the fingerprint is its
				 * public key's, the private key matches); data one 0 byte, fingerprint 64 '0's;
				 * the answer: SHA-256 of each such key's public data (32 each, at most
				 * KH_VOUCH_MAX), newest first */
	KH_OP_HELD_KEY,		/* the milter's User and root only: the key that seals one held message
				 * (lib/heldseal.h); address "@held", fingerprint 64 '0's, data the record's
				 * ID (16 hex digits) || salt (32); the answer: the key (32) */
	KH_OP_MAX
};

/*
 * Which key the fingerprint names.  KH_KEY_SMIME: the SHA-256 of a local
 * user's certificate.  KH_KEY_PGP: an OpenPGP key of the store, as the
 * primary key's v4 fingerprint (40 hex digits), the key ID of the (sub)key
 * to use (16), and "00000000" (kh_pgp_fingerprint() writes it; the decoder
 * refuses any other padding).  The ops are the same primitives on either
 * kind: RSA_DECRYPT (PKCS#1 v1.5) on an OpenPGP RSA key answers
 * algo || session key || checksum; ECDH on a Curve25519 key takes the
 * 32-byte u coordinate and answers the 32-byte X25519 output; SIGN takes
 * no digest but the content's SHA-256 state and the signature's hashed
 * part (pgp_sign.h), which the keyholder checks and finishes into the
 * digest itself; on an Ed25519 key it signs that digest with pure Ed25519
 * (legacy OpenPGP EdDSA) and answers r || s.
 */
enum kh_key {
	KH_KEY_SMIME = 0,
	KH_KEY_PGP,
	KH_KEY_MAX
};

enum kh_status {
	KH_OK = 0,
	KH_REFUSED,		/* not a local address, or not this address's key */
	KH_FAILED,		/* the operation failed (bad padding, point not on the curve, ...) */
	KH_LIMITED,		/* the address's rate limit is exhausted */
	KH_UNAVAILABLE,		/* the key store or the store key cannot be read now */
	KH_STATUS_MAX
};

struct kh_request {
	enum kh_op op;
	enum kh_key key;		/* what fingerprint names; 0 (S/MIME) unless set */
	int md_nid;			/* KH_OP_SIGN with RSA: the digest's NID; else 0 */
	char fingerprint[KH_FPR_LEN + 1];
	char address[KH_ADDR_MAX];
	uint8_t data[KH_DATA_MAX];
	size_t len;
};

struct kh_reply {
	enum kh_status status;
	uint8_t data[KH_DATA_MAX];
	size_t len;
};

const char *kh_op_name(enum kh_op op);
const char *kh_status_name(enum kh_status st);
const char *kh_key_name(enum kh_key k);

/* The KH_KEY_PGP fingerprint field of primary (40 hex digits) and keyid (16); false when they are not that. */
bool kh_pgp_fingerprint(char out[KH_FPR_LEN + 1], const char *primary, const char *keyid);

cables_status kh_request_encode(uint8_t out[KH_REQUEST_SIZE], const struct kh_request *r, struct cables_err *err);
cables_status kh_request_decode(struct kh_request *r, const uint8_t in[KH_REQUEST_SIZE], struct cables_err *err);
cables_status kh_reply_encode(uint8_t out[KH_REPLY_SIZE], const struct kh_reply *r, struct cables_err *err);
cables_status kh_reply_decode(struct kh_reply *r, const uint8_t in[KH_REPLY_SIZE], struct cables_err *err);

#endif
