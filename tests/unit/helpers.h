/* helpers - shared by the unit tests: a memory sink, base64, CMS decryption, temp dirs. */
#ifndef CABLES_TEST_HELPERS_H
#define CABLES_TEST_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sink.h"
#include "util.h"

/* A byte_sink collecting into a buf; fail_after > 0 makes the n-th write fail. */
struct mem_sink {
	struct byte_sink sink;
	struct buf data;
	size_t writes;
	size_t max_chunk;
	size_t fail_after;
};

void mem_sink_init(struct mem_sink *s);
void mem_sink_release(struct mem_sink *s);

/* Decode base64 text (any line breaks); NULL on bad input. */
uint8_t *test_b64_decode(const char *text, size_t len, size_t *out_len);

/* Decrypt DER CMS with cert+key; returns malloc'd plaintext or NULL. */
uint8_t *test_cms_decrypt(const uint8_t *der, size_t len, X509 *cert, EVP_PKEY *key, size_t *out_len);

/* A fresh temporary directory under $TMPDIR (or /tmp); caller frees the string. */
char *test_tempdir(void);
void test_rmdir(const char *dir);

#endif
