/*
 * epoch - what a round of epoch key upkeep costs the keyholder (issue 17,
 * doc/key-exchange.md "Forward secrecy: epoch keys").
 *
 *   make bench/epoch && bench/epoch [USERS [rsa3072|p256]]   (default 10000 p256)
 *
 * A fresh key store (in TMPDIR) gets USERS local users with long-term
 * S/MIME keys of the given kind, sealed as cables-keyctl stores them; then
 * epochkeys_maintain() runs as cables-keyholder runs it, with the clock
 * moved by hand: at day 0 (every user's first epoch key), day 7 (every
 * user's next one: rotation) and day 14 (the first ones deleted with
 * secure_delete and the WAL truncated, the third made).  Prints wall and
 * CPU time per round and per user, and the store's size.  Figures only:
 * never fails on a number.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "addr.h"
#include "epochkeys.h"
#include "keystore.h"
#include "seal.h"
#include "smime.h"
#include "util.h"

#define DAY 86400LL
#define NOW 1790000000LL

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	    ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* USERS local users of b.test with sealed long-term keys. */
static void
populate(struct keystore *ks, const uint8_t *store_key, size_t users, enum smime_algo algo)
{
	for (size_t i = 0; i < users; i++) {
		char addr[64];
		X509 *cert;
		EVP_PKEY *key;
		struct key_record r;
		uint8_t *der, *blob;
		size_t der_len, blob_len;
		struct cables_err err;

		snprintf(addr, sizeof(addr), "user%zu@b.test", i);
		if (smime_generate(addr, algo, 365, (time_t)NOW, &cert, &key, &err) != CABLES_OK ||
		    smime_key_to_der(key, &der, &der_len, &err) != CABLES_OK) {
			fprintf(stderr, "bench/epoch: %s\n", err.msg);
			exit(1);
		}
		memset(&r, 0, sizeof(r));
		r.address = addr;
		strcpy(r.format, "smime");
		smime_cert_fingerprint(cert, r.fingerprint);
		if (seal_close(store_key, r.fingerprint, der, der_len, &blob, &blob_len, &err) != CABLES_OK) {
			fprintf(stderr, "bench/epoch: %s\n", err.msg);
			exit(1);
		}
		seal_free_secret(der, der_len);
		r.public_data = smime_cert_to_der(cert, &r.public_len);
		r.secret_data = blob;
		r.secret_len = blob_len;
		smime_cert_validity(cert, &r.not_before, &r.not_after);
		r.source = "generated";
		if (keystore_put(ks, &r, (time_t)NOW, &err) != CABLES_OK) {
			fprintf(stderr, "bench/epoch: %s\n", err.msg);
			exit(1);
		}
		free(r.public_data);
		free(blob);
		X509_free(cert);
		EVP_PKEY_free(key);
	}
}

static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

int
main(int argc, char **argv)
{
	size_t users = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000;
	enum smime_algo algo = SMIME_ALGO_P256;
	const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
	char dir[256], db[300], wal[310], shm[310];
	uint8_t store_key[SEAL_KEY_LEN];
	struct domain_list local = { 0 };
	struct keystore *ks;
	struct cables_err err;
	const long long days[] = { 0, 7, 14 };
	double w, c;

	if (argc > 2 && !smime_algo_parse(argv[2], &algo)) {
		fprintf(stderr, "usage: bench/epoch [USERS [rsa3072|p256]]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/cables-bench-epoch.XXXXXX", tmp);
	if (mkdtemp(dir) == NULL || RAND_bytes(store_key, sizeof(store_key)) != 1)
		return 1;
	snprintf(db, sizeof(db), "%s/keys.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	snprintf(shm, sizeof(shm), "%s-shm", db);
	if (keystore_open(&ks, db, true, &err) != CABLES_OK) {
		fprintf(stderr, "bench/epoch: %s\n", err.msg);
		return 1;
	}
	domain_list_add(&local, "b.test");
	printf("bench/epoch: %zu users, long-term keys %s, epoch keys P-256\n", users,
	    algo == SMIME_ALGO_P256 ? "P-256" : "RSA-3072");
	w = wall_seconds();
	populate(ks, store_key, users, algo);
	printf("  populate: %.1f s\n", wall_seconds() - w);
	for (size_t d = 0; d < sizeof(days) / sizeof(days[0]); d++) {
		struct epochkeys_env e = { ks, store_key, &local, { 7 * DAY, 6 * DAY }, NULL, NULL };
		struct epochkeys_counts n;

		w = wall_seconds();
		c = cpu_seconds();
		if (epochkeys_maintain(&e, NOW + days[d] * DAY, &n, &err) != CABLES_OK) {
			fprintf(stderr, "bench/epoch: %s\n", err.msg);
			return 1;
		}
		w = wall_seconds() - w;
		c = cpu_seconds() - c;
		printf("  day %2lld: %zu made, %zu deleted, %zu failed: %.2f s wall, %.2f s CPU, %.2f ms CPU a user; "
		    "store %lld KB (+WAL %lld KB)\n", days[d], n.made, n.deleted, n.failed, w, c,
		    users > 0 ? c * 1000 / (double)users : 0.0, file_size(db) / 1024, file_size(wal) / 1024);
	}
	keystore_close(ks);
	domain_list_release(&local);
	unlink(db);
	unlink(wal);
	unlink(shm);
	rmdir(dir);
	return 0;
}
