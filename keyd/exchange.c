/* exchange - the key-exchange protocol: domain key, requests, signed answers; see exchange.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "addr.h"
#include "exchange.h"

#define KEYS_PER_ADDRESS 8

/* ---- base64 (standard alphabet, padded; strict) ---- */

static char *
b64_encode(const uint8_t *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

static bool
b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Decode text (whole groups, '=' only at the end); NULL when it is not base64 or decodes to more than max. */
static uint8_t *
b64_decode(const char *text, size_t max, size_t *len)
{
	size_t n = strlen(text), pad;
	uint8_t *out;
	int got;

	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2)
		return NULL;
	for (size_t i = 0; i < n - 2; i++)
		if (!b64_char(text[i]))
			return NULL;
	if (b64_char(text[n - 2]) && b64_char(text[n - 1]))
		pad = 0;
	else if (b64_char(text[n - 2]) && text[n - 1] == '=')
		pad = 1;
	else if (text[n - 2] == '=' && text[n - 1] == '=')
		pad = 2;
	else
		return NULL;
	out = xmalloc(n / 4 * 3 + 1);
	if ((got = EVP_DecodeBlock(out, (const unsigned char *)text, (int)n)) < 0 || (size_t)got < pad ||
	    (size_t)got - pad > max) {
		free(out);
		return NULL;
	}
	*len = (size_t)got - pad;
	return out;
}

/* ---- the domain key ---- */

EVP_PKEY *
x_key_load(const char *path, struct cables_err *err)
{
	FILE *fp = fopen(path, "r");
	EVP_PKEY *key;

	if (fp == NULL) {
		cables_fail(err, CABLES_ERR_IO, "ExchangeKey %s: %s", path, strerror(errno));
		return NULL;
	}
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(key);
		cables_fail(err, CABLES_ERR_SYNTAX, "ExchangeKey %s: not an Ed25519 private key in PEM", path);
		return NULL;
	}
	return key;
}

cables_status
x_key_generate(const char *path, struct cables_err *err)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *fp = NULL;
	int fd;
	cables_status st = CABLES_OK;

	if (key == NULL)
		return cables_fail(err, CABLES_ERR_CRYPTO, "cannot make an Ed25519 key");
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 || (fp = fdopen(fd, "w")) == NULL) {
		st = cables_fail(err, CABLES_ERR_IO, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	} else if (!PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL) || fflush(fp) != 0) {
		fclose(fp);
		fp = NULL;
		unlink(path);
		st = cables_fail(err, CABLES_ERR_IO, "%s: cannot write the key", path);
	} else if (fclose(fp) != 0) {
		fp = NULL;
		unlink(path);
		st = cables_fail(err, CABLES_ERR_IO, "%s: cannot write the key", path);
	} else {
		fp = NULL;
	}
	if (fp != NULL)
		fclose(fp);
	EVP_PKEY_free(key);
	return st;
}

static void
fingerprint_raw(const uint8_t *pub, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	EVP_Digest(pub, len, md, &mdlen, EVP_sha256(), NULL);
	hex_encode(md, 32, out);
	out[64] = '\0';
}

void
x_key_fingerprint(EVP_PKEY *key, char out[65])
{
	uint8_t pub[32];
	size_t len = sizeof(pub);

	if (!EVP_PKEY_get_raw_public_key(key, pub, &len))
		len = 0;
	fingerprint_raw(pub, len, out);
}

void
x_key_txt(EVP_PKEY *key, char *out, size_t len)
{
	char fpr[65];

	x_key_fingerprint(key, fpr);
	snprintf(out, len, "v=cables1; k=ed25519; fp=%s", fpr);
}

bool
x_txt_fingerprint(const char *txt, char fpr[65])
{
	char text[512], *p, *save = NULL, *item;
	bool v = false, k = false, f = false;
	size_t n = 0;

	/* The presentation form may be one or more quoted strings: join them. */
	for (const char *s = txt; *s != '\0' && n + 1 < sizeof(text); s++)
		if (*s != '"')
			text[n++] = *s;
	text[n] = '\0';
	for (item = strtok_r(text, ";", &save); item != NULL; item = strtok_r(NULL, ";", &save)) {
		while (*item == ' ')
			item++;
		for (p = item + strlen(item); p > item && p[-1] == ' '; p--)
			p[-1] = '\0';
		if (strcmp(item, "v=cables1") == 0)
			v = true;
		else if (strcmp(item, "k=ed25519") == 0)
			k = true;
		else if (strncmp(item, "fp=", 3) == 0 && strlen(item + 3) == 64 &&
		    strspn(item + 3, "0123456789abcdefABCDEF") == 64) {
			strcpy(fpr, item + 3);
			str_lower(fpr);
			f = true;
		}
	}
	return v && k && f;
}

