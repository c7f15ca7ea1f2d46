/* test_smime - S/MIME certificates, key generation, files and streaming encryption. */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "helpers.h"
#include "seal.h"
#include "smime.h"
#include "spool.h"

#define NOW ((time_t)1790000000)	/* 2026-09-21, a fixed clock */

static X509 *rsa_cert, *ec_cert;
static EVP_PKEY *rsa_key, *ec_key;
static const struct addr_opts ao = { false, "+" };

static int
setup_keys(void **state)
{
	struct cables_err err;

	if (smime_generate("bob@b.test", SMIME_ALGO_RSA3072, 365, NOW, &rsa_cert, &rsa_key, &err) != CABLES_OK ||
	    smime_generate("carol@c.test", SMIME_ALGO_P256, 365, NOW, &ec_cert, &ec_key, &err) != CABLES_OK) {
		fprintf(stderr, "keygen: %s\n", err.msg);
		return -1;
	}
	return 0;
}

static int
teardown_keys(void **state)
{
	X509_free(rsa_cert);
	X509_free(ec_cert);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	return 0;
}

/* Encrypt head+body to certs; returns the base64 text in sink. */
static cables_status
encrypt_to(STACK_OF(X509) *certs, enum cipher_choice cipher, enum rsa_padding pad,
    const char *head, struct spool *body, struct mem_sink *sink, struct cables_err *err)
{
	struct smime_encrypt_opts o = { cipher, pad };
	struct entity_src src;

	entity_src_init(&src);
	entity_src_mem(&src, head, strlen(head));
	entity_src_spool(&src, body, 0, -1);
	return smime_encrypt(&o, certs, &src, &sink->sink, err);
}

static STACK_OF(X509) *
stack_of(X509 *a, X509 *b)
{
	STACK_OF(X509) *s = sk_X509_new_null();

	sk_X509_push(s, a);
	if (b != NULL)
		sk_X509_push(s, b);
	return s;
}

static struct spool *
spool_with(const char *text, size_t len, const char *dir)
{
	struct spool *sp = spool_new(dir, SPOOL_MEMORY_LIMIT, 0);

	assert_int_equal(spool_append(sp, text, len, NULL), CABLES_OK);
	return sp;
}

static void
assert_decrypts_to(const struct buf *b64, X509 *cert, EVP_PKEY *key, const char *expect, size_t len)
{
	size_t der_len, plain_len;
	uint8_t *der = test_b64_decode(b64->data, b64->len, &der_len);
	uint8_t *plain;

	assert_non_null(der);
	plain = test_cms_decrypt(der, der_len, cert, key, &plain_len);
	assert_non_null(plain);
	assert_int_equal(plain_len, len);
	assert_memory_equal(plain, expect, len);
	free(plain);
	free(der);
}

static void
test_encrypt_to_rsa_and_ec_recipients(void **state)
{
	const char *head = "Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\r\n";
	const char *body = "Hello Bob,\r\n\r\nthis is secret. \xc3\xa4\xc3\xb6\r\n.\r\n";
	char *dir = test_tempdir(), *whole;
	struct spool *sp = spool_with(body, strlen(body), dir);
	STACK_OF(X509) *certs = stack_of(rsa_cert, ec_cert);
	struct mem_sink sink;
	struct cables_err err;

	mem_sink_init(&sink);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, head, sp, &sink, &err), CABLES_OK);
	whole = xasprintf("%s%s", head, body);
	assert_decrypts_to(&sink.data, rsa_cert, rsa_key, whole, strlen(whole));
	assert_decrypts_to(&sink.data, ec_cert, ec_key, whole, strlen(whole));
	free(whole);
	mem_sink_release(&sink);
	sk_X509_free(certs);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_output_is_76_column_crlf_base64(void **state)
{
	char *dir = test_tempdir();
	struct spool *sp;
	STACK_OF(X509) *certs = stack_of(rsa_cert, NULL);
	struct mem_sink sink;
	char body[5000];
	size_t i, start, nlines = 0;

	memset(body, 'x', sizeof(body));
	sp = spool_with(body, sizeof(body), dir);
	mem_sink_init(&sink);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "\r\n", sp, &sink, NULL), CABLES_OK);
	assert_true(sink.data.len > 5000);
	for (start = 0, i = 0; i < sink.data.len; i++) {
		if (sink.data.data[i] != '\n')
			continue;
		assert_true(i > start && sink.data.data[i - 1] == '\r');
		/* Every line but the last is exactly 76 characters. */
		if (i + 1 < sink.data.len)
			assert_int_equal(i - 1 - start, 76);
		else
			assert_true(i - 1 - start <= 76 && i - 1 - start > 0);
		start = i + 1;
		nlines++;
	}
	assert_int_equal(start, sink.data.len);	/* ends with CRLF */
	assert_true(nlines > 60);
	mem_sink_release(&sink);
	sk_X509_free(certs);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static int
