/* khwipe - OpenSSL's frees, wiped; see khwipe.h. */
#include "autoconfig.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "khwipe.h"

/*
 * OpenSSL's allocations, wiped as they are freed.  Decoding a private key
 * leaves copies of it in buffers OpenSSL frees without clearing (the
 * ECPrivateKey's octet string, P-256's scalar digits, ...); freed heap is
 * part of this process's memory, so an epoch key deleted for forward
 * secrecy would live on in it until the block happened to be reused.
 * Every block OpenSSL frees (or moves, in realloc) is overwritten first.
 */
static void
wiping_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	if (p != NULL) {
		explicit_bzero(p, malloc_usable_size(p));
		free(p);
	}
}

static void *
plain_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	return malloc(n);
}

static void *
wiping_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	if (p == NULL)
		return malloc(n);
	if (n == 0) {
		wiping_free(p, file, line);
		return NULL;
	}
	old = malloc_usable_size(p);
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wiping_free(p, file, line);
	return q;
}

bool
khwipe_install(void)
{
	return CRYPTO_set_mem_functions(plain_malloc, wiping_realloc, wiping_free) == 1;
}
