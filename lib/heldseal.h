/*
 * heldseal - a held message sealed so that cables-keyd cannot read it
 * (doc/hold.md, "Who reads a held message").
 *
 * The milter seals every message it holds with AES-256-GCM (seal.h) under a
 * key of that message alone, which only cables-keyholder can derive from
 * KeyStoreKey and gives only to the milter's User and root
 * (KH_OP_HELD_KEY): K = HMAC-SHA256(M, ID || salt), where M =
 * HMAC-SHA256(KeyStoreKey, "cables held-message keys v1"), ID the record's
 * 16 hex digits and salt 32 random bytes kept with the blob.  keyd, which
 * faces the network and writes the same store, can neither read a held
 * message nor make one (the key is also what authenticates it).
 *
 * The associated data binds the blob to its record's ID, envelope sender,
 * SASL login and recipients: a blob moved to another record (other
 * recipients, such as an attacker's), or a login added, does not open.
 *
 * Blob layout: "CH1" | salt (32) | seal.h's blob.
 */
#ifndef CABLES_HELDSEAL_H
#define CABLES_HELDSEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"
#include "seal.h"
#include "status.h"

#define HELD_SALT_LEN 32
#define HELD_KEY_LEN 32
/* What KH_OP_HELD_KEY's data is: the ID's hex digits, then the salt. */
#define HELD_KEY_REQUEST_LEN (KEYSTORE_HELD_ID_LEN + HELD_SALT_LEN)

/* Longest SASL login kept with a held message; a longer one (or one with a control character) is not kept. */
#define HELD_LOGIN_MAX 255

bool held_login_ok(const char *login);

/* The keyholder's derivation (id: KEYSTORE_HELD_ID_LEN hex digits). */
void held_key_derive(const uint8_t store_key[SEAL_KEY_LEN], const char *id, const uint8_t salt[HELD_SALT_LEN],
    uint8_t out[HELD_KEY_LEN]);

/* Gets the key of record id and salt (the milter: from the keyholder). */
typedef cables_status held_key_fn(void *arg, const char *id, const uint8_t salt[HELD_SALT_LEN],
    uint8_t key[HELD_KEY_LEN], struct cables_err *err);

/* Seal plain for the record h (its id, sender and recipients set): a malloc'd blob. */
cables_status held_seal(held_key_fn *key_fn, void *arg, const struct held_record *h, const uint8_t *plain,
    size_t plain_len, uint8_t **blob, size_t *blob_len, struct cables_err *err);

/*
 * The token of the resubmitted copy's "X-Cables-Release: ID WHEN TOKEN"
 * field for the sealed record h (its message read), released at when (a
 * Unix time): HMAC-SHA256 under the message's key of when, the ID, the
 * sender and the login, 32 hex digits.  Only the milter (through the
 * keyholder) can make it, so keyd, which reads and writes the record,
 * cannot make a message of its own pass for a release (whose login the
 * milter signs with), nor change the login it names; and one that leaked
 * is good for HELD_RELEASE_VALID seconds after when only.
 */
#define HELD_RELEASE_VALID 3600
cables_status held_release_token(held_key_fn *key_fn, void *arg, const struct held_record *h, long long when,
    char out[KEYSTORE_HELD_TOKEN_LEN + 1], struct cables_err *err);

/*
 * Open h's sealed message (h->message): *plain is released with
 * seal_free_secret().  CABLES_ERR_CRYPTO when it does not open (changed, or
 * moved from another record); the key function's error when it fails.
 */
cables_status held_unseal(held_key_fn *key_fn, void *arg, const struct held_record *h, uint8_t **plain,
    size_t *plain_len, struct cables_err *err);

#endif
