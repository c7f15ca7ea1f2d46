/* xsign - what a key-exchange signature covers; see xsign.h. */
#include "autoconfig.h"

#include <string.h>

#include <openssl/evp.h>

#include "xsign.h"

const char *
x_sign_context(int kind)
{
	switch (kind) {
	case X_SIGN_ANSWER:
		return "cables-keys-v1";
	case X_SIGN_REQUEST:
		return "cables-keys-request-v1";
	}
	return NULL;
}

int
x_sign_digest(int kind, const void *data, size_t len, uint8_t digest[X_DIGEST_LEN])
{
	const char *ctx = x_sign_context(kind);
	EVP_MD_CTX *md;
	int ok;

	if (ctx == NULL || (md = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 && EVP_DigestUpdate(md, ctx, strlen(ctx) + 1) == 1 &&
	    EVP_DigestUpdate(md, data, len) == 1 && EVP_DigestFinal_ex(md, digest, NULL) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

size_t
x_sign_message(int kind, const uint8_t digest[X_DIGEST_LEN], uint8_t out[X_SIGN_MSG_MAX])
{
	const char *ctx = x_sign_context(kind), *suffix = "-sha512";
	size_t n;

	if (ctx == NULL)
		return 0;
	n = strlen(ctx);
	memcpy(out, ctx, n);
	memcpy(out + n, suffix, strlen(suffix) + 1);	/* with its NUL */
	n += strlen(suffix) + 1;
	memcpy(out + n, digest, X_DIGEST_LEN);
	return n + X_DIGEST_LEN;
}
