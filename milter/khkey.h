/*
 * khkey - private keys that stay in cables-keyholder: an EVP_PKEY that holds
 * only the public half of a local user's certificate and sends every
 * private operation (RSA decryption of a content key, ECDH, signing a
 * digest) over the keyholder protocol (khproto.h), so that CMS_decrypt()
 * and CMS_sign() run unchanged in the milter while the key never enters it.
 *
 * With OpenSSL 3.0 the key is a "foreign" legacy key (an RSA_METHOD or
 * EC_KEY_METHOD of ours), which routes EVP_PKEY_decrypt, EVP_PKEY_derive
 * and EVP_PKEY_sign through the legacy methods, hence through us; PKCS#1
 * v1.5 and OAEP key transport, ECDH key agreement, and RSA and ECDSA
 * signing are covered by tests/unit/test_khkey.c.
 *
 * A kh_transport carries one request to a keyholder and brings back its
 * reply (khclient.h is the real one; tests call khop directly).  The
 * transport must outlive every key made with it.  khkey_new() returns a new
 * EVP_PKEY owned by the caller (EVP_PKEY_free), or NULL with err set when
 * the certificate's key is neither RSA nor an EC key on a named curve.
 *
 * Why a private operation failed is kept per thread: khkey_failure() says,
 * after a failed CMS call, whether the keyholder could not be reached or
 * refused (KH_UNAVAILABLE / KH_LIMITED: the caller temp-fails) as opposed
 * to a message the key does not decrypt (KH_FAILED).  khkey_reset() clears it.
 */
#ifndef CABLES_KHKEY_H
#define CABLES_KHKEY_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "khproto.h"

struct kh_transport {
	cables_status (*call)(void *arg, const struct kh_request *req, struct kh_reply *rep, struct cables_err *err);
	void *arg;
};

EVP_PKEY *khkey_new(const struct kh_transport *t, X509 *cert, const char *address, const char *fingerprint,
    struct cables_err *err);

enum khkey_failure { KHKEY_NONE, KHKEY_DECLINED, KHKEY_UNREACHABLE };

void khkey_reset(void);
/* The worst failure since khkey_reset() on this thread; err gets its detail. */
enum khkey_failure khkey_failure(struct cables_err *err);

/*
 * The status of a CMS operation that used khkey keys, st, settled with what
 * the keyholder said since khkey_reset(): CABLES_ERR_IO when it could not be
 * reached (err: why), CABLES_ERR_CRYPTO when it declined, even if st is
 * CABLES_OK.  Given the recipient's certificate, CMS_decrypt() hides a
 * failed key unwrap (OpenSSL's countermeasure to padding oracles) and
 * decrypts the content with a random key, which passes CBC's padding check
 * one time in 256: its "success" is then garbage in place of the mail.
 */
cables_status khkey_settle(cables_status st, struct cables_err *err);

#endif
