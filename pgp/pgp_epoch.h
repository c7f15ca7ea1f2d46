/*
 * pgp_epoch - OpenPGP epoch keys (doc/key-exchange.md, "Forward secrecy:
 * epoch keys"), made and checked without gpg.
 *
 * An epoch key is a short-lived Curve25519 ECDH encryption subkey of a
 * user's long-term OpenPGP key, bound by a standard subkey binding
 * signature (type 0x18, SHA-256) that the user's primary key makes, with
 * a key expiration time and the key flags 0x0c (encrypt) only.  Its
 * public form, what an exchange answer carries and the store row holds, is
 * a transferable public key: the long-term key's primary key packet and
 * its user IDs with their signatures, as in the long-term key, then the
 * epoch subkey and its binding signature, and nothing else.  So a sender
 * encrypts to the epoch subkey alone, and gpg or rnp can check the chain.
 *
 * pgp_epoch_make() runs in cables-keyholder only: primary is the secret
 * primary key packet (pgp_key_find() on the unsealed long-term secret) and
 * key its private key (pgp_key_private()).  *pub gets the public form,
 * *secret the unprotected secret subkey packet alone (tag 7, for the seal;
 * wiped and freed by pgp_epoch_secret_free()), info its fingerprint and
 * times.
 *
 * pgp_epoch_check() is what an asking keyd and the keyholder check before
 * using one: data is the public form above, for the long-term key lt (a
 * transferable public key whose primary key packet must be the same,
 * byte for byte); the binding signature verifies with that primary key,
 * allows encryption only, and the subkey is valid at now, for at most
 * max_validity seconds in all.  CABLES_ERR_UNUSABLE with the reason
 * otherwise (CABLES_ERR_SYNTAX for bytes that are not a key).
 *
 * Supported primary keys: EdDSA (Ed25519), RSA, ECDSA (P-256).
 */
#ifndef CABLES_PGP_EPOCH_H
#define CABLES_PGP_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "pgp_key.h"
#include "status.h"
#include "util.h"

struct pgp_epoch_info {
	char fpr[41];		/* the epoch subkey's v4 fingerprint, lowercase hex as the store has them */
	char keyid[17];		/* its key ID, lowercase hex (pgp_key.h) */
	char primary[41];	/* the long-term primary key's fingerprint, lowercase hex */
	long long created;	/* the subkey's creation time */
	long long not_after;	/* creation time + key expiration time */
};

cables_status pgp_epoch_make(const uint8_t *lt, size_t lt_len, const struct pgp_keypkt *primary, EVP_PKEY *key,
    long long created, long long not_after, struct buf *pub, uint8_t **secret, size_t *secret_len,
    struct pgp_epoch_info *info, struct cables_err *err);
void pgp_epoch_secret_free(uint8_t *secret, size_t len);

cables_status pgp_epoch_check(const uint8_t *data, size_t len, const uint8_t *lt, size_t lt_len, long long now,
    long long max_validity, struct pgp_epoch_info *info, struct cables_err *err);

#endif
