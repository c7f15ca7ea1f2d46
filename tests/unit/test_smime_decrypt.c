/*
 * test_smime_decrypt - streaming decryption: definite and indefinite BER from
 * OpenSSL, our own output, RSA (PKCS#1, OAEP) and EC recipients, CBC and
 * GCM, and every way the input can be wrong.
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
#include <openssl/rsa.h>

#include "cms_detach.h"
#include "helpers.h"
#include "smime.h"
#include "spool.h"

#define NOW ((time_t)1790000000)

static X509 *rsa_cert, *ec_cert, *other_cert;
static EVP_PKEY *rsa_key, *ec_key, *other_key;
static char *tmpdir;
static const char plaintext[] = "Content-Type: text/plain; charset=utf-8\r\n\r\nThe secret is 42.\r\n";

static int
setup(void **state)
{
	if (smime_generate("bob@b.test", SMIME_ALGO_RSA3072, 365, NOW, &rsa_cert, &rsa_key, NULL) != CABLES_OK ||
	    smime_generate("carol@b.test", SMIME_ALGO_P256, 365, NOW, &ec_cert, &ec_key, NULL) != CABLES_OK ||
	    smime_generate("dave@b.test", SMIME_ALGO_P256, 365, NOW, &other_cert, &other_key, NULL) != CABLES_OK)
		return -1;
	tmpdir = test_tempdir();
	return 0;
}

static int
teardown(void **state)
{
	X509_free(rsa_cert);
	X509_free(ec_cert);
	X509_free(other_cert);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec_key);
	EVP_PKEY_free(other_key);
	test_rmdir(tmpdir);
	free(tmpdir);
	return 0;
}

enum form { FORM_DER, FORM_STREAM };

/* CMS from OpenSSL itself: DER (definite lengths) or streamed BER (indefinite, chunked). */
static struct spool *
openssl_encrypt(const char *text, size_t len, const EVP_CIPHER *cipher, bool oaep, enum form form,
    X509 *c1, X509 *c2)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	BIO *in = BIO_new_mem_buf(text, (int)len), *out = BIO_new(BIO_s_mem());
	unsigned int flags = CMS_BINARY | CMS_PARTIAL | (form == FORM_STREAM ? CMS_STREAM : 0);
	CMS_ContentInfo *cms = CMS_encrypt(NULL, NULL, cipher, flags);
	struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	X509 *list[2] = { c1, c2 };
	char *data;
	long n;

	assert_non_null(cms);
	for (int i = 0; i < 2; i++) {
		CMS_RecipientInfo *ri;

		if (list[i] == NULL)
			continue;
		ri = CMS_add1_recipient_cert(cms, list[i], flags | (oaep ? CMS_KEY_PARAM : 0));
		assert_non_null(ri);
		if (oaep)
			assert_true(EVP_PKEY_CTX_set_rsa_padding(CMS_RecipientInfo_get0_pkey_ctx(ri),
			    RSA_PKCS1_OAEP_PADDING) > 0);
	}
	if (form == FORM_STREAM)
		assert_int_equal(i2d_CMS_bio_stream(out, cms, in, flags), 1);
	else {
		assert_int_equal(CMS_final(cms, in, NULL, flags), 1);
		assert_int_equal(i2d_CMS_bio(out, cms), 1);
	}
	n = BIO_get_mem_data(out, &data);
	assert_int_equal(spool_append(sp, data, (size_t)n, NULL), CABLES_OK);
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	sk_X509_free(certs);
	return sp;
}

static cables_status
decrypt(const struct spool *der, bool base64, X509 *cert, EVP_PKEY *key, struct buf *out,
    struct cables_err *err)
{
	struct smime_envelope *e;
	struct spool *plain;
	cables_status st;
	char chunk[4096];
	size_t got;
	off_t off = 0;

	buf_init(out);
	if ((st = smime_envelope_open(der, 0, base64, tmpdir, &e, err)) != CABLES_OK)
		return st;
	if (!smime_envelope_names(e, cert)) {
		smime_envelope_free(e);
		return cables_fail(err, CABLES_ERR_NOTFOUND, "not a recipient");
	}
	st = smime_envelope_decrypt(e, cert, key, &plain, err);
	smime_envelope_free(e);
	if (st != CABLES_OK)
		return st;
	while (spool_pread(plain, off, chunk, sizeof(chunk), &got, NULL) == CABLES_OK && got > 0) {
		buf_append(out, chunk, got);
		off += (off_t)got;
	}
	spool_free(plain);
	return CABLES_OK;
}

