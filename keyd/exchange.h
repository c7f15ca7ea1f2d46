/*
 * exchange - the key-exchange protocol between Cables servers
 * (doc/key-exchange.md): the domain key (Ed25519), requests, and signed
 * answers.  Transport-free: the HTTPS server (xserver.c) and client
 * (peer.c) call these.
 *
 * Every signature is Ed25519 over the fixed-size message lib/xsign.h
 * describes (a context and the SHA-512 of the context and the signed
 * octets), so that cables-keyholder, which alone holds ExchangeKey, can sign
 * answers of any size from a digest.
 *
 * A request is JSON {"v":1,"domain":D,"nonce":N,"addresses":[...]}
 * (anonymous), or the asking domain's signed form
 * {"request":B64,"key":B64,"signature":B64}, the signature over the
 * request octets (context "cables-keys-request-v1"), the request the JSON above
 * with "from":ASKING-DOMAIN and "issued":T added.  An answer is {"payload":B64,"key":B64,"signature":B64}  where the signature
 * is over the payload octets (context "cables-keys-v1"), and the payload is
 * {"v":1,"domain":D,"nonce":N,"issued":T,"results":[{"address":A,
 * "keys":[{"format":"smime"|"pgp","data":B64,"not_after":T}]}]}.
 * A result may also carry "epoch":[KEY], the address's current epoch key
 * in the same shape (doc/key-exchange.md, "Forward secrecy: epoch keys");
 * older clients ignore the field.
 */
#ifndef CABLES_EXCHANGE_H
#define CABLES_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#include "status.h"
#include "util.h"
#include "xsign.h"

#define X_ADDRESSES_MAX 64
#define X_REQUEST_MAX (16 * 1024)
#define X_ANSWER_MAX (4 * 1024 * 1024)
#define X_NONCE_LEN 22		/* base64url of 128 bits, no padding */
#define X_KEY_MAX (48 * 1024)	/* one key's data; larger ones are neither served nor accepted */
#define X_SKEW 300		/* how far "issued" may be from our clock, seconds */
#define X_PATH CABLES_EXCHANGE_PATH

/* The domain key: load (an Ed25519 private key, PEM) or create one (mode 0600). */
EVP_PKEY *x_key_load(const char *path, struct cables_err *err);
cables_status x_key_generate(const char *path, struct cables_err *err);

/* Lowercase hex SHA-256 of the raw 32-byte public key. */
void x_key_fingerprint(EVP_PKEY *key, char out[65]);

/* The TXT record data that binds the key to a domain: v=cables1; k=ed25519; fp=HEX */
void x_key_txt(EVP_PKEY *key, char *out, size_t len);

/* Parse one TXT record's text ("v=cables1; k=ed25519; fp=HEX", quotes allowed); the fingerprint. */
bool x_txt_fingerprint(const char *txt, char fpr[65]);

/* ---- requests ---- */

struct x_request {
	char domain[256];
	char nonce[X_NONCE_LEN + 1];
	char *addresses[X_ADDRESSES_MAX];	/* lowercase, each in domain */
	size_t n;
	/* A signed request: its signature verified with key_fpr's key; from and issued as it claims. */
	bool is_signed;
	char from[256];			/* the asking domain, lowercase */
	long long issued;
	char key_fpr[65];
};

/*
 * Who signs as a local domain: sign() gets the digest of what is to be
 * signed (xsign.h) and gives the signature and the key's raw public half.
 * keyd's signer asks cables-keyholder (khsign.h); x_signer_local() signs
 * with a key in memory (tests, cables-keyctl), which must outlive it.
 */
struct x_signer {
	cables_status (*sign)(void *arg, const char *domain, int kind, const uint8_t digest[X_DIGEST_LEN],
	    uint8_t sig[X_SIG_LEN], uint8_t pub[X_PUB_LEN], struct cables_err *err);
	void *arg;
};
struct x_signer x_signer_local(EVP_PKEY *key);

/* A fresh request for addrs (all in domain): its JSON in out, its nonce in req. */
void x_request_make(const char *domain, const char *const *addrs, size_t n, struct x_request *req, struct buf *out);

/* The same, signed by from's domain key (the signed form), issued at now. */
cables_status x_request_make_signed(const char *domain, const char *const *addrs, size_t n, const char *from,
    const struct x_signer *signer, time_t now, struct x_request *req, struct buf *out, struct cables_err *err);

/*
 * Parse and check a request body, either form; the reason for a 400
 * answer on failure.  A signed request whose signature does not verify
 * with the key it carries fails; whether that key is the asking domain's
 * is for x_request_check_signer.
 */
cables_status x_request_parse(const char *body, size_t len, struct x_request *req, struct cables_err *err);
void x_request_release(struct x_request *req);

/* Is signed req's key one of fprs (its domain's), and was it issued within X_SKEW of now? */
cables_status x_request_check_signer(const struct x_request *req, const char (*fprs)[65], size_t nfprs, time_t now,
    struct cables_err *err);

/* ---- answers ---- */

struct x_key {
	char format[8];		/* "smime" or "pgp" */
	uint8_t *data;
	size_t len;
	long long not_after;
};

#define X_EPOCHS_MAX 2		/* epoch keys per result: one per format */

struct x_result {
	char *address;
	struct x_key *keys;
	size_t n;
	struct x_key *epochs;	/* "epoch": not yet checked as keys (x_epoch_check) */
	size_t nepochs;
};

struct x_answer {
	struct x_result *results;
	size_t n;
};

void x_answer_release(struct x_answer *a);

/* The signed answer to req (results in the order asked), made with the domain key. */
cables_status x_answer_make(const struct x_signer *signer, const struct x_request *req, const struct x_answer *results, time_t now,
    struct buf *out, struct cables_err *err);

/*
 * Check an answer to req: signed by a key whose fingerprint is one of
 * fprs, for req's domain and nonce, issued within X_SKEW of now, results
 * only for addresses asked about.  The answer's keys (not yet checked as
 * keys) go to out.
 */
cables_status x_answer_verify(const char *body, size_t len, const struct x_request *req, const char (*fprs)[65],
    size_t nfprs, time_t now, struct x_answer *out, struct cables_err *err);

/*
 * Longest validity an epoch certificate may have: the longest
 * EpochKeyLifetime (30 days) and its overlap.  A "short-lived" key valid
 * for a year would give a sender no forward secrecy.
 */
#define X_EPOCH_VALIDITY_MAX ((30 + 30 / 7 + 1) * 86400LL)

struct addr_opts;

/*
 * May epoch, offered in result res of a verified answer, be used for
 * res->address at now?  An OpenPGP epoch key (pgp_epoch_check(): one
 * encryption subkey bound by the primary key of one of the result's
 * OpenPGP keys, expiring as declared, valid now, for at most
 * X_EPOCH_VALIDITY_MAX; parent_fpr: that primary's fingerprint), or an
 * S/MIME certificate whose not_after is the one declared, that names the
 * address, is valid now for at most X_EPOCH_VALIDITY_MAX, allows key
 * agreement only, is no CA, and is issued and signed by one of the
 * result's own usable long-term certificates (doc/key-exchange.md: the
 * domain's signature over the answer and the user's over the epoch key).
 * parent_fpr (may be NULL) gets that certificate's fingerprint: the
 * caller uses the epoch key only if it accepted that very key.
 * CABLES_ERR_UNUSABLE with the reason otherwise.
 */
cables_status x_epoch_check(const struct x_result *res, const struct x_key *epoch, const struct addr_opts *ao,
    time_t now, char parent_fpr[65], struct cables_err *err);

#endif