/* ---- requests ---- */

/* The request object for addrs (all in domain), its nonce fresh; req filled in. */
static json_t *
request_object(const char *domain, const char *const *addrs, size_t n, struct x_request *req)
{
	uint8_t rnd[16];
	char *b64;
	json_t *o = json_object(), *a = json_array();

	memset(req, 0, sizeof(*req));
	snprintf(req->domain, sizeof(req->domain), "%s", domain);
	str_lower(req->domain);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		abort();	/* no randomness: a guessable nonce would make replays possible */
	b64 = b64_encode(rnd, sizeof(rnd));
	/* base64url without padding */
	for (char *p = b64; *p != '\0'; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	b64[X_NONCE_LEN] = '\0';
	strcpy(req->nonce, b64);
	free(b64);
	for (size_t i = 0; i < n && i < X_ADDRESSES_MAX; i++) {
		req->addresses[req->n++] = xstrdup(addrs[i]);
		json_array_append_new(a, json_string(addrs[i]));
	}
	json_object_set_new(o, "v", json_integer(1));
	json_object_set_new(o, "domain", json_string(req->domain));
	json_object_set_new(o, "nonce", json_string(req->nonce));
	json_object_set_new(o, "addresses", a);
	return o;
}

void
x_request_make(const char *domain, const char *const *addrs, size_t n, struct x_request *req, struct buf *out)
{
	json_t *o = request_object(domain, addrs, n, req);
	char *text = json_dumps(o, JSON_COMPACT);

	buf_init(out);
	buf_appends(out, text != NULL ? text : "");
	free(text);
	json_decref(o);
}

/* Sign data of kind as domain (lib/xsign.h says what is signed): the signature and the key's raw public half. */
static cables_status
x_sign(const struct x_signer *signer, const char *domain, int kind, const void *data, size_t len,
    uint8_t sig[X_SIG_LEN], uint8_t pub[X_PUB_LEN], struct cables_err *err)
{
	uint8_t digest[X_DIGEST_LEN];

	if (signer == NULL || signer->sign == NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "no exchange key to sign with");
	if (!x_sign_digest(kind, data, len, digest))
		return cables_fail(err, CABLES_ERR_CRYPTO, "cannot hash what is to be signed");
	return signer->sign(signer->arg, domain, kind, digest, sig, pub, err);
}

/* Does sig, by the Ed25519 key pub, cover data of kind? */
static bool
x_verify(int kind, const uint8_t *pub, const uint8_t *sig, const void *data, size_t len)
{
	uint8_t digest[X_DIGEST_LEN], msg[X_SIGN_MSG_MAX];
	size_t mlen;
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx = NULL;
	bool ok;

	if (!x_sign_digest(kind, data, len, digest) || (mlen = x_sign_message(kind, digest, msg)) == 0 ||
	    (pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, X_PUB_LEN)) == NULL)
		return false;
	ok = (ctx = EVP_MD_CTX_new()) != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1 &&
	    EVP_DigestVerify(ctx, sig, X_SIG_LEN, msg, mlen) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

/* x_signer_local's sign: key is an EVP_PKEY (Ed25519). */
static cables_status
sign_local(void *arg, const char *domain, int kind, const uint8_t digest[X_DIGEST_LEN], uint8_t sig[X_SIG_LEN],
    uint8_t pub[X_PUB_LEN], struct cables_err *err)
{
	EVP_PKEY *key = arg;
	uint8_t msg[X_SIGN_MSG_MAX];
	size_t mlen = x_sign_message(kind, digest, msg), siglen = X_SIG_LEN, publen = X_PUB_LEN;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	ok = mlen > 0 && ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, msg, mlen) == 1 && siglen == X_SIG_LEN &&
	    EVP_PKEY_get_raw_public_key(key, pub, &publen) == 1 && publen == X_PUB_LEN;
	EVP_MD_CTX_free(ctx);
	return ok ? CABLES_OK : cables_fail(err, CABLES_ERR_CRYPTO, "cannot sign as %s", domain);
}

