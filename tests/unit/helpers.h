/* helpers - shared by the unit tests: a memory sink, base64, CMS decryption, temp dirs. */
#ifndef CABLES_TEST_HELPERS_H
#define CABLES_TEST_HELPERS_H

#include <stdbool.h>
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

/*
 * A recording MTA (mta.h): header operations as lines in ops ("chg NAME
 * INDEX VALUE", "add NAME VALUE", "ins INDEX NAME VALUE", "(delete)" for
 * removals), the replacement body in body.  fail_body_at > 0 makes that
 * replacebody call fail; fail_headers makes every header operation fail.
 */
#include "mta.h"

struct fake_mta {
	struct mta mta;
	struct buf body;
	struct buf ops;
	int body_calls;
	int fail_body_at;
	bool fail_headers;
};

void fake_mta_init(struct fake_mta *f, bool leadspc);
void fake_mta_release(struct fake_mta *f);
/* Let the milter add recipients too (what On-KeyNotFound hold needs; off by default, as an MTA may refuse). */
void fake_mta_allow_hold(struct fake_mta *f);

/*
 * A milter environment for tests: a config (LocalDomains a.test, TempDir
 * and KeyStore in a fresh directory, plus extra_config lines), its key
 * store, a random store key, a certificate cache and a recording MTA.
 * milter_fixture_store() puts a certificate (and its private key, sealed,
 * when key is not NULL) into the store for addr.
 */
#include "config.h"
#include "keys.h"
#include "keystore.h"

struct milter_fixture {
	char *dir;
	struct config *cfg;
	struct keystore *ks;
	uint8_t seal_key[32];
	struct milter_env env;
	struct fake_mta fake;
};

struct milter_fixture *milter_fixture_new(const char *extra_config, time_t now);
void milter_fixture_free(struct milter_fixture *fx);
void milter_fixture_store(struct milter_fixture *fx, const char *addr, X509 *cert, EVP_PKEY *key);

/* A fresh temporary directory under $TMPDIR (or /tmp); caller frees the string. */
char *test_tempdir(void);
void test_rmdir(const char *dir);

#endif
