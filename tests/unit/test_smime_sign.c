/*
 * test_smime_sign - signing (multipart/signed pieces) and verification of
 * multipart/signed and opaque signed-data, cross-checked with OpenSSL's own
 * S/MIME parser in both directions.
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "helpers.h"
#include "mime.h"
#include "smime.h"
#include "spool.h"

#define NOW ((time_t)1790000000)
#define DAY 86400

static X509 *bob_cert, *ca_cert, *leaf_cert;
static EVP_PKEY *bob_key, *ca_key, *leaf_key;
static char *tmpdir;
static const char head[] = "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
static const char body[] = "Pay Mallory 1000 EUR.\r\n\r\n-- \r\nAlice\r\n";

static void
add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	X509_add_ext(c, ext, -1);
	X509_EXTENSION_free(ext);
}

/* A small CA and a leaf it issued for alice@a.test. */
static void
make_ca(void)
{
	time_t now = NOW;

	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	leaf_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_cert = X509_new();
	X509_set_version(ca_cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(ca_cert), 1);
	X509_time_adj_ex(X509_getm_notBefore(ca_cert), -10, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(ca_cert), 3650, 0, &now);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(ca_cert), "CN", MBSTRING_ASC, (const unsigned char *)"Test CA", -1, -1, 0);
	X509_set_issuer_name(ca_cert, X509_get_subject_name(ca_cert));
	X509_set_pubkey(ca_cert, ca_key);
	add_ext(ca_cert, ca_cert, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(ca_cert, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(ca_cert, ca_cert, NID_subject_key_identifier, "hash");
	X509_sign(ca_cert, ca_key, EVP_sha256());

	leaf_cert = X509_new();
	X509_set_version(leaf_cert, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(leaf_cert), 2);
	X509_time_adj_ex(X509_getm_notBefore(leaf_cert), -1, 0, &now);
	X509_time_adj_ex(X509_getm_notAfter(leaf_cert), 30, 0, &now);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf_cert), "CN", MBSTRING_ASC, (const unsigned char *)"Alice", -1, -1, 0);
	X509_set_issuer_name(leaf_cert, X509_get_subject_name(ca_cert));
	X509_set_pubkey(leaf_cert, leaf_key);
	add_ext(leaf_cert, ca_cert, NID_subject_alt_name, "email:alice@a.test");
	add_ext(leaf_cert, ca_cert, NID_key_usage, "digitalSignature,keyAgreement");
	add_ext(leaf_cert, ca_cert, NID_ext_key_usage, "emailProtection");
	X509_sign(leaf_cert, ca_key, EVP_sha256());
}

static int
setup(void **state)
{
	mime_init();
	if (smime_generate("bob@b.test", SMIME_ALGO_RSA3072, 365, NOW, &bob_cert, &bob_key, NULL) != CABLES_OK)
		return -1;
	make_ca();
	tmpdir = test_tempdir();
	return 0;
}

static int
teardown(void **state)
{
	X509_free(bob_cert);
	X509_free(ca_cert);
	X509_free(leaf_cert);
	EVP_PKEY_free(bob_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(leaf_key);
	test_rmdir(tmpdir);
	free(tmpdir);
	return 0;
}

static bool
always(void *arg, X509 *cert)
{
	return arg != NULL && X509_cmp(arg, cert) == 0;
}

/* Sign head+body with cert/key; return the multipart/signed body in a spool and its boundary. */
static struct spool *
signed_body(X509 *cert, EVP_PKEY *key, char *boundary, size_t blen, char *ct, size_t ctlen)
{
	struct spool *b = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0), *out = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	struct entity_src src;
	struct smime_signed s;
	struct cables_err err;
	const char *q;

	spool_append(b, body, strlen(body), NULL);
	entity_src_init(&src);
	entity_src_mem(&src, head, strlen(head));
	entity_src_spool(&src, b, 0, -1);
	if (smime_sign(cert, key, NULL, &src, &s, &err) != CABLES_OK)
		fail_msg("sign: %s", err.msg);
	spool_append(out, s.prologue.data, s.prologue.len, NULL);
	spool_append(out, head, strlen(head), NULL);
	spool_append(out, body, strlen(body), NULL);
	spool_append(out, s.epilogue.data, s.epilogue.len, NULL);
	q = strstr(s.content_type, "boundary=\"");
	assert_non_null(q);
	snprintf(boundary, blen, "%.*s", (int)(strchr(q + 10, '"') - q - 10), q + 10);
	snprintf(ct, ctlen, "%s", s.content_type);
	smime_signed_release(&s);
	spool_free(b);
	return out;
}