static void
assert_round_trip(const struct spool *der, X509 *cert, EVP_PKEY *key, const char *expect, size_t len)
{
	struct buf out;
	struct cables_err err;

	if (decrypt(der, false, cert, key, &out, &err) != CABLES_OK)
		fail_msg("decrypt: %s", err.msg);
	assert_int_equal(out.len, len);
	assert_memory_equal(out.data, expect, len);
	buf_release(&out);
}

static void
test_openssl_der_and_streamed_ber_decrypt(void **state)
{
	const EVP_CIPHER *ciphers[] = { EVP_aes_256_cbc(), EVP_aes_128_cbc(), EVP_aes_256_gcm(), EVP_des_ede3_cbc() };

	for (size_t c = 0; c < sizeof(ciphers) / sizeof(ciphers[0]); c++)
		for (int form = FORM_DER; form <= FORM_STREAM; form++) {
			struct spool *sp = openssl_encrypt(plaintext, strlen(plaintext), ciphers[c], false,
			    (enum form)form, rsa_cert, ec_cert);

			assert_round_trip(sp, rsa_cert, rsa_key, plaintext, strlen(plaintext));
			assert_round_trip(sp, ec_cert, ec_key, plaintext, strlen(plaintext));
			spool_free(sp);
		}
}

static void
test_rsa_oaep_decrypts(void **state)
{
	struct spool *sp = openssl_encrypt(plaintext, strlen(plaintext), EVP_aes_256_cbc(), true, FORM_STREAM,
	    rsa_cert, NULL);

	assert_round_trip(sp, rsa_cert, rsa_key, plaintext, strlen(plaintext));
	spool_free(sp);
}

static cables_status
collect_write(void *arg, const void *p, size_t n, struct cables_err *err)
{
	return spool_append(arg, p, n, err);
}

static void
test_our_own_output_round_trips_through_disk(void **state)
{
	size_t big = 3 * 1024 * 1024 + 17;
	char *text = malloc(big);
	struct spool *body = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0), *b64 = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	STACK_OF(X509) *certs = sk_X509_new_null();
	struct smime_encrypt_opts o = { CIPHER_AES256_GCM, RSA_PAD_PKCS1 };
	struct byte_sink sink = { collect_write, b64 };
	struct buf out;
	struct cables_err err;

	for (size_t i = 0; i < big; i++)
		text[i] = (char)('a' + i % 26);
	assert_int_equal(spool_append(body, text, big, NULL), CABLES_OK);
	sk_X509_push(certs, ec_cert);
	struct entity_src src;

	entity_src_init(&src);
	entity_src_spool(&src, body, 0, -1);
	assert_int_equal(smime_encrypt(&o, certs, &src, &sink, NULL), CABLES_OK);
	assert_true(spool_on_disk(b64));
	if (decrypt(b64, true, ec_cert, ec_key, &out, &err) != CABLES_OK)
		fail_msg("decrypt: %s", err.msg);
	assert_int_equal(out.len, big);
	assert_memory_equal(out.data, text, big);
	buf_release(&out);
	sk_X509_free(certs);
	spool_free(body);
	spool_free(b64);
	free(text);
}

static struct spool *
copy_with(const struct spool *sp, size_t keep, size_t flip_at)
{
	struct spool *out = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	char *data = malloc(spool_size(sp));
	size_t got;

	spool_pread(sp, 0, data, spool_size(sp), &got, NULL);
	if (flip_at < got)
		data[flip_at] ^= 0x01;
	spool_append(out, data, keep < got ? keep : got, NULL);
	free(data);
	return out;
}

