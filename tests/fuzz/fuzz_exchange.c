/*
 * fuzz_exchange - the key-exchange protocol's parsers (keyd/exchange.c)
 * over hostile input.  The first byte picks what the rest is: a request
 * body for the server (0, either form), an answer body for the client (1),
 * a payload the fuzzer signs with the domain key itself (2), or a request
 * the fuzzer signs as an asking domain (3), so that the parsers behind the
 * signature checks are reached too.  A request must parse to 1..64
 * addresses in its domain (signed: with a valid "from" and the signing
 * key's fingerprint) or fail with a reason; an answer must give results
 * only for addresses asked about, or fail with a reason.
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "addr.h"
#include "exchange.h"
#include "fuzz.h"

static EVP_PKEY *key;
static char fpr[1][65];
static struct x_request req;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const addrs[] = { "bob@b.test", "carol@b.test" };
	struct buf body;

	key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	x_key_fingerprint(key, fpr[0]);
	x_request_make("b.test", addrs, 2, &req, &body);
	strcpy(req.nonce, "AAAAAAAAAAAAAAAAAAAAAA");
	buf_release(&body);
	return 0;
}

/* An envelope {field, key, signature} around payload, signed with the key as kind (lib/xsign.h says what is signed). */
static char *
signed_envelope(int kind, const char *field, const uint8_t *payload, size_t len)
{
	struct x_signer signer = x_signer_local(key);
	uint8_t pub[X_PUB_LEN], sig[X_SIG_LEN], digest[X_DIGEST_LEN];
	char *b64p = malloc(4 * ((len + 2) / 3) + 1), b64k[64], b64s[100], *out;
	json_t *o = json_object();

	if (!x_sign_digest(kind, payload, len, digest) ||
	    signer.sign(signer.arg, "fuzz.test", kind, digest, sig, pub, NULL) != CABLES_OK)
		abort();
	EVP_EncodeBlock((unsigned char *)b64p, payload, (int)len);
	EVP_EncodeBlock((unsigned char *)b64k, pub, X_PUB_LEN);
	EVP_EncodeBlock((unsigned char *)b64s, sig, X_SIG_LEN);
	json_object_set_new(o, field, json_string(b64p));
	json_object_set_new(o, "key", json_string(b64k));
	json_object_set_new(o, "signature", json_string(b64s));
	out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(b64p);
	return out;
}

/* A request body: parsed to what the server may rely on, or refused with a reason (ours: signed by the key here). */
static void
request(const char *body, size_t len, bool ours)
{
	struct cables_err err;
	struct x_request r;

	if (x_request_parse(body, len, &r, &err) == CABLES_OK) {
		if (r.n == 0 || r.n > X_ADDRESSES_MAX || (ours && !r.is_signed))
			abort();
		for (size_t i = 0; i < r.n; i++)
			if (strcasecmp(strrchr(r.addresses[i], '@') + 1, r.domain) != 0)
				abort();
		if (r.is_signed && (r.from[0] == '\0' || strspn(r.key_fpr, "0123456789abcdef") != 64))
			abort();
		/* Signed here: the key is ours, so only the time may be wrong. */
		if (ours && (strcmp(r.key_fpr, fpr[0]) != 0 ||
		    (x_request_check_signer(&r, (const char (*)[65])fpr, 1, 1800000000, &err) != CABLES_OK &&
		    strstr(err.msg, "issued") == NULL)))
			abort();
		if (!r.is_signed && r.from[0] != '\0')
			abort();
		x_request_release(&r);
	} else if (err.msg[0] == '\0') {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cables_err err;
	struct x_answer a;
	cables_status st;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		request((const char *)data + 1, size - 1, false);
		return 0;
	case 3: {
		char *text;

		if (memchr(data + 1, '\0', size - 1) != NULL)
			return 0;
		text = signed_envelope(X_SIGN_REQUEST, "request", data + 1, size - 1);
		if (text != NULL)
			request(text, strlen(text), true);
		free(text);
		return 0;
	}
	case 1:
		st = x_answer_verify((const char *)data + 1, size - 1, &req, (const char (*)[65])fpr, 1, 1800000000, &a, &err);
		break;
	default: {
		char *text;

		/* Valid JSON strings only carry what encodes: skip payloads jansson cannot hold. */
		if (memchr(data + 1, '\0', size - 1) != NULL)
			return 0;
		text = signed_envelope(X_SIGN_ANSWER, "payload", data + 1, size - 1);
		if (text == NULL)
			return 0;
		st = x_answer_verify(text, strlen(text), &req, (const char (*)[65])fpr, 1, 1800000000, &a, &err);
		free(text);
		break;
	}
	}
	if (st == CABLES_OK) {
		struct addr_opts ao = { 0 };

		for (size_t i = 0; i < a.n; i++) {
			if (strcasecmp(a.results[i].address, "bob@b.test") != 0 && strcasecmp(a.results[i].address, "carol@b.test") != 0)
				abort();
			/* Epoch keys the domain signed are still checked as keys: refused with a reason, never a crash. */
			for (size_t j = 0; j < a.results[i].nepochs; j++) {
				err.msg[0] = '\0';
				if (x_epoch_check(&a.results[i], &a.results[i].epochs[j], &ao, 1800000000, NULL, &err) != CABLES_OK &&
				    err.msg[0] == '\0')
					abort();
			}
		}
		x_answer_release(&a);
	} else if (err.msg[0] == '\0' || a.n != 0) {
		abort();
	}
	return 0;
}
