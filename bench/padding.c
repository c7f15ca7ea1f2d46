/*
 * padding - what size buckets make of real S/MIME wire sizes (issue 16).
 *
 *   make bench/padding && bench/padding [MESSAGES [SEED]]   (default 200 16)
 *
 * MESSAGES entities of random length from 100 B to 200 KB are encrypted
 * by smime_encrypt() to one RSA-3072 certificate (made on the spot), once
 * as they are and once padded by lib/pad.c to the bucket of their wire
 * size as smime_pad_cost() estimates it, the estimate the milter uses.
 * Prints the histogram of padded wire sizes (the base64 body the MTA
 * sends), how many distinct sizes there were without padding, and the
 * overhead; then, for other recipient keys, ciphers and counts, how far
 * below its bucket's top each padded size landed and how many crossed
 * into the bucket above the one aimed at (an estimate too low).  Figures
 * only: never fails on a number.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "entity.h"
#include "pad.h"
#include "sink.h"
#include "smime.h"
#include "util.h"

#define HEAD "Content-Type: text/plain; charset=us-ascii\r\n\r\n"

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
wire(const struct smime_encrypt_opts *o, STACK_OF(X509) *certs, const struct buf *pad, const char *entity,
    size_t len)
{
	struct entity_src src;
	size_t total = 0;
	struct byte_sink sink = { count_bytes, &total };
	struct cables_err err;

	entity_src_init(&src);
	if (pad != NULL)
		entity_src_mem(&src, pad->data, pad->len);
	entity_src_mem(&src, entity, len);
	if (smime_encrypt(o, certs, &src, &sink, &err) != CABLES_OK) {
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

/* A self-signed certificate for a new key of type ("RSA" bits, or "EC" curve) named cn. */
static X509 *
make_cert(const char *type, const char *param, const char *cn)
{
	EVP_PKEY *key = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)atoi(param)) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	X509 *cert = X509_new();
	X509_NAME *name = X509_NAME_new();

	if (key == NULL || cert == NULL || name == NULL) {
		fprintf(stderr, "padding: cannot make a %s %s key\n", type, param);
		exit(1);
	}
	X509_set_version(cert, X509_VERSION_3);
	ASN1_INTEGER_set_int64(X509_get_serialNumber(cert), 0x1234567890abcdefLL);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(cert, name);
	X509_set_issuer_name(cert, name);
	X509_gmtime_adj(X509_getm_notBefore(cert), 0);
	X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
	X509_set_pubkey(cert, key);
	X509_sign(cert, key, EVP_sha256());
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return cert;
}

/* A random entity of len bytes (HEAD, then lines of letters) in entity. */
static void
fill(char *entity, size_t len, unsigned int *seed)
{
	memcpy(entity, HEAD, strlen(HEAD));
	for (size_t k = strlen(HEAD); k < len; k++)
		entity[k] = ((k - strlen(HEAD)) % 72 == 71) ? '\n' : (char)('a' + rand_r(seed) % 26);
}

/*
 * Pad n random entities for certs and o by smime_pad_cost(); how far below
 * its bucket's top each wire size lands (min, max) and how many crossed the
 * top of the bucket aimed at.  Sizes go to padded (and plain) when given.
 */
