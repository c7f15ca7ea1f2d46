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
#include "entity.h"
#include "pad.h"
#include "sink.h"
#include "spool.h"
#include "status.h"
#include "util.h"

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
 * Encrypt the entity to every certificate in certs.  The certificates must
 * have passed smime_cert_check().
 */
cables_status smime_encrypt(const struct smime_encrypt_opts *o, STACK_OF(X509) *certs,
    const struct entity_src *in, struct byte_sink *out, struct cables_err *err);

/*
 * What smime_encrypt() with o makes of n entity bytes, given in at most
 * pieces entity_src pieces, for these n_certs recipients, as lib/pad.h's
 * wire(n) = fixed + ceil(n * num / den): the base64 body the MTA sends.
 * It is a few bytes high, never low: padding fills a size bucket by it
 * (doc/header-protection.md, "Wire sizes").
 */
void smime_pad_cost(const struct smime_encrypt_opts *o, X509 *const *certs, size_t n_certs, size_t pieces,
    struct pad_cost *c);

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
/*
 * Unsealed private keys by the fingerprint of their certificate, so that a
 * busy server does not decode the same key for every message.  The key
 * material stays in this process, which disables core dumps; EVP_PKEY_free
 * wipes it on eviction.  get returns a new reference or NULL.
 */
EVP_PKEY *smime_cache_key_get(struct smime_cache *c, const char *fingerprint);
void smime_cache_key_put(struct smime_cache *c, const char *fingerprint, EVP_PKEY *key);
/* DER of cert, malloc'd; NULL on failure. */
uint8_t *smime_cert_to_der(X509 *cert, size_t *len);

enum smime_algo { SMIME_ALGO_RSA3072, SMIME_ALGO_P256 };

/* Parse "rsa3072" / "p256"; false if unknown. */
bool smime_algo_parse(const char *s, enum smime_algo *out);

/* A new key and a self-signed certificate for addr (rfc822Name SAN), valid days from now. */
cables_status smime_generate(const char *addr, enum smime_algo algo, unsigned int days,
    time_t now, X509 **cert, EVP_PKEY **key, struct cables_err *err);

/*
 * An epoch key for addr (doc/key-exchange.md, "Forward secrecy"): a new
 * P-256 key for key agreement in a certificate valid from not_before to
 * not_after, issued by the long-term certificate parent and signed with
 * its private key parent_key.
 */
cables_status smime_epoch_issue(X509 *parent, EVP_PKEY *parent_key, const char *addr,
    long long not_before, long long not_after, X509 **cert, EVP_PKEY **key, struct cables_err *err);

/*
 * Read certificates and at most one private key from a file: PEM
 * (certificates and/or a private key), DER certificate, or PKCS#12
 * (passphrase may be NULL for none).
 */
cables_status smime_load_file(const char *path, const char *passphrase,
    STACK_OF(X509) **certs, EVP_PKEY **key, struct cables_err *err);

/*
 * Signing.  smime_sign() signs an entity (detached, SHA-256, with the
 * signer's certificate and chain) and returns the pieces of the
 * multipart/signed entity that carries it: the new Content-Type value, the
 * text before the signed entity (preamble and first boundary) and the text
 * after it (the signature part and the closing boundary).  The
 * multipart/signed entity is prologue + entity + epilogue, so the signed
 * bytes themselves are never copied.  The boundary is random.
 */
struct smime_signed {
	char content_type[200];
	struct buf prologue;
	struct buf epilogue;
};

cables_status smime_sign(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain,
    const struct entity_src *content, struct smime_signed *out, struct cables_err *err);
void smime_signed_release(struct smime_signed *s);

/* Can cert sign for addr at time now (validity, address, digitalSignature, emailProtection)? */
cables_status smime_cert_check_signing(X509 *cert, const char *addr, const struct addr_opts *ao,
    time_t now, struct cables_err *err);

/*
 * Verification.  The signature must verify over the exact bytes (else
 * invalid); the signer is trusted when its certificate chains to a trust
 * anchor for S/MIME signing at time now, or else when known() says the key
 * store holds that very certificate (by_store: the caller knows for which
 * address), else untrusted, with the reason.
 */
enum smime_sig_status { SMIME_SIG_VALID, SMIME_SIG_UNTRUSTED, SMIME_SIG_INVALID };

