/*
 * seal - private keys encrypted at rest.
 *
 * The key store never holds a private key in the clear: it holds
 * AES-256-GCM(store key, private key DER) with a fresh 96-bit nonce and the
 * key's fingerprint as associated data, so a sealed blob cannot be moved to
 * another key's row without detection.  The 256-bit store key lives in its
 * own file (KeyStoreKey), 64 hex digits, mode 0600, created on first use;
 * a file readable by group or others is refused.
 *
 * Blob layout: "CS1" | nonce (12) | ciphertext | tag (16).
 * Plaintext buffers returned by seal_open() must be released with
 * seal_free_secret(), which wipes them.
 */
#ifndef CABLES_SEAL_H
#define CABLES_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SEAL_KEY_LEN 32

/* Read (or, when create is true and it does not exist, create) the store key. */
cables_status seal_key_load(const char *path, bool create, uint8_t key[SEAL_KEY_LEN],
    struct cables_err *err);

cables_status seal_close(const uint8_t key[SEAL_KEY_LEN], const char *aad,
    const uint8_t *plain, size_t plain_len, uint8_t **blob, size_t *blob_len,
    struct cables_err *err);

cables_status seal_open(const uint8_t key[SEAL_KEY_LEN], const char *aad,
    const uint8_t *blob, size_t blob_len, uint8_t **plain, size_t *plain_len,
    struct cables_err *err);

void seal_free_secret(uint8_t *p, size_t len);

#endif