cms_type_nid(const struct buf *b64)
{
	size_t der_len;
	uint8_t *der = test_b64_decode(b64->data, b64->len, &der_len);
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
	int nid = cms != NULL ? OBJ_obj2nid(CMS_get0_type(cms)) : NID_undef;

	CMS_ContentInfo_free(cms);
	free(der);
	return nid;
}

static void
test_cipher_choice_selects_content_type(void **state)
{
	const char *head = "Content-Type: text/plain\r\n\r\n";
	char *dir = test_tempdir();
	struct spool *sp = spool_with("gcm body\r\n", 10, dir);
	STACK_OF(X509) *certs = stack_of(rsa_cert, NULL);
	struct mem_sink cbc, gcm;

	mem_sink_init(&cbc);
	mem_sink_init(&gcm);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, head, sp, &cbc, NULL), CABLES_OK);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_GCM, RSA_PAD_PKCS1, head, sp, &gcm, NULL), CABLES_OK);
	assert_int_equal(cms_type_nid(&cbc.data), NID_pkcs7_enveloped);
	assert_int_equal(cms_type_nid(&gcm.data), NID_id_smime_ct_authEnvelopedData);
	assert_decrypts_to(&gcm.data, rsa_cert, rsa_key, "Content-Type: text/plain\r\n\r\ngcm body\r\n", 38);
	mem_sink_release(&cbc);
	mem_sink_release(&gcm);
	sk_X509_free(certs);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static int
first_ktri_padding_nid(const struct buf *b64)
{
	size_t der_len;
	uint8_t *der = test_b64_decode(b64->data, b64->len, &der_len);
	const unsigned char *p = der;
	CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)der_len);
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(cms);
	X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	int nid;

	CMS_RecipientInfo_ktri_get0_algs(sk_CMS_RecipientInfo_value(ris, 0), NULL, NULL, &alg);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	CMS_ContentInfo_free(cms);
	free(der);
	return nid;
}

static void
test_rsa_oaep_when_configured(void **state)
{
	const char *head = "\r\n";
	STACK_OF(X509) *certs = stack_of(rsa_cert, NULL);
	struct mem_sink pkcs1, oaep;

	mem_sink_init(&pkcs1);
	mem_sink_init(&oaep);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, head, NULL, &pkcs1, NULL), CABLES_OK);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_OAEP, head, NULL, &oaep, NULL), CABLES_OK);
	assert_int_equal(first_ktri_padding_nid(&pkcs1.data), NID_rsaEncryption);
	assert_int_equal(first_ktri_padding_nid(&oaep.data), NID_rsaesOaep);
	assert_decrypts_to(&oaep.data, rsa_cert, rsa_key, "\r\n", 2);
	mem_sink_release(&pkcs1);
	mem_sink_release(&oaep);
	sk_X509_free(certs);
}

