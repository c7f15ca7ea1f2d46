/*
 * smime - S/MIME with OpenSSL CMS: certificate checks, key generation,
 * loading certificates and keys from files, and encryption.
 *
 * Encryption streams: the content entity is read from memory (its header
 * fields) and a spool (its body) and the CMS structure is written, as
 * base64 in 76-column CRLF lines, to a byte_sink while it is produced, so
 * memory does not grow with the message.  The output is the body of an
 * RFC 8551 application/pkcs7-mime entity whose header fields are
 * smime_enveloped_fields.  EnvelopedData with AES-256-CBC by default (every
 * client reads it; gpgsm cannot read GCM), AuthEnvelopedData with
 * AES-256-GCM on request; RSA recipients get PKCS#1 v1.5 or OAEP(SHA-256)
 * key transport, EC recipients ECDH key agreement.
 *
 * Objects passed in are borrowed; objects returned (X509, EVP_PKEY,
 * STACK_OF(X509)) belong to the caller and are freed with the OpenSSL
 * functions.  A certificate that may not be used is CABLES_ERR_UNUSABLE
 * with the reason in err ("expired on 2026-01-01", "no rfc822Name for ...").
 */
#ifndef CABLES_SMIME_H
#define CABLES_SMIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "addr.h"
#include "config.h"
#include "sink.h"
#include "spool.h"
#include "status.h"

struct smime_field {
	const char *name;
	const char *value;
};

#define SMIME_OUTPUT_FIELDS 4

/* The header fields of the entity smime_encrypt() produces with cipher c. */
const struct smime_field *smime_output_fields(enum cipher_choice c);

struct smime_encrypt_opts {
	enum cipher_choice cipher;
	enum rsa_padding rsa_padding;
};

/*
 * Encrypt the entity head[0..head_len) followed by the spooled body (NULL:
 * no body) to every certificate in certs.  The certificates must have
 * passed smime_cert_check().
 */
cables_status smime_encrypt(const struct smime_encrypt_opts *o, STACK_OF(X509) *certs,
    const void *head, size_t head_len, const struct spool *body,
    struct byte_sink *out, struct cables_err *err);

/* Can cert be used to encrypt to addr (normalised) at time now? */
cables_status smime_cert_check(X509 *cert, const char *addr, const struct addr_opts *ao,
    time_t now, struct cables_err *err);

/* The email addresses a certificate names (rfc822Name SANs, then subject emailAddress). */
size_t smime_cert_emails(X509 *cert, char ***emails);
void smime_free_emails(char **emails, size_t n);

/* Lowercase hex SHA-256 of the DER encoding. */
void smime_cert_fingerprint(X509 *cert, char out[65]);

/* Validity as Unix time. */
void smime_cert_validity(X509 *cert, long long *not_before, long long *not_after);

/* One-line description of the public key ("RSA 3072", "EC P-256"). */
void smime_key_description(EVP_PKEY *key, char *out, size_t len);

X509 *smime_cert_from_der(const uint8_t *der, size_t len);

/*
 * A cache of parsed certificates, keyed by the SHA-256 of their DER
 * (computed on every lookup, so a changed store row is never answered from
 * a stale entry).  Decoding a certificate costs about 120 us with OpenSSL
 * 3.0; a hit costs a digest.  Direct-mapped and bounded: a collision just
 * evicts.  Thread-safe.  smime_cache_cert() returns a new reference (free
 * with X509_free) or NULL when der is not a certificate; a NULL cache
 * simply decodes.
 */
struct smime_cache;

struct smime_cache *smime_cache_new(size_t capacity);
void smime_cache_free(struct smime_cache *c);
X509 *smime_cache_cert(struct smime_cache *c, const uint8_t *der, size_t len);
void smime_cache_stats(struct smime_cache *c, unsigned long *hits, unsigned long *misses);
/* DER of cert, malloc'd; NULL on failure. */
uint8_t *smime_cert_to_der(X509 *cert, size_t *len);

enum smime_algo { SMIME_ALGO_RSA3072, SMIME_ALGO_P256 };

/* Parse "rsa3072" / "p256"; false if unknown. */
bool smime_algo_parse(const char *s, enum smime_algo *out);

/* A new key and a self-signed certificate for addr (rfc822Name SAN), valid days from now. */
cables_status smime_generate(const char *addr, enum smime_algo algo, unsigned int days,
    time_t now, X509 **cert, EVP_PKEY **key, struct cables_err *err);

/*
 * Read certificates and at most one private key from a file: PEM
 * (certificates and/or a private key), DER certificate, or PKCS#12
 * (passphrase may be NULL for none).
 */
cables_status smime_load_file(const char *path, const char *passphrase,
    STACK_OF(X509) **certs, EVP_PKEY **key, struct cables_err *err);

/* The private key as DER PKCS#8 (malloc'd, wipe with seal_free_secret) and back. */
cables_status smime_key_to_der(EVP_PKEY *key, uint8_t **der, size_t *len, struct cables_err *err);
EVP_PKEY *smime_key_from_der(const uint8_t *der, size_t len);

/* True when key is the private half of cert's public key. */
bool smime_key_matches(X509 *cert, EVP_PKEY *key);

#endif