struct smime_verify_ctx {
	X509_STORE *anchors;			/* may be NULL */
	bool (*known)(void *arg, X509 *cert);	/* may be NULL */
	void *arg;
	time_t now;
	const char *tmpdir;
};

struct smime_sig {
	enum smime_sig_status status;
	char signer[256];	/* first email address of the signer's certificate, or "" */
	char reason[256];	/* why untrusted or invalid */
	X509 *cert;		/* the signer's certificate (a reference), or NULL */
	bool by_store;		/* valid through known(), not through the anchors */
};

const char *smime_sig_status_name(enum smime_sig_status s);
void smime_sig_release(struct smime_sig *sig);

/*
 * Verify a multipart/signed body (bytes [from, to) of sp) with the given
 * boundary.  Errors in the MIME structure itself (no boundary, no
 * signature part) are CABLES_ERR_SYNTAX with the reason; a signature that
 * does not verify is CABLES_OK with sig->status invalid.
 */
cables_status smime_verify_multipart(const struct smime_verify_ctx *ctx, const char *boundary,
    const struct spool *sp, off_t from, off_t to, struct smime_sig *sig, struct cables_err *err);

/* Verify an opaque signed-data body (base64 or binary) starting at from. */
cables_status smime_verify_opaque(const struct smime_verify_ctx *ctx, const struct spool *sp, off_t from,
    bool base64, struct smime_sig *sig, struct cables_err *err);

/* TrustAnchors: CA certificates from a PEM file or a hashed directory. */
X509_STORE *smime_anchors_load(const char *path, struct cables_err *err);

/* BIOs over spools: writing appends; reading yields bytes [from, to). */
BIO *spool_bio_writer(struct spool *sp);
BIO *spool_bio_reader(const struct spool *sp, off_t from, off_t to);

/*
 * An encrypted S/MIME entity, opened for decryption.  The body (base64 or
 * binary) is decoded into a spool in tmpdir and its CMS structure parsed
 * without its content (cms_detach.h); decryption then streams the content
 * from that spool.  smime_envelope_free() releases everything (NULL is
 * fine).  Errors say what is wrong with the input: "bad base64 ...",
 * "truncated base64", "CMS structure truncated ...", "not encrypted
 * (signed data)".
 */
struct smime_envelope;

cables_status smime_envelope_open(const struct spool *body, off_t from, bool base64,
    const char *tmpdir, struct smime_envelope **out, struct cables_err *err);
void smime_envelope_free(struct smime_envelope *e);

/*
 * Is the opened envelope well-formed as a whole: nothing but white space
 * after the ContentInfo, at least one RecipientInfo, and content octets
 * whose encoding holds to the end?  Mail that only claims to be encrypted
 * must not pass as ciphertext.
 */
cables_status smime_envelope_check(struct smime_envelope *e, struct cables_err *err);

/* True when a RecipientInfo names cert (issuer and serial, or subject key identifier). */
bool smime_envelope_names(const struct smime_envelope *e, X509 *cert);
/*
 * Does a recipient of e name a certificate that issuer issued (by issuer
 * and serial number)?  The milter asks, for mail it cannot open, whether
 * it was encrypted to an epoch key its user's long-term certificate issued
 * and that is gone (doc/key-exchange.md, "Forward secrecy: epoch keys").
 */
bool smime_envelope_names_issuer(const struct smime_envelope *e, X509 *issuer);

/* Content-encryption algorithm as OpenSSL names it ("aes-256-cbc"), or "". */
const char *smime_envelope_algorithm(const struct smime_envelope *e);

/*
 * Decrypt with key (for cert).  On success *plain is a new spool (in the
 * envelope's tmpdir, owned by the caller) holding the whole content, which
 * decrypted completely and, for AuthEnvelopedData, whose tag verified; on
 * failure *plain is NULL and err says why.
 */
cables_status smime_envelope_decrypt(struct smime_envelope *e, X509 *cert, EVP_PKEY *key,
    struct spool **plain, struct cables_err *err);

/* The private key as DER PKCS#8 (malloc'd, wipe with seal_free_secret) and back. */
cables_status smime_key_to_der(EVP_PKEY *key, uint8_t **der, size_t *len, struct cables_err *err);
EVP_PKEY *smime_key_from_der(const uint8_t *der, size_t len);

/* True when key is the private half of cert's public key. */
bool smime_key_matches(X509 *cert, EVP_PKEY *key);

#endif