static void
test_large_body_streams_in_bounded_chunks(void **state)
{
	char *dir = test_tempdir(), *expect, *block = malloc(1 << 20);
	struct spool *sp = spool_new(dir, SPOOL_MEMORY_LIMIT, 0);
	STACK_OF(X509) *certs = stack_of(ec_cert, NULL);
	struct mem_sink sink;
	const char *head = "Content-Type: application/octet-stream\r\n\r\n";
	size_t i, total;

	for (i = 0; i < (1 << 20); i++)
		block[i] = (char)(i * 7 + i / 251);
	for (i = 0; i < 3; i++)
		assert_int_equal(spool_append(sp, block, 1 << 20, NULL), CABLES_OK);
	assert_true(spool_on_disk(sp));
	mem_sink_init(&sink);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, head, sp, &sink, NULL), CABLES_OK);
	assert_true(sink.max_chunk <= SINK_CHUNK_MAX);
	assert_true(sink.writes > 10);
	total = strlen(head) + 3 * (1 << 20);
	expect = malloc(total);
	memcpy(expect, head, strlen(head));
	for (i = 0; i < 3; i++)
		memcpy(expect + strlen(head) + i * (1 << 20), block, 1 << 20);
	assert_decrypts_to(&sink.data, ec_cert, ec_key, expect, total);
	free(expect);
	free(block);
	mem_sink_release(&sink);
	sk_X509_free(certs);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_sink_failure_is_reported(void **state)
{
	STACK_OF(X509) *certs = stack_of(rsa_cert, NULL);
	struct mem_sink sink;
	struct cables_err err;
	char body[200000];
	char *dir = test_tempdir();
	struct spool *sp;

	memset(body, 'a', sizeof(body));
	sp = spool_with(body, sizeof(body), dir);
	mem_sink_init(&sink);
	sink.fail_after = 2;
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "\r\n", sp, &sink, &err), CABLES_ERR_IO);
	assert_non_null(strstr(err.msg, "test sink refuses write 2"));
	mem_sink_release(&sink);
	sk_X509_free(certs);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
}

static void
test_no_recipients_is_an_error(void **state)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct mem_sink sink;
	struct cables_err err;

	mem_sink_init(&sink);
	assert_int_equal(encrypt_to(certs, CIPHER_AES256_CBC, RSA_PAD_PKCS1, "\r\n", NULL, &sink, &err), CABLES_ERR_ARG);
	assert_int_equal(sink.data.len, 0);
	mem_sink_release(&sink);
	sk_X509_free(certs);
}