struct x_signer
x_signer_local(EVP_PKEY *key)
{
	struct x_signer s = { sign_local, key };

	return s;
}

/*
 * inner (a JSON text) signed as name for kind, wrapped for the wire:
 * {"FIELD": base64(inner), "key": base64(public key), "signature": ...}
 * in out (initialised here), the public key in pub.
 */
static cables_status
signed_wrapper(const struct x_signer *signer, const char *name, int kind, const char *field, const char *inner,
    uint8_t pub[X_PUB_LEN], struct buf *out, struct cables_err *err)
{
	uint8_t sig[X_SIG_LEN];
	char *b64i, *b64k, *b64s, *text;
	json_t *w;
	cables_status st;

	buf_init(out);
	if ((st = x_sign(signer, name, kind, inner, strlen(inner), sig, pub, err)) != CABLES_OK)
		return st;	/* err says why */
	b64i = b64_encode((const uint8_t *)inner, strlen(inner));
	b64k = b64_encode(pub, X_PUB_LEN);
	b64s = b64_encode(sig, X_SIG_LEN);
	w = json_object();
	json_object_set_new(w, field, json_string(b64i));
	json_object_set_new(w, "key", json_string(b64k));
	json_object_set_new(w, "signature", json_string(b64s));
	text = json_dumps(w, JSON_COMPACT);
	buf_appends(out, text);
	free(text);
	json_decref(w);
	free(b64i);
	free(b64k);
	free(b64s);
	return CABLES_OK;
}

cables_status
x_request_make_signed(const char *domain, const char *const *addrs, size_t n, const char *from,
    const struct x_signer *signer, time_t now, struct x_request *req, struct buf *out, struct cables_err *err)
{
	json_t *o = request_object(domain, addrs, n, req);
	uint8_t pub[X_PUB_LEN];
	char *inner;
	cables_status st;

	snprintf(req->from, sizeof(req->from), "%s", from);
	str_lower(req->from);
	req->issued = (long long)now;
	req->is_signed = true;
	json_object_set_new(o, "from", json_string(req->from));
	json_object_set_new(o, "issued", json_integer((json_int_t)now));
	inner = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if ((st = signed_wrapper(signer, req->from, X_SIGN_REQUEST, "request", inner, pub, out, err)) == CABLES_OK)
		fingerprint_raw(pub, sizeof(pub), req->key_fpr);
	free(inner);
	return st;
}

void
x_request_release(struct x_request *req)
{
	for (size_t i = 0; i < req->n; i++)
		free(req->addresses[i]);
	req->n = 0;
}

static bool
nonce_valid(const char *s)
{
	return strlen(s) == X_NONCE_LEN &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == X_NONCE_LEN;
}

/* Is addr an address in domain (its domain part, without case)? */
static bool
in_domain(const char *addr, const char *domain)
{
	const char *at = strrchr(addr, '@');

	return at != NULL && addr_valid(addr) && strcasecmp(at + 1, domain) == 0;
}

/* The fields of a request object (signed: "from" and "issued" too) into req. */
static cables_status
request_fields(json_t *o, bool is_signed, struct x_request *req, struct cables_err *err)
{
	json_t *v = json_object_get(o, "v"), *d = json_object_get(o, "domain"), *nonce = json_object_get(o, "nonce");
	json_t *a = json_object_get(o, "addresses"), *from = json_object_get(o, "from"), *iss = json_object_get(o, "issued");
	cables_status st = CABLES_OK;

	if (!json_is_object(o) || !json_is_integer(v) || json_integer_value(v) != 1)
		return cables_fail(err, CABLES_ERR_SYNTAX, "not a version 1 request");
	if (!json_is_string(d) || json_string_length(d) >= sizeof(req->domain) || !domain_valid(json_string_value(d)))
		return cables_fail(err, CABLES_ERR_SYNTAX, "\"domain\" is not a domain");
	if (!json_is_string(nonce) || !nonce_valid(json_string_value(nonce)))
		return cables_fail(err, CABLES_ERR_SYNTAX, "\"nonce\" is not %d characters of base64url", X_NONCE_LEN);
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > X_ADDRESSES_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "\"addresses\" is not a list of 1 to %d addresses",
		    X_ADDRESSES_MAX);
	if (is_signed && (!json_is_string(from) || json_string_length(from) >= sizeof(req->from) ||
	    !domain_valid(json_string_value(from))))
		return cables_fail(err, CABLES_ERR_SYNTAX, "the signed request's \"from\" is not a domain");
	if (is_signed && !json_is_integer(iss))
		return cables_fail(err, CABLES_ERR_SYNTAX, "the signed request has no \"issued\" time");
	snprintf(req->domain, sizeof(req->domain), "%s", json_string_value(d));
	str_lower(req->domain);
	strcpy(req->nonce, json_string_value(nonce));
	if (is_signed) {
		snprintf(req->from, sizeof(req->from), "%s", json_string_value(from));
		str_lower(req->from);
		req->issued = (long long)json_integer_value(iss);
		req->is_signed = true;
	}
	for (size_t i = 0; i < json_array_size(a) && st == CABLES_OK; i++) {
		json_t *e = json_array_get(a, i);

		if (!json_is_string(e) || json_string_length(e) > 320 || !in_domain(json_string_value(e), req->domain))
			st = cables_fail(err, CABLES_ERR_SYNTAX, "address %zu is not an address in %s", i + 1, req->domain);
		else
			req->addresses[req->n++] = xstrdup(json_string_value(e));
	}
	return st;
}

