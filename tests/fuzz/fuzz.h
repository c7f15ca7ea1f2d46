/*
 * fuzz - shared by the libFuzzer targets in tests/fuzz: the entry points
 * libFuzzer calls, the fixed test keys (keys/test-only-*.pem, loaded from
 * FUZZ_KEYS_DIR or $CABLES_FUZZ_KEYS), a scratch directory for spools, and
 * splitting an input into lines.
 *
 * Everything here is set up once (LLVMFuzzerInitialize) and stays the same
 * between runs; a run must free what it allocates.  Failures to set up are
 * fatal: a target that cannot load its keys would fuzz nothing.
 */
#ifndef CABLES_FUZZ_H
#define CABLES_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "spool.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Exit with a message (set-up failures only). */
void fuzz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Path of a test key file (static storage, overwritten by the next call). */
const char *fuzz_key_path(const char *name);

/* The certificate and private key of keys/test-only-NAME.pem; dies when missing. */
void fuzz_load_key(const char *name, X509 **cert, EVP_PKEY **key);

/* A time at which every test certificate is valid: a day after the newest notBefore. */
time_t fuzz_now(X509 *const *certs, size_t n);

/* A scratch directory, removed at exit (made once). */
const char *fuzz_tmpdir(void);

/*
 * The line at *off (without its line break) as a malloc'd C string cut at
 * the first NUL; *off moves past the line break.  Empty at the end.
 */
char *fuzz_line(const uint8_t *data, size_t size, size_t *off);

/*
 * A spool holding p[0..n).  Inputs of odd length move to a file after 256
 * bytes, so that both spool backends (memory and file) are exercised.
 */
struct spool *fuzz_spool(const void *p, size_t n);

#endif
