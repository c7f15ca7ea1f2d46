/*
 * xsign - what a key-exchange signature covers (doc/key-exchange.md), shared
 * by keyd (which asks for signatures and verifies its peers') and
 * cables-keyholder (which alone holds ExchangeKey and signs).
 *
 * Ed25519 signs a message itself, not a digest, and a signed answer may be
 * megabytes, far more than a keyholder frame carries.  So an exchange
 * signature is Ed25519 over the fixed-size message
 *
 *     CONTEXT "-sha512" 0x00 || SHA-512(CONTEXT 0x00 || data)
 *
 * where CONTEXT is "cables-keys-v1" for answers and "cables-keys-request-v1"
 * for signed requests.  keyd hashes; the keyholder, given the kind and the
 * 64-byte digest, builds the message itself, so the exchange key signs
 * nothing but these two forms.
 */
#ifndef CABLES_XSIGN_H
#define CABLES_XSIGN_H

#include <stddef.h>
#include <stdint.h>

#define X_DIGEST_LEN 64		/* SHA-512 */
#define X_SIG_LEN 64		/* Ed25519 */
#define X_PUB_LEN 32		/* Ed25519 public key, raw */
#define X_SIGN_MSG_MAX (64 + X_DIGEST_LEN)

enum x_sign_kind { X_SIGN_ANSWER = 1, X_SIGN_REQUEST = 2 };

/* "cables-keys-v1" or "cables-keys-request-v1"; NULL for any other kind. */
const char *x_sign_context(int kind);

/* SHA-512(CONTEXT 0x00 || data); false for an unknown kind. */
int x_sign_digest(int kind, const void *data, size_t len, uint8_t digest[X_DIGEST_LEN]);

/* The message the signature covers, into out; its length, or 0 for an unknown kind. */
size_t x_sign_message(int kind, const uint8_t digest[X_DIGEST_LEN], uint8_t out[X_SIGN_MSG_MAX]);

#endif