static void
test_tampering_and_wrong_keys_are_refused_with_a_reason(void **state)
{
	struct spool *gcm = openssl_encrypt(plaintext, strlen(plaintext), EVP_aes_256_gcm(), false, FORM_DER,
	    rsa_cert, NULL);
	struct spool *cbc = openssl_encrypt(plaintext, strlen(plaintext), EVP_aes_256_cbc(), false, FORM_DER,
	    rsa_cert, NULL);
	size_t n = spool_size(gcm);
	struct spool *flipped = copy_with(gcm, n, n - 30);	/* inside the ciphertext or tag */
	struct spool *cut_cbc = copy_with(cbc, spool_size(cbc) - 8, (size_t)-1);
	struct buf out;
	struct cables_err err;
	cables_status st;

	st = decrypt(flipped, false, rsa_cert, rsa_key, &out, &err);
	assert_int_not_equal(st, CABLES_OK);
	assert_int_equal(out.len, 0);
	st = decrypt(cut_cbc, false, rsa_cert, rsa_key, &out, &err);
	if (st != CABLES_ERR_SYNTAX || strstr(err.msg, "truncated") == NULL)
		fail_msg("truncated CBC: status %d, '%s'", st, err.msg);
	/* Not a recipient: the envelope says so before any decryption. */
	assert_int_equal(decrypt(cbc, false, other_cert, other_key, &out, &err), CABLES_ERR_NOTFOUND);
	/* A key that does not belong to the certificate. */
	{
		struct smime_envelope *e;
		struct spool *plain;

		assert_int_equal(smime_envelope_open(cbc, 0, false, tmpdir, &e, NULL), CABLES_OK);
		assert_true(smime_envelope_names(e, rsa_cert));
		assert_string_equal(smime_envelope_algorithm(e), "aes-256-cbc");
		st = smime_envelope_decrypt(e, rsa_cert, other_key, &plain, &err);
		assert_int_equal(st, CABLES_ERR_CRYPTO);
		assert_null(plain);
		assert_non_null(strstr(err.msg, "cannot decrypt (aes-256-cbc)"));
		smime_envelope_free(e);
	}
	spool_free(gcm);
	spool_free(cbc);
	spool_free(flipped);
	spool_free(cut_cbc);
}