/* The signed form: check the signature with the key it carries, then the request inside. */
static cables_status
signed_request(json_t *w, struct x_request *req, struct cables_err *err)
{
	json_t *jr = json_object_get(w, "request"), *jk = json_object_get(w, "key"), *js = json_object_get(w, "signature");
	uint8_t *inner = NULL, *pub = NULL, *sig = NULL;
	size_t ilen = 0, publen = 0, siglen = 0;
	json_error_t jerr;
	json_t *o = NULL;
	cables_status st;

	if (!json_is_string(jr) || !json_is_string(jk) || !json_is_string(js) ||
	    (inner = b64_decode(json_string_value(jr), X_REQUEST_MAX, &ilen)) == NULL ||
	    (pub = b64_decode(json_string_value(jk), 64, &publen)) == NULL || publen != 32 ||
	    (sig = b64_decode(json_string_value(js), 128, &siglen)) == NULL || siglen != 64) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "not a signed request (request, key, signature in base64)");
	} else {
		if (!x_verify(X_SIGN_REQUEST, pub, sig, inner, ilen))
			st = cables_fail(err, CABLES_ERR_SYNTAX, "the request's signature does not verify");
		else if ((o = json_loadb((const char *)inner, ilen, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
			st = cables_fail(err, CABLES_ERR_SYNTAX, "the signed request is not JSON: %s", jerr.text);
		else if ((st = request_fields(o, true, req, err)) == CABLES_OK)
			fingerprint_raw(pub, publen, req->key_fpr);
	}
	json_decref(o);
	free(inner);
	free(pub);
	free(sig);
	return st;
}

cables_status
x_request_parse(const char *body, size_t len, struct x_request *req, struct cables_err *err)
{
	json_error_t jerr;
	json_t *o;
	cables_status st;

	memset(req, 0, sizeof(*req));
	if (len > X_REQUEST_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "request larger than %d bytes", X_REQUEST_MAX);
	if ((o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return cables_fail(err, CABLES_ERR_SYNTAX, "not JSON: %s", jerr.text);
	if (json_is_object(o) && json_object_get(o, "request") != NULL)
		st = signed_request(o, req, err);
	else
		st = request_fields(o, false, req, err);
	json_decref(o);
	if (st != CABLES_OK)
		x_request_release(req);
	return st;
}

cables_status
x_request_check_signer(const struct x_request *req, const char (*fprs)[65], size_t nfprs, time_t now,
    struct cables_err *err)
{
	bool known = false;

	if (!req->is_signed)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the request is not signed");
	for (size_t i = 0; i < nfprs && !known; i++)
		known = strcmp(fprs[i], req->key_fpr) == 0;
	if (!known)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "signed by a key that is not %s's (fingerprint %.16s...)",
		    req->from, req->key_fpr);
	if (req->issued < (long long)now - X_SKEW || req->issued > (long long)now + X_SKEW)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the request was issued more than %d s from now", X_SKEW);
	return CABLES_OK;
}

/* ---- answers ---- */

void
x_answer_release(struct x_answer *a)
{
	for (size_t i = 0; i < a->n; i++) {
		for (size_t j = 0; j < a->results[i].n; j++)
			free(a->results[i].keys[j].data);
		free(a->results[i].keys);
		for (size_t j = 0; j < a->results[i].nepochs; j++)
			free(a->results[i].epochs[j].data);
		free(a->results[i].epochs);
		free(a->results[i].address);
	}
	free(a->results);
	a->results = NULL;
	a->n = 0;
}

/* A JSON list of n keys. */
static json_t *
keys_json(const struct x_key *keys, size_t n)
{
	json_t *ks = json_array();

	for (size_t j = 0; j < n; j++) {
		json_t *jk = json_object();
		char *d = b64_encode(keys[j].data, keys[j].len);

		json_object_set_new(jk, "format", json_string(keys[j].format));
		json_object_set_new(jk, "data", json_string(d));
		json_object_set_new(jk, "not_after", json_integer(keys[j].not_after));
		json_array_append_new(ks, jk);
		free(d);
	}
	return ks;
}

cables_status
x_answer_make(const struct x_signer *signer, const struct x_request *req, const struct x_answer *results, time_t now,
    struct buf *out, struct cables_err *err)
{
	json_t *p = json_object(), *rs = json_array();
	uint8_t pub[X_PUB_LEN];
	char *payload;
	cables_status st;

	for (size_t i = 0; i < results->n; i++) {
		const struct x_result *res = &results->results[i];
		json_t *r = json_object();

		json_object_set_new(r, "address", json_string(res->address));
		json_object_set_new(r, "keys", keys_json(res->keys, res->n));
		if (res->nepochs > 0)
			json_object_set_new(r, "epoch", keys_json(res->epochs, res->nepochs));
		json_array_append_new(rs, r);
	}
	json_object_set_new(p, "v", json_integer(1));
	json_object_set_new(p, "domain", json_string(req->domain));
	json_object_set_new(p, "nonce", json_string(req->nonce));
	json_object_set_new(p, "issued", json_integer((json_int_t)now));
	json_object_set_new(p, "results", rs);
	payload = json_dumps(p, JSON_COMPACT);
	json_decref(p);
	st = signed_wrapper(signer, req->domain, X_SIGN_ANSWER, "payload", payload, pub, out, err);
	free(payload);
	return st;
}

static bool
asked(const struct x_request *req, const char *addr)
{
	for (size_t i = 0; i < req->n; i++)
		if (strcasecmp(req->addresses[i], addr) == 0)
			return true;
	return false;
}

/* The keys of list ks (at most max) into *keys, *n; false when one is malformed. */
static bool
read_keys(json_t *ks, size_t max, struct x_key **keys, size_t *n)
{
	if (!json_is_array(ks) || json_array_size(ks) > max)
		return false;
	*keys = xcalloc(json_array_size(ks) + 1, sizeof(**keys));
	for (size_t j = 0; j < json_array_size(ks); j++) {
		json_t *k = json_array_get(ks, j), *f = json_object_get(k, "format"), *d = json_object_get(k, "data");
		json_t *na = json_object_get(k, "not_after");
		struct x_key *xk = &(*keys)[*n];

		if (!json_is_string(f) || (strcmp(json_string_value(f), "smime") != 0 &&
		    strcmp(json_string_value(f), "pgp") != 0) || !json_is_string(d) || !json_is_integer(na) ||
		    (xk->data = b64_decode(json_string_value(d), X_KEY_MAX, &xk->len)) == NULL)
			return false;
		strcpy(xk->format, json_string_value(f));
		xk->not_after = json_integer_value(na);
		(*n)++;
	}
	return true;
}

/* The results of a verified payload into out. */
static cables_status
read_results(json_t *rs, const struct x_request *req, struct x_answer *out, struct cables_err *err)
{
	if (!json_is_array(rs) || json_array_size(rs) > X_ADDRESSES_MAX)
		return cables_fail(err, CABLES_ERR_SYNTAX, "the answer's \"results\" is not a list");
	out->results = xcalloc(json_array_size(rs) + 1, sizeof(*out->results));
	for (size_t i = 0; i < json_array_size(rs); i++) {
		json_t *r = json_array_get(rs, i), *a = json_object_get(r, "address"), *ks = json_object_get(r, "keys");
		json_t *es = json_object_get(r, "epoch");
		struct x_result *res = &out->results[out->n];

		if (!json_is_string(a) || !asked(req, json_string_value(a)))
			return cables_fail(err, CABLES_ERR_SYNTAX, "the answer has a result for an address not asked about");
		if (!json_is_array(ks) || json_array_size(ks) > KEYS_PER_ADDRESS)
			return cables_fail(err, CABLES_ERR_SYNTAX, "the answer's keys for %s are not a list of at most %d",
			    json_string_value(a), KEYS_PER_ADDRESS);
		res->address = xstrdup(json_string_value(a));
		out->n++;
		if (!read_keys(ks, KEYS_PER_ADDRESS, &res->keys, &res->n))
			return cables_fail(err, CABLES_ERR_SYNTAX, "a key for %s in the answer is malformed",
			    res->address);
		/* A broken epoch key is a broken answer, as a broken key is: the domain signed it. */
		if (es != NULL && !read_keys(es, X_EPOCHS_MAX, &res->epochs, &res->nepochs))
			return cables_fail(err, CABLES_ERR_SYNTAX, "the epoch keys for %s in the answer are malformed",
			    res->address);
	}
	return CABLES_OK;
}

cables_status
x_answer_verify(const char *body, size_t len, const struct x_request *req, const char (*fprs)[65], size_t nfprs,
    time_t now, struct x_answer *out, struct cables_err *err)
{
	json_error_t jerr;
	json_t *o = NULL, *p = NULL, *jp, *jk, *js, *v, *d, *n, *iss;
	uint8_t *payload = NULL, *pub = NULL, *sig = NULL;
	size_t plen = 0, publen = 0, siglen = 0;
	char fpr[65];
	bool known = false;
	cables_status st = CABLES_OK;

	memset(out, 0, sizeof(*out));
	if (len > X_ANSWER_MAX) {
		st = cables_fail(err, CABLES_ERR_TOOBIG, "the answer is larger than %d bytes", X_ANSWER_MAX);
		goto out;
	}
	if ((o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the answer is not JSON: %s", jerr.text);
		goto out;
	}
	jp = json_object_get(o, "payload");
	jk = json_object_get(o, "key");
	js = json_object_get(o, "signature");
	if (!json_is_string(jp) || !json_is_string(jk) || !json_is_string(js) ||
	    (payload = b64_decode(json_string_value(jp), X_ANSWER_MAX, &plen)) == NULL ||
	    (pub = b64_decode(json_string_value(jk), 64, &publen)) == NULL || publen != 32 ||
	    (sig = b64_decode(json_string_value(js), 128, &siglen)) == NULL || siglen != 64) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the answer is not a signed payload");
		goto out;
	}
	/* The key first: a signature by anyone but the domain is worth nothing. */
	fingerprint_raw(pub, publen, fpr);
	for (size_t i = 0; i < nfprs && !known; i++)
		known = strcmp(fprs[i], fpr) == 0;
	if (!known) {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "signed by a key that is not %s's (fingerprint %.16s...)",
		    req->domain, fpr);
		goto out;
	}
	if (!x_verify(X_SIGN_ANSWER, pub, sig, payload, plen)) {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "the signature over the answer does not verify");
		goto out;
	}
	if ((p = json_loadb((const char *)payload, plen, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the signed payload is not JSON: %s", jerr.text);
		goto out;
	}
	v = json_object_get(p, "v");
	d = json_object_get(p, "domain");
	n = json_object_get(p, "nonce");
	iss = json_object_get(p, "issued");
	if (!json_is_integer(v) || json_integer_value(v) != 1)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the answer is not version 1");
	else if (!json_is_string(d) || strcasecmp(json_string_value(d), req->domain) != 0)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "the answer is for another domain");
	else if (!json_is_string(n) || strcmp(json_string_value(n), req->nonce) != 0)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "the answer is not to this request (nonce): a replay?");
	else if (!json_is_integer(iss) || json_integer_value(iss) < (json_int_t)now - X_SKEW ||
	    json_integer_value(iss) > (json_int_t)now + X_SKEW)
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "the answer was issued more than %d s from now", X_SKEW);
	else
		st = read_results(json_object_get(p, "results"), req, out, err);
out:
	if (st != CABLES_OK)
		x_answer_release(out);
	json_decref(o);
	json_decref(p);
	free(payload);
	free(pub);
	free(sig);
	return st;
}