/* A certificate with chosen extensions, signed by key itself. */
static X509 *
make_cert(EVP_PKEY *key, const char *san, const char *ku, const char *eku, long from, long to)
{
	X509 *c = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	time_t now = NOW;

	X509_set_version(c, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 42);
	X509_time_adj_ex(X509_getm_notBefore(c), 0, from, &now);
	X509_time_adj_ex(X509_getm_notAfter(c), 0, to, &now);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_set_pubkey(c, key);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
	if (san != NULL && (ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san)) != NULL) {
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (ku != NULL && (ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, ku)) != NULL) {
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (eku != NULL && (ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_ext_key_usage, eku)) != NULL) {
		X509_add_ext(c, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(c, key, EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519 ? NULL : EVP_sha256());
	return c;
}

static void
test_certificate_usability_checks(void **state)
{
	EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	const long day = 86400;
	const struct {
		const char *what;
		X509 *cert;
		const char *addr;
		cables_status expect;
		const char *reason;
	} cases[] = {
		{ "valid", make_cert(rsa_key, "email:Bob@B.Test", "keyEncipherment", "emailProtection", -day, day),
		    "bob@b.test", CABLES_OK, NULL },
		{ "no extensions but subject email", NULL, "bob@b.test", CABLES_OK, NULL },
		{ "expired", make_cert(rsa_key, "email:bob@b.test", NULL, NULL, -2 * day, -day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "expired on" },
		{ "not yet valid", make_cert(rsa_key, "email:bob@b.test", NULL, NULL, day, 2 * day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "not valid before" },
		{ "other address", make_cert(rsa_key, "email:alice@b.test", NULL, NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "no email address matching bob@b.test" },
		{ "DNS name only", make_cert(rsa_key, "DNS:b.test", NULL, NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "no email address matching" },
		{ "signing only RSA", make_cert(rsa_key, "email:bob@b.test", "digitalSignature", NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "keyEncipherment" },
		{ "signing only EC", make_cert(ec_key, "email:bob@b.test", "digitalSignature", NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "keyAgreement" },
		{ "TLS server EKU", make_cert(rsa_key, "email:bob@b.test", NULL, "serverAuth", -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "emailProtection" },
		{ "weak RSA", make_cert(weak, "email:bob@b.test", NULL, NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "RSA 1024 key is too weak" },
		{ "Ed25519", make_cert(ed, "email:bob@b.test", NULL, NULL, -day, day),
		    "bob@b.test", CABLES_ERR_UNUSABLE, "ED25519 keys cannot be used" },
	};
	X509 *subject_only;
	struct cables_err err;

	/* A certificate naming the address only in the subject's emailAddress. */
	subject_only = make_cert(rsa_key, NULL, NULL, NULL, -day, day);
	X509_NAME_add_entry_by_NID(X509_get_subject_name(subject_only), NID_pkcs9_emailAddress,
	    MBSTRING_ASC, (const unsigned char *)"bob@b.test", -1, -1, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *c = cases[i].cert != NULL ? cases[i].cert : subject_only;
		cables_status st;

		err.msg[0] = '\0';
		st = smime_cert_check(c, cases[i].addr, &ao, NOW, &err);
		if (st != cases[i].expect || (cases[i].reason != NULL && strstr(err.msg, cases[i].reason) == NULL))
			fail_msg("case '%s': status %d, reason '%s'", cases[i].what, st, err.msg);
		if (cases[i].cert != NULL)
			X509_free(cases[i].cert);
	}
	X509_free(subject_only);
	EVP_PKEY_free(weak);
	EVP_PKEY_free(ed);
}

static void
test_generated_certificates_are_usable(void **state)
{
	char **emails, fpr[65];
	size_t n;

	assert_int_equal(smime_cert_check(rsa_cert, "bob@b.test", &ao, NOW, NULL), CABLES_OK);
	assert_int_equal(smime_cert_check(ec_cert, "carol@c.test", &ao, NOW, NULL), CABLES_OK);
	/* Sub-address and case are folded the same way on both sides. */
	assert_int_equal(smime_cert_check(rsa_cert, "bob@b.test", &ao, NOW + 364 * 86400, NULL), CABLES_OK);
	assert_int_equal(smime_cert_check(rsa_cert, "bob@b.test", &ao, NOW + 366 * 86400, NULL), CABLES_ERR_UNUSABLE);
	n = smime_cert_emails(rsa_cert, &emails);
	assert_int_equal(n, 1);
	assert_string_equal(emails[0], "bob@b.test");
	smime_free_emails(emails, n);
	smime_cert_fingerprint(rsa_cert, fpr);
	assert_int_equal(strlen(fpr), 64);
}

static void
test_private_key_der_round_trip(void **state)
{
	uint8_t *der;
	size_t len;
	EVP_PKEY *back;

	assert_int_equal(smime_key_to_der(ec_key, &der, &len, NULL), CABLES_OK);
	back = smime_key_from_der(der, len);
	assert_non_null(back);
	assert_true(smime_key_matches(ec_cert, back));
	assert_false(smime_key_matches(rsa_cert, back));
	EVP_PKEY_free(back);
	seal_free_secret(der, len);
}

static char *
write_temp(const char *dir, const char *name, const void *data, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	fwrite(data, 1, len, fp);
	fclose(fp);
	return path;
}

static void
test_load_pem_der_and_pkcs12_files(void **state)
{
	char *dir = test_tempdir(), *path;
	BIO *mem = BIO_new(BIO_s_mem());
	STACK_OF(X509) *certs;
	EVP_PKEY *key;
	PKCS12 *p12;
	unsigned char *der = NULL;
	char *data;
	long n;
	int dlen;
	struct cables_err err;

	/* PEM: certificate and private key together. */
	PEM_write_bio_X509(mem, rsa_cert);
	PEM_write_bio_PrivateKey(mem, rsa_key, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(mem, &data);
	path = write_temp(dir, "both.pem", data, (size_t)n);
	assert_int_equal(smime_load_file(path, NULL, &certs, &key, &err), CABLES_OK);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_non_null(key);
	assert_true(smime_key_matches(sk_X509_value(certs, 0), key));
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	free(path);

	/* DER certificate. */
	dlen = i2d_X509(ec_cert, &der);
	path = write_temp(dir, "cert.der", der, (size_t)dlen);
	OPENSSL_free(der);
	assert_int_equal(smime_load_file(path, NULL, &certs, &key, &err), CABLES_OK);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_null(key);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), ec_cert), 0);
	sk_X509_pop_free(certs, X509_free);
	free(path);

	/* PKCS#12 with a passphrase; the wrong one is refused with a reason. */
	p12 = PKCS12_create("s3cret", "bob", rsa_key, rsa_cert, NULL, 0, 0, 0, 0, 0);
	assert_non_null(p12);
	der = NULL;
	dlen = i2d_PKCS12(p12, &der);
	PKCS12_free(p12);
	path = write_temp(dir, "bob.p12", der, (size_t)dlen);
	OPENSSL_free(der);
	assert_int_equal(smime_load_file(path, "s3cret", &certs, &key, &err), CABLES_OK);
	assert_int_equal(sk_X509_num(certs), 1);
	assert_true(smime_key_matches(rsa_cert, key));
	sk_X509_pop_free(certs, X509_free);
	EVP_PKEY_free(key);
	assert_int_equal(smime_load_file(path, "wrong", &certs, &key, &err), CABLES_ERR_CRYPTO);
	assert_non_null(strstr(err.msg, "wrong passphrase"));
	free(path);

	/* Garbage, empty, and missing files. */
	path = write_temp(dir, "junk", "hello world\n", 12);
	assert_int_equal(smime_load_file(path, NULL, &certs, &key, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "not a PEM, DER certificate or PKCS#12 file"));
	free(path);
	path = write_temp(dir, "empty", "", 0);
	assert_int_equal(smime_load_file(path, NULL, &certs, &key, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "empty file"));
	free(path);
	path = write_temp(dir, "bad.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58);
	assert_int_equal(smime_load_file(path, NULL, &certs, &key, &err), CABLES_ERR_SYNTAX);
	free(path);
	assert_int_equal(smime_load_file("/nonexistent/x.pem", NULL, &certs, &key, &err), CABLES_ERR_IO);
	BIO_free(mem);
	test_rmdir(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encrypt_to_rsa_and_ec_recipients),
		cmocka_unit_test(test_output_is_76_column_crlf_base64),
		cmocka_unit_test(test_cipher_choice_selects_content_type),
		cmocka_unit_test(test_rsa_oaep_when_configured),
		cmocka_unit_test(test_large_body_streams_in_bounded_chunks),
		cmocka_unit_test(test_sink_failure_is_reported),
		cmocka_unit_test(test_no_recipients_is_an_error),
		cmocka_unit_test(test_certificate_usability_checks),
		cmocka_unit_test(test_generated_certificates_are_usable),
		cmocka_unit_test(test_private_key_der_round_trip),
		cmocka_unit_test(test_load_pem_der_and_pkcs12_files),
	};

	return cmocka_run_group_tests_name("smime", tests, setup_keys, teardown_keys);
}