static void
test_our_signature_verifies_and_names_the_signer(void **state)
{
	char boundary[80], ct[256];
	struct spool *sp = signed_body(bob_cert, bob_key, boundary, sizeof(boundary), ct, sizeof(ct));
	struct smime_verify_ctx ctx = { NULL, always, bob_cert, NOW, tmpdir };
	struct smime_sig sig;
	struct cables_err err;

	assert_non_null(strstr(ct, "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256"));
	assert_int_equal(smime_verify_multipart(&ctx, boundary, sp, 0, -1, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_VALID);
	assert_string_equal(sig.signer, "bob@b.test");
	assert_int_equal(X509_cmp(sig.cert, bob_cert), 0);
	smime_sig_release(&sig);
	/* Not in the store, no anchors: untrusted, with the reason. */
	ctx.known = NULL;
	assert_int_equal(smime_verify_multipart(&ctx, boundary, sp, 0, -1, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_UNTRUSTED);
	assert_non_null(strstr(sig.reason, "not in the key store and no TrustAnchors"));
	smime_sig_release(&sig);
	spool_free(sp);
}

static void
test_openssl_verifies_our_multipart_signed(void **state)
{
	char boundary[80], ct[256], *whole, *data;
	struct spool *sp = signed_body(bob_cert, bob_key, boundary, sizeof(boundary), ct, sizeof(ct));
	size_t n = spool_size(sp), got;
	BIO *in, *cont = NULL, *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms;
	long len;

	whole = malloc(n + 400);
	snprintf(whole, 400, "Content-Type: %s\r\n\r\n", ct);
	spool_pread(sp, 0, whole + strlen(whole), n, &got, NULL);
	in = BIO_new_mem_buf(whole, (int)(strlen(ct) + 18 + n));
	cms = SMIME_read_CMS(in, &cont);
	assert_non_null(cms);
	assert_non_null(cont);
	if (CMS_verify(cms, NULL, NULL, cont, out, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		ERR_print_errors_fp(stderr);
		fail_msg("OpenSSL does not verify our signature");
	}
	len = BIO_get_mem_data(out, &data);
	assert_int_equal((size_t)len, strlen(head) + strlen(body));
	assert_memory_equal(data, head, strlen(head));
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(cont);
	BIO_free(out);
	free(whole);
	spool_free(sp);
}

static void
test_openssl_multipart_signed_verifies_through_a_ca(void **state)
{
	const char content[] = "Content-Type: text/plain\r\n\r\nsigned by openssl\r\n";
	BIO *in = BIO_new_mem_buf(content, -1), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = CMS_sign(leaf_cert, leaf_key, NULL, in, CMS_DETACHED | CMS_BINARY | CMS_STREAM);
	X509_STORE *anchors = X509_STORE_new();
	struct smime_verify_ctx ctx = { anchors, NULL, NULL, NOW, tmpdir };
	struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	struct smime_sig sig;
	struct cables_err err;
	char *data, *b, boundary[128], *body_start;
	long n;

	assert_non_null(cms);
	assert_int_equal(SMIME_write_CMS(out, cms, in, CMS_DETACHED | CMS_BINARY | CMS_STREAM), 1);
	n = BIO_get_mem_data(out, &data);
	b = strstr(data, "boundary=\"");
	assert_non_null(b);
	snprintf(boundary, sizeof(boundary), "%.*s", (int)(strchr(b + 10, '"') - b - 10), b + 10);
	body_start = strstr(data, "\n\n");	/* SMIME_write_CMS writes LF headers... */
	if (body_start == NULL || (strstr(data, "\r\n\r\n") != NULL && strstr(data, "\r\n\r\n") < body_start))
		body_start = strstr(data, "\r\n\r\n") + 2;
	body_start += 2;
	spool_append(sp, body_start, (size_t)(data + n - body_start), NULL);
	X509_STORE_add_cert(anchors, ca_cert);
	assert_int_equal(smime_verify_multipart(&ctx, boundary, sp, 0, -1, &sig, &err), CABLES_OK);
	if (sig.status != SMIME_SIG_VALID)
		fail_msg("status %s: %s", smime_sig_status_name(sig.status), sig.reason);
	assert_string_equal(sig.signer, "alice@a.test");
	smime_sig_release(&sig);
	/* After the leaf expired: untrusted, saying so. */
	ctx.now = NOW + 60 * DAY;
	assert_int_equal(smime_verify_multipart(&ctx, boundary, sp, 0, -1, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_UNTRUSTED);
	assert_non_null(strstr(sig.reason, "expired"));
	smime_sig_release(&sig);
	X509_STORE_free(anchors);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	spool_free(sp);
}

static void
test_tampered_content_is_invalid(void **state)
{
	char boundary[80], ct[256], *all;
	struct spool *sp = signed_body(bob_cert, bob_key, boundary, sizeof(boundary), ct, sizeof(ct)), *bad;
	struct smime_verify_ctx ctx = { NULL, always, bob_cert, NOW, tmpdir };
	struct smime_sig sig;
	size_t n = spool_size(sp), got;
	char *p;

	all = malloc(n);
	spool_pread(sp, 0, all, n, &got, NULL);
	p = strstr(all, "1000");
	p[0] = '9';
	bad = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	spool_append(bad, all, n, NULL);
	assert_int_equal(smime_verify_multipart(&ctx, boundary, bad, 0, -1, &sig, NULL), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_INVALID);
	assert_true(sig.reason[0] != '\0');
	smime_sig_release(&sig);
	free(all);
	spool_free(sp);
	spool_free(bad);
}

static void
test_malformed_multipart_is_a_syntax_error(void **state)
{
	const struct { const char *what, *boundary, *text, *reason; } cases[] = {
		{ "no boundary", "", "--x\r\na\r\n--x--\r\n", "without a usable boundary" },
		{ "not closed", "b", "--b\r\na\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n",
		    "exactly two parts" },
		{ "one part", "b", "--b\r\na\r\n--b--\r\n", "exactly two parts" },
		{ "three parts", "b", "--b\r\na\r\n--b\r\nb\r\n--b\r\nc\r\n--b--\r\n", "exactly two parts" },
		{ "wrong second part", "b", "--b\r\na\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
		    "the second part is text/plain" },
		{ "garbage signature", "b",
		    "--b\r\na\r\n--b\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--b--\r\n",
		    "not a CMS structure" },
		{ "boundary inside a line", "b", "x --b\r\na\r\n --b\r\n", "exactly two parts" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
		struct smime_verify_ctx ctx = { NULL, NULL, NULL, NOW, tmpdir };
		struct smime_sig sig;
		struct cables_err err = { "" };
		cables_status st;

		spool_append(sp, cases[i].text, strlen(cases[i].text), NULL);
		st = smime_verify_multipart(&ctx, cases[i].boundary, sp, 0, -1, &sig, &err);
		if (st != CABLES_ERR_SYNTAX || strstr(err.msg, cases[i].reason) == NULL)
			fail_msg("case '%s': status %d, '%s'", cases[i].what, st, err.msg);
		spool_free(sp);
	}
}

static void
test_opaque_signed_data_verifies_and_detects_tampering(void **state)
{
	BIO *in = BIO_new_mem_buf(body, -1), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = CMS_sign(bob_cert, bob_key, NULL, in, CMS_BINARY | CMS_STREAM);
	struct smime_verify_ctx ctx = { NULL, always, bob_cert, NOW, tmpdir };
	struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0), *bad = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	struct smime_sig sig;
	struct cables_err err;
	char *der, *pos;
	long n;

	assert_int_equal(i2d_CMS_bio_stream(out, cms, in, CMS_BINARY | CMS_STREAM), 1);
	n = BIO_get_mem_data(out, &der);
	spool_append(sp, der, (size_t)n, NULL);
	assert_int_equal(smime_verify_opaque(&ctx, sp, 0, false, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_VALID);
	assert_string_equal(sig.signer, "bob@b.test");
	smime_sig_release(&sig);
	pos = memmem(der, (size_t)n, "1000", 4);
	assert_non_null(pos);
	pos[0] = '9';
	spool_append(bad, der, (size_t)n, NULL);
	assert_int_equal(smime_verify_opaque(&ctx, bad, 0, false, &sig, &err), CABLES_OK);
	assert_int_equal(sig.status, SMIME_SIG_INVALID);
	smime_sig_release(&sig);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	spool_free(sp);
	spool_free(bad);
}

static void
test_signing_certificate_checks(void **state)
{
	static const struct addr_opts ao = { false, "+" };
	struct cables_err err;

	assert_int_equal(smime_cert_check_signing(bob_cert, "bob@b.test", &ao, NOW, &err), CABLES_OK);
	assert_int_equal(smime_cert_check_signing(leaf_cert, "alice@a.test", &ao, NOW, &err), CABLES_OK);
	assert_int_equal(smime_cert_check_signing(leaf_cert, "bob@b.test", &ao, NOW, &err), CABLES_ERR_UNUSABLE);
	assert_int_equal(smime_cert_check_signing(ca_cert, "alice@a.test", &ao, NOW, &err), CABLES_ERR_UNUSABLE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_our_signature_verifies_and_names_the_signer),
		cmocka_unit_test(test_openssl_verifies_our_multipart_signed),
		cmocka_unit_test(test_openssl_multipart_signed_verifies_through_a_ca),
		cmocka_unit_test(test_tampered_content_is_invalid),
		cmocka_unit_test(test_malformed_multipart_is_a_syntax_error),
		cmocka_unit_test(test_opaque_signed_data_verifies_and_detects_tampering),
		cmocka_unit_test(test_signing_certificate_checks),
	};

	return cmocka_run_group_tests_name("smime_sign", tests, setup, teardown);
}
