/*
 * fuzz_verify - S/MIME signature verification: multipart/signed framing
 * and the signature part, opaque signed data (base64 and binary, through
 * cms_detach), and judging the signer against the test CA (TrustAnchors)
 * and a key store that holds bob's certificates.
 *
 * Input: the boundary on the first line, the body after it.  The body is
 * verified as a multipart/signed body with that boundary and as an opaque
 * signed-data body, both base64 and binary.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mime.h"
#include "smime.h"
#include "util.h"

static X509 *bob_rsa, *bob_ec, *alice;
static X509_STORE *anchors;
static time_t now;
static bool verbose;	/* $CABLES_FUZZ_VERBOSE: print each result (to check the seeds) */

static void
cleanup(void)
{
	X509_free(bob_rsa);
	X509_free(bob_ec);
	X509_free(alice);
	X509_STORE_free(anchors);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cables_err err;
	EVP_PKEY *key;
	X509 *certs[3];

	mime_init();
	fuzz_tmpdir();
	fuzz_load_key("bob-rsa", &bob_rsa, &key);
	EVP_PKEY_free(key);
	fuzz_load_key("bob-ec", &bob_ec, &key);
	EVP_PKEY_free(key);
	fuzz_load_key("alice", &alice, &key);
	EVP_PKEY_free(key);
	if ((anchors = smime_anchors_load(fuzz_key_path("ca"), &err)) == NULL)
		fuzz_die("%s", err.msg);
	certs[0] = bob_rsa;
	certs[1] = bob_ec;
	certs[2] = alice;
	now = fuzz_now(certs, 3);
	verbose = getenv("CABLES_FUZZ_VERBOSE") != NULL;
	atexit(cleanup);
	return 0;
}

/* The key store's answer: it holds bob's certificates. */
static bool
known(void *arg, X509 *cert)
{
	return X509_cmp(cert, bob_rsa) == 0 || X509_cmp(cert, bob_ec) == 0;
}

static void
check(const char *what, cables_status st, struct smime_sig *sig, const struct cables_err *err)
{
	if (verbose)
		fprintf(stderr, "%s: %s: %s %s %s\n", what, cables_strerror(st), st == CABLES_OK ?
		    smime_sig_status_name(sig->status) : err->msg, sig->signer, sig->reason);
	if (st == CABLES_OK && sig->status == SMIME_SIG_VALID && sig->cert == NULL)
		abort();	/* valid, but no signer */
	if (memchr(sig->reason, '\0', sizeof(sig->reason)) == NULL || memchr(sig->signer, '\0', sizeof(sig->signer)) == NULL ||
	    (st != CABLES_OK && memchr(err->msg, '\0', sizeof(err->msg)) == NULL))
		abort();
	(void)smime_sig_status_name(sig->status);
	smime_sig_release(sig);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smime_verify_ctx ctx = { anchors, known, NULL, now, fuzz_tmpdir() };
	size_t off = 0;
	char *boundary = fuzz_line(data, size, &off);
	struct spool *sp = fuzz_spool(data, size);
	struct smime_sig sig;
	struct cables_err err;
	cables_status st;

	st = smime_verify_multipart(&ctx, boundary, sp, (off_t)off, -1, &sig, &err);
	check("multipart", st, &sig, &err);
	st = smime_verify_opaque(&ctx, sp, (off_t)off, true, &sig, &err);
	check("opaque base64", st, &sig, &err);
	st = smime_verify_opaque(&ctx, sp, (off_t)off, false, &sig, &err);
	check("opaque binary", st, &sig, &err);
	spool_free(sp);
	free(boundary);
	return 0;
}
