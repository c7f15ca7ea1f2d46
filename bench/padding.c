/*
 * padding - what size buckets make of real S/MIME wire sizes (issue 16).
 *
 *   make bench/padding && bench/padding [MESSAGES [SEED]]   (default 200 16)
 *
 * MESSAGES entities of random length from 100 B to 200 KB are encrypted
 * by smime_encrypt() to one RSA-3072 certificate (made on the spot), once
 * as they are and once padded by lib/pad.c to the bucket of their
 * estimated wire size.  Prints the histogram of padded wire sizes (the
 * base64 body the MTA sends), how many distinct sizes there were without
 * padding, and the overhead.  Figures only: never fails on a number.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "entity.h"
#include "pad.h"
#include "sink.h"
#include "smime.h"
#include "util.h"

#define HEAD "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
#define CALIBRATE (1024 * 1024)

static cables_status
count_bytes(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)p;
	(void)err;
	*(size_t *)arg += n;
	return CABLES_OK;
}

static cables_status
collect(void *arg, const void *p, size_t n, struct cables_err *err)
{
	(void)err;
	buf_append(arg, p, n);
	return CABLES_OK;
}

/* Wire size of pad + entity, encrypted to certs. */
static size_t
wire(STACK_OF(X509) *certs, const struct buf *pad, const char *entity, size_t len)
{
	struct smime_encrypt_opts o = { CIPHER_AES256_CBC, RSA_PAD_PKCS1 };
	struct entity_src src;
	size_t total = 0;
	struct byte_sink sink = { count_bytes, &total };
	struct cables_err err;

	entity_src_init(&src);
	if (pad != NULL)
		entity_src_mem(&src, pad->data, pad->len);
	entity_src_mem(&src, entity, len);
	if (smime_encrypt(&o, certs, &src, &sink, &err) != CABLES_OK) {
		fprintf(stderr, "padding: encrypt: %s\n", err.msg);
		exit(1);
	}
	return total;
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	unsigned int seed0 = argc > 2 ? (unsigned int)atoi(argv[2]) : 16, seed = seed0;
	size_t *padded, *plain, w0, w1, distinct = 0, buckets = 0, below = 0;
	double over_sum = 0, over_max = 0;
	struct pad_cost cost;
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *cert;
	EVP_PKEY *key;
	struct cables_err err;
	char *entity;
	struct buf pad;

	if (n <= 0)
		n = 200;
	if (smime_generate("bob@b.test", SMIME_ALGO_RSA3072, 30, time(NULL), &cert, &key, &err) != CABLES_OK) {
		fprintf(stderr, "padding: %s\n", err.msg);
		return 1;
	}
	sk_X509_push(certs, cert);
	/*
	 * The cost estimate the milter would use, calibrated on two sizes: the
	 * wire size of an empty entity, then per byte what a 1 MiB entity adds
	 * (base64 in 76-column CRLF lines, 26/19, and the streamed CMS's
	 * chunk headers); 160 bytes of slack cover the cipher's block padding
	 * and line rounding.
	 */
	entity = xcalloc(1, CALIBRATE);
	w0 = wire(certs, NULL, "", 0);
	w1 = wire(certs, NULL, entity, CALIBRATE);
	cost.fixed = w0 + 160;
	cost.den = 1 << 16;
	cost.num = (unsigned int)(((w1 - w0) * (unsigned long long)cost.den + CALIBRATE - 1) / CALIBRATE);
	padded = xcalloc((size_t)n, sizeof(*padded));
	plain = xcalloc((size_t)n, sizeof(*plain));
	memcpy(entity, HEAD, strlen(HEAD));
	buf_init(&pad);
	for (int i = 0; i < n; i++) {
		size_t body = 100 + (size_t)rand_r(&seed) % (200 * 1024 - 100 + 1), len = strlen(HEAD) + body, t;

		for (size_t k = 0; k < body; k++)
			entity[strlen(HEAD) + k] = (k % 72 == 71) ? '\n' : (char)('a' + rand_r(&seed) % 26);
		t = pad_target(len, &cost, 0);
		buf_reset(&pad);
		if (t > len && pad_write(t - len, collect, &pad, &err) != CABLES_OK) {
			fprintf(stderr, "padding: %s\n", err.msg);
			return 1;
		}
		plain[i] = wire(certs, NULL, entity, len);
		padded[i] = wire(certs, &pad, entity, len);
		over_sum += (double)padded[i] / (double)plain[i] - 1;
		if ((double)padded[i] / (double)plain[i] - 1 > over_max)
			over_max = (double)padded[i] / (double)plain[i] - 1;
	}
	qsort(padded, (size_t)n, sizeof(*padded), cmp_size);
	qsort(plain, (size_t)n, sizeof(*plain), cmp_size);
	for (int i = 0; i < n; i++)
		if (i == 0 || plain[i] != plain[i - 1])
			distinct++;
	printf("padding: %d S/MIME messages (RSA-3072, aes256-cbc), bodies 100 B .. 200 KB, seed %u\n", n, seed0);
	printf("cost estimate: wire(n) = %zu + n * %u/%u (empty entity: %zu bytes on the wire)\n", cost.fixed,
	    cost.num, cost.den, w0);
	printf("%10s %6s %10s %10s  %s\n", "bucket", "count", "min wire", "max wire", "histogram");
	for (int i = 0; i < n;) {
		size_t b = pad_bucket(padded[i]), lo = padded[i], hi = padded[i];
		int j = i, bar;

		while (j < n && pad_bucket(padded[j]) == b)
			hi = padded[j++];
		if (b - lo > below)
			below = b - lo;
		printf("%10zu %6d %10zu %10zu  ", b, j - i, lo, hi);
		for (bar = 0; bar < (j - i + 1) / 2; bar++)
			putchar('#');
		putchar('\n');
		buckets++;
		i = j;
	}
	printf("padded: %zu buckets; every wire size at most %zu bytes below its bucket's top\n", buckets, below);
	printf("unpadded: %zu distinct wire sizes\n", distinct);
	printf("overhead: mean %.1f%%, max %.1f%%\n", 100 * over_sum / n, 100 * over_max);
	free(padded);
	free(plain);
	free(entity);
	buf_release(&pad);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	return 0;
}