static void
test_bad_input_is_named(void **state)
{
	const struct {
		const char *what;
		const char *data;
		bool base64;
		cables_status st;
		const char *reason;
	} cases[] = {
		{ "empty", "", false, CABLES_ERR_SYNTAX, "empty S/MIME body" },
		{ "not base64", "hello, world!\r\n", true, CABLES_ERR_SYNTAX, "bad base64: character 0x2c" },
		{ "truncated base64", "MIAGCSqGSIb3DQEHA6CAMIACAQAx\r\nggHF", true, CABLES_ERR_SYNTAX, NULL },
		{ "odd base64", "MIAGC", true, CABLES_ERR_SYNTAX, "truncated base64" },
		{ "padding inside", "MI==AGCS", true, CABLES_ERR_SYNTAX, "data after '='" },
		{ "not a SEQUENCE", "\x04\x03" "abc", false, CABLES_ERR_SYNTAX, "no ContentInfo SEQUENCE" },
		{ "data content", "\x30\x0f\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01\xa0\x02\x04\x00", false,
		    CABLES_ERR_UNUSABLE, "not enveloped, authEnveloped or signed" },
		{ "length past the end", "\x30\x84\x7f\xff\xff\xff\x06\x09", false, CABLES_ERR_SYNTAX,
		    "runs past the end" },
		{ "indefinite primitive", "\x30\x80\x06\x80", false, CABLES_ERR_SYNTAX, NULL },
		{ "five-byte length", "\x30\x85\x01\x02\x03\x04\x05", false, CABLES_ERR_SYNTAX, "too large" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
		size_t len = strlen(cases[i].data);
		struct smime_envelope *e = NULL;
		struct cables_err err = { "" };
		cables_status st;

		if (strcmp(cases[i].what, "data content") == 0)
			len = 17;
		else if (strcmp(cases[i].what, "indefinite primitive") == 0)
			len = 4;
		spool_append(sp, cases[i].data, len, NULL);
		st = smime_envelope_open(sp, 0, cases[i].base64, tmpdir, &e, &err);
		if (st != cases[i].st || (cases[i].reason != NULL && strstr(err.msg, cases[i].reason) == NULL))
			fail_msg("case '%s': status %d, reason '%s'", cases[i].what, st, err.msg);
		assert_null(e);
		spool_free(sp);
	}
}

static void
test_signed_data_is_not_an_envelope(void **state)
{
	BIO *in = BIO_new_mem_buf(plaintext, -1), *out = BIO_new(BIO_s_mem());
	CMS_ContentInfo *cms = CMS_sign(rsa_cert, rsa_key, NULL, in, CMS_BINARY);
	struct spool *sp = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	struct smime_envelope *e;
	struct cables_err err;
	char *data;
	long n;

	assert_non_null(cms);
	i2d_CMS_bio(out, cms);
	n = BIO_get_mem_data(out, &data);
	spool_append(sp, data, (size_t)n, NULL);
	assert_int_equal(smime_envelope_open(sp, 0, false, tmpdir, &e, &err), CABLES_ERR_UNUSABLE);
	assert_string_equal(err.msg, "not encrypted (signed data)");
	CMS_ContentInfo_free(cms);
	BIO_free(in);
	BIO_free(out);
	spool_free(sp);
}

static cables_status
check_envelope(const struct spool *sp, struct cables_err *err)
{
	struct smime_envelope *e;
	cables_status st;

	if ((st = smime_envelope_open(sp, 0, false, tmpdir, &e, err)) != CABLES_OK)
		return st;
	st = smime_envelope_check(e, err);
	smime_envelope_free(e);
	return st;
}

/* A copy of sp with extra bytes appended. */
static struct spool *
with_suffix(const struct spool *sp, const char *suffix, size_t n)
{
	struct spool *out = copy_with(sp, spool_size(sp), (size_t)-1);

	spool_append(out, suffix, n, NULL);
	return out;
}

static void
test_whole_envelope_is_checked(void **state)
{
	struct spool *der = openssl_encrypt(plaintext, strlen(plaintext), EVP_aes_256_cbc(), false, FORM_DER,
	    rsa_cert, NULL);
	struct spool *ber = openssl_encrypt(plaintext, strlen(plaintext), EVP_aes_256_cbc(), false, FORM_STREAM,
	    rsa_cert, ec_cert);
	struct spool *crlf = with_suffix(der, "\r\n", 2);
	struct spool *text = with_suffix(der, "\r\nPLAINTEXT\r\n", 13);
	struct spool *nul = with_suffix(ber, "\0", 1);
	struct spool *bad_chunk;
	struct cables_err err;
	char *data;
	size_t got, i;

	assert_int_equal(check_envelope(der, &err), CABLES_OK);
	assert_int_equal(check_envelope(ber, &err), CABLES_OK);
	assert_int_equal(check_envelope(crlf, &err), CABLES_OK);
	assert_int_equal(check_envelope(text, &err), CABLES_ERR_SYNTAX);
	assert_non_null(strstr(err.msg, "data after the CMS structure"));
	assert_int_equal(check_envelope(nul, &err), CABLES_ERR_SYNTAX);
	/* A chunk of the streamed content that is not an OCTET STRING. */
	data = malloc(spool_size(ber));
	spool_pread(ber, 0, data, spool_size(ber), &got, NULL);
	for (i = got - 4; i > 0 && !(data[i] == (char)0xa0 && data[i + 1] == (char)0x80 && data[i + 2] == 0x04); i--)
		;
	assert_true(i > 0);
	data[i + 2] = 0x05;
	bad_chunk = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	spool_append(bad_chunk, data, got, NULL);
	if (check_envelope(bad_chunk, &err) == CABLES_OK)
		fail_msg("a content chunk with the wrong tag passed");
	free(data);
	spool_free(der);
	spool_free(ber);
	spool_free(crlf);
	spool_free(text);
	spool_free(nul);
	spool_free(bad_chunk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssl_der_and_streamed_ber_decrypt),
		cmocka_unit_test(test_rsa_oaep_decrypts),
		cmocka_unit_test(test_our_own_output_round_trips_through_disk),
		cmocka_unit_test(test_tampering_and_wrong_keys_are_refused_with_a_reason),
		cmocka_unit_test(test_bad_input_is_named),
		cmocka_unit_test(test_whole_envelope_is_checked),
		cmocka_unit_test(test_signed_data_is_not_an_envelope),
	};

	return cmocka_run_group_tests_name("smime_decrypt", tests, setup, teardown);
}