static void
run(const char *label, const struct smime_encrypt_opts *o, STACK_OF(X509) *certs, int n, unsigned int seed,
    char *entity, size_t *padded, size_t *plain)
{
	X509 **v = xcalloc((size_t)sk_X509_num(certs) + 1, sizeof(*v));
	struct pad_cost cost;
	struct cables_err err;
	struct buf pad, least;
	size_t lo = (size_t)-1, hi = 0, crossed = 0, higher = 0;

	for (int i = 0; i < sk_X509_num(certs); i++)
		v[i] = sk_X509_value(certs, i);
	smime_pad_cost(o, v, (size_t)sk_X509_num(certs), 2, &cost);
	buf_init(&pad);
	buf_init(&least);
	if (pad_write(PAD_FIELD_MIN, collect, &least, &err) != CABLES_OK) {
		fprintf(stderr, "padding: %s\n", err.msg);
		exit(1);
	}
	for (int i = 0; i < n; i++) {
		size_t body = 100 + (size_t)rand_r(&seed) % (200 * 1024 - 100 + 1), len = strlen(HEAD) + body, t, w, b;

		fill(entity, len, &seed);
		t = pad_target(len, &cost, 0);
		buf_reset(&pad);
		if (t > len && pad_write(t - len, collect, &pad, &err) != CABLES_OK) {
			fprintf(stderr, "padding: %s\n", err.msg);
			exit(1);
		}
		w = wire(o, certs, &pad, entity, len);
		b = pad_bucket(pad_wire(&cost, len + PAD_FIELD_MIN));
		/* Needed: the bucket of the wire size with the shortest field; a high estimate aims past it. */
		if (pad_bucket(w) > pad_bucket(wire(o, certs, &least, entity, len)))
			higher++;
		if (w > b)
			crossed++;
		else if (b - w < lo)
			lo = b - w;
		if (w <= b && b - w > hi)
			hi = b - w;
		if (padded != NULL)
			padded[i] = w;
		if (plain != NULL)
			plain[i] = wire(o, certs, NULL, entity, len);
	}
	printf("%-30s fixed %5zu  below the top: %4zu .. %4zu  crossed: %zu  a bucket too high: %zu  (of %d)\n",
	    label, cost.fixed, lo == (size_t)-1 ? 0 : lo, hi, crossed, higher, n);
	buf_release(&pad);
	buf_release(&least);
	free(v);
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *label, *type, *param;
		int count;		/* recipients */
		enum cipher_choice cipher;
		enum rsa_padding padding;
		const char *cn;
	} shapes[] = {
		{ "RSA-2048, aes256-cbc", "RSA", "2048", 1, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "bob@b.test" },
		{ "RSA-4096, aes256-cbc", "RSA", "4096", 1, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "bob@b.test" },
		{ "RSA-3072 OAEP, aes256-gcm", "RSA", "3072", 1, CIPHER_AES256_GCM, RSA_PAD_OAEP, "bob@b.test" },
		{ "RSA-3072, long issuer name", "RSA", "3072", 1, CIPHER_AES256_CBC, RSA_PAD_PKCS1,
		    "Issuing CA for the Certification Services Department of a Very Long Organisation Name" },
		{ "P-256, aes256-cbc", "EC", "P-256", 1, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "bob@b.test" },
		{ "P-384, aes256-gcm", "EC", "P-384", 1, CIPHER_AES256_GCM, RSA_PAD_PKCS1, "bob@b.test" },
		{ "P-521, aes256-cbc", "EC", "P-521", 1, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "bob@b.test" },
		{ "3 x RSA-3072, aes256-cbc", "RSA", "3072", 3, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "bob@b.test" },
		{ "5 x P-256, aes256-gcm", "EC", "P-256", 5, CIPHER_AES256_GCM, RSA_PAD_PKCS1, "bob@b.test" },
	};
	int n = argc > 1 ? atoi(argv[1]) : 200;
	unsigned int seed0 = argc > 2 ? (unsigned int)atoi(argv[2]) : 16;
	size_t *padded, *plain, distinct = 0, buckets = 0, below = 0;
	double over_sum = 0, over_max = 0;
	struct smime_encrypt_opts cbc = { CIPHER_AES256_CBC, RSA_PAD_PKCS1 };
	STACK_OF(X509) *certs = sk_X509_new_null();
	X509 *cert;
	EVP_PKEY *key;
	struct cables_err err;
	char *entity;

	if (n <= 0)
		n = 200;
	if (smime_generate("bob@b.test", SMIME_ALGO_RSA3072, 30, time(NULL), &cert, &key, &err) != CABLES_OK) {
		fprintf(stderr, "padding: %s\n", err.msg);
		return 1;
	}
	sk_X509_push(certs, cert);
	entity = xcalloc(1, strlen(HEAD) + 200 * 1024 + 1);
	padded = xcalloc((size_t)n, sizeof(*padded));
	plain = xcalloc((size_t)n, sizeof(*plain));
	printf("padding: %d S/MIME messages (RSA-3072, aes256-cbc), bodies 100 B .. 200 KB, seed %u\n", n, seed0);
	run("RSA-3072, aes256-cbc", &cbc, certs, n, seed0, entity, padded, plain);
	for (int i = 0; i < n; i++) {
		over_sum += (double)padded[i] / (double)plain[i] - 1;
		if ((double)padded[i] / (double)plain[i] - 1 > over_max)
			over_max = (double)padded[i] / (double)plain[i] - 1;
	}
	qsort(padded, (size_t)n, sizeof(*padded), cmp_size);
	qsort(plain, (size_t)n, sizeof(*plain), cmp_size);
	for (int i = 0; i < n; i++)
		if (i == 0 || plain[i] != plain[i - 1])
			distinct++;
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
	printf("other recipients (%d messages each):\n", n / 4 > 0 ? n / 4 : 1);
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		struct smime_encrypt_opts o = { shapes[k].cipher, shapes[k].padding };
		STACK_OF(X509) *cs = sk_X509_new_null();

		for (int r = 0; r < shapes[k].count; r++)
			sk_X509_push(cs, make_cert(shapes[k].type, shapes[k].param, shapes[k].cn));
		run(shapes[k].label, &o, cs, n / 4 > 0 ? n / 4 : 1, seed0 + (unsigned int)k + 1, entity, NULL, NULL);
		sk_X509_pop_free(cs, X509_free);
	}
	free(padded);
	free(plain);
	free(entity);
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	return 0;
}
