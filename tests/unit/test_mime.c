/* test_mime - header fields, splitting, Content-Type parsing and encryption detection. */
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
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "helpers.h"
#include "mime.h"
#include "spool.h"
#include "util.h"

/* Bytes with an explicit length, so that tables may hold NUL and 8-bit bytes. */
struct bytes {
	const char *p;
	size_t n;
};

#define B(s) { (s), sizeof(s) - 1 }

/* Real CMS objects, made once in the group setup. */
static EVP_PKEY *rsa_key;
static X509 *rsa_cert;
static struct bytes der_enveloped, der_auth_enveloped, der_signed, der_ber_enveloped;

static const char cms_plaintext[] =
    "Content-Type: text/plain; charset=utf-8\r\n\r\nThe launch code is 0000.\r\n";

static X509 *
make_self_signed(EVP_PKEY *key)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_get_subject_name(c);

	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, key);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"bob", -1, -1, 0);
	X509_set_issuer_name(c, n);
	if (X509_sign(c, key, EVP_sha256()) <= 0) {
		X509_free(c);
		return NULL;
	}
	return c;
}

static struct bytes
bio_bytes(BIO *b)
{
	char *p;
	long n = BIO_get_mem_data(b, &p);
	char *copy = xmalloc((size_t)n);
	struct bytes out;

	memcpy(copy, p, (size_t)n);
	out.p = copy;
	out.n = (size_t)n;
	return out;
}

/* kind: 'e' enveloped (CBC), 'a' authEnveloped (GCM), 's' signed, 'b' enveloped as streamed BER. */
static struct bytes
make_cms(char kind)
{
	BIO *in = BIO_new_mem_buf(cms_plaintext, (int)strlen(cms_plaintext));
	BIO *out = BIO_new(BIO_s_mem());
	STACK_OF(X509) *certs = sk_X509_new_null();
	CMS_ContentInfo *cms = NULL;
	struct bytes der = { NULL, 0 };
	int ok = 0;

	sk_X509_push(certs, rsa_cert);
	switch (kind) {
	case 'e':
		cms = CMS_encrypt(certs, in, EVP_aes_256_cbc(), CMS_BINARY);
		ok = cms != NULL && i2d_CMS_bio(out, cms) == 1;
		break;
	case 'a':
		cms = CMS_encrypt(certs, in, EVP_aes_256_gcm(), CMS_BINARY);
		ok = cms != NULL && i2d_CMS_bio(out, cms) == 1;
		break;
	case 's':
		cms = CMS_sign(rsa_cert, rsa_key, NULL, in, CMS_BINARY);
		ok = cms != NULL && i2d_CMS_bio(out, cms) == 1;
		break;
	case 'b':
		cms = CMS_encrypt(certs, in, EVP_aes_256_cbc(), CMS_BINARY | CMS_STREAM);
		ok = cms != NULL && i2d_CMS_bio_stream(out, cms, in, CMS_BINARY | CMS_STREAM) == 1;
		break;
	}
	if (ok)
		der = bio_bytes(out);
	else
		ERR_print_errors_fp(stderr);
	CMS_ContentInfo_free(cms);
	sk_X509_free(certs);
	BIO_free(in);
	BIO_free(out);
	return der;
}

static int
setup_group(void **state)
{
	mime_init();
	rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	rsa_cert = rsa_key != NULL ? make_self_signed(rsa_key) : NULL;
	if (rsa_cert == NULL)
		return -1;
	der_enveloped = make_cms('e');
	der_auth_enveloped = make_cms('a');
	der_signed = make_cms('s');
	der_ber_enveloped = make_cms('b');
	if (der_enveloped.p == NULL || der_auth_enveloped.p == NULL || der_signed.p == NULL ||
	    der_ber_enveloped.p == NULL)
		return -1;
	return 0;
}

static int
teardown_group(void **state)
{
	free((void *)der_enveloped.p);
	free((void *)der_auth_enveloped.p);
	free((void *)der_signed.p);
	free((void *)der_ber_enveloped.p);
	X509_free(rsa_cert);
	EVP_PKEY_free(rsa_key);
	return 0;
}

/* Base64 of der in lines of width characters, each ended by eol. */
static char *
b64_lines(struct bytes der, size_t width, const char *eol)
{
	char *flat = xmalloc(4 * (der.n / 3 + 1) + 1);
	size_t flat_len = (size_t)EVP_EncodeBlock((unsigned char *)flat, (const unsigned char *)der.p,
	    (int)der.n);
	struct buf out;

	buf_init(&out);
	for (size_t i = 0; i < flat_len; i += width) {
		buf_append(&out, flat + i, flat_len - i < width ? flat_len - i : width);
		buf_appends(&out, eol);
	}
	free(flat);
	return out.data;
}

static void
assert_bytes_equal(const char *what, const char *got, size_t got_len, const char *want, size_t want_len)
{
	if (got_len != want_len || (want_len > 0 && memcmp(got, want, want_len) != 0))
		fail_msg("%s: got %zu bytes '%.*s', want %zu bytes '%.*s'", what, got_len,
		    (int)got_len, got != NULL ? got : "", want_len, (int)want_len, want);
}

/* ---- mime_field_next ---- */

struct field_case {
	const char *what;
	const char *input;
	const char *names[5];	/* NULL-terminated */
	const char *values[5];
	const char *rest;	/* what follows *off once the header section ended */
};

static void
check_field_case(const struct field_case *c)
{
	const char *p = c->input;
	size_t len = strlen(p), off = 0, start = 0, i = 0;
	struct mime_field f;

	for (;;) {
		start = off;
		memset(&f, 0, sizeof(f));
		if (mime_field_next(p, len, &off, &f) != 1)
			break;
		if (i >= 5 || c->names[i] == NULL)
			fail_msg("%s: unexpected field '%.*s'", c->what, (int)f.name_len, f.name);
		assert_bytes_equal(c->what, f.name, f.name_len, c->names[i], strlen(c->names[i]));
		assert_bytes_equal(c->what, f.value, f.value_len, c->values[i], strlen(c->values[i]));
		/* The raw field is exactly the bytes consumed, starting with the name. */
		assert_ptr_equal(f.raw, p + start);
		assert_ptr_equal(f.name, p + start);
		assert_int_equal(f.raw_len, off - start);
		assert_true(f.value >= f.raw && f.value + f.value_len <= f.raw + f.raw_len);
		/* The value stops right before the final line break, when there is one. */
		if (p[off - 1] == '\n') {
			const char *after = f.value + f.value_len;

			assert_true((after[0] == '\n' && after + 1 == p + off) ||
			    (after[0] == '\r' && after[1] == '\n' && after + 2 == p + off));
		} else {
			assert_ptr_equal(f.value + f.value_len, p + off);
		}
		i++;
	}
	if (i < 5 && c->names[i] != NULL)
		fail_msg("%s: field '%s' not found", c->what, c->names[i]);
	assert_bytes_equal(c->what, p + off, len - off, c->rest, strlen(c->rest));
}

static void
run_field_cases(const struct field_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		check_field_case(&cases[i]);
}

static void
test_field_next_walks_crlf_and_lf_fields(void **state)
{
	const struct field_case cases[] = {
		{ "CRLF", "From: a@b.test\r\nSubject: Hi there\r\n\r\nBody\r\n",
		    { "From", "Subject" }, { " a@b.test", " Hi there" }, "Body\r\n" },
		{ "LF", "From: a@b.test\nSubject: Hi there\n\nBody\n",
		    { "From", "Subject" }, { " a@b.test", " Hi there" }, "Body\n" },
		{ "mixed line ends", "From: a\nTo: b\r\n\nBody",
		    { "From", "To" }, { " a", " b" }, "Body" },
		{ "value with colons", "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n",
		    { "Date" }, { " Mon, 1 Jan 2024 10:00:00 +0000" }, "" },
		{ "empty value", "X-Empty:\r\nY:z\r\n\r\nb",
		    { "X-Empty", "Y" }, { "", "z" }, "b" },
		{ "8-bit value", "Subject: \xc3\xa4\xff\r\n\r\n\xc3\xb6",
		    { "Subject" }, { " \xc3\xa4\xff" }, "\xc3\xb6" },
	};

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_field_next_joins_folded_lines(void **state)
{
	const struct field_case cases[] = {
		{ "CRLF space and tab", "Subject: one\r\n two\r\n\tthree\r\nTo: x\r\n\r\nB",
		    { "Subject", "To" }, { " one\r\n two\r\n\tthree", " x" }, "B" },
		{ "LF", "Content-Type: multipart/mixed;\n\tboundary=\"b1\"\nTo: x\n\nB",
		    { "Content-Type", "To" }, { " multipart/mixed;\n\tboundary=\"b1\"", " x" }, "B" },
		{ "folded last field, then separator", "To: x\r\nSubject: a\r\n  b\r\n\r\nbody",
		    { "To", "Subject" }, { " x", " a\r\n  b" }, "body" },
		{ "folded at the end of the data", "Subject: a\r\n b",
		    { "Subject" }, { " a\r\n b" }, "" },
	};

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_field_next_allows_space_before_colon(void **state)
{
	const struct field_case cases[] = {
		{ "space", "Subject : hi\r\n\r\n", { "Subject" }, { " hi" }, "" },
		{ "tab and spaces", "X-Tab\t  : y\r\nZ: z\r\n\r\n", { "X-Tab", "Z" }, { " y", " z" }, "" },
	};

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_field_next_ends_at_empty_line_before_body(void **state)
{
	const struct field_case cases[] = {
		{ "CRLF separator", "A: 1\r\n\r\nB: not a header\r\n", { "A" }, { " 1" }, "B: not a header\r\n" },
		{ "LF separator", "A: 1\n\nB: 2\n", { "A" }, { " 1" }, "B: 2\n" },
		{ "separator first", "\r\nbody", { NULL }, { NULL }, "body" },
		{ "LF separator first", "\nbody", { NULL }, { NULL }, "body" },
		{ "separator is the last byte", "A: 1\r\n\r\n", { "A" }, { " 1" }, "" },
	};

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void
test_field_next_stops_at_non_field_line(void **state)
{
	const struct field_case cases[] = {
		{ "text line", "From: a\r\nThis is body text\r\nmore\r\n",
		    { "From" }, { " a" }, "This is body text\r\nmore\r\n" },
		{ "mbox From_ line", "From a@b Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\n",
		    { NULL }, { NULL }, "From a@b Mon Jan  1 00:00:00 2024\r\nSubject: x\r\n\r\n" },
		{ "line starting with a colon", "A: 1\r\n: nope\r\n", { "A" }, { " 1" }, ": nope\r\n" },
		{ "name with a space inside", "A: 1\r\nBad Name: x\r\n", { "A" }, { " 1" }, "Bad Name: x\r\n" },
	};
	const char *msg = "From: a\r\nbody line\r\n";
	struct mime_field f;
	size_t off = 0;

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
	/* No separator was consumed: asking again stays on the same line. */
	assert_int_equal(mime_field_next(msg, strlen(msg), &off, &f), 1);
	assert_int_equal(mime_field_next(msg, strlen(msg), &off, &f), 0);
	assert_int_equal(off, 9);
	assert_int_equal(mime_field_next(msg, strlen(msg), &off, &f), 0);
	assert_int_equal(off, 9);
}

static void
test_field_next_handles_missing_body_or_header(void **state)
{
	const struct field_case cases[] = {
		{ "no separator, no body", "From: a\r\nTo: b\r\n", { "From", "To" }, { " a", " b" }, "" },
		{ "last line without line break", "From: a\r\nTo: b", { "From", "To" }, { " a", " b" }, "" },
		{ "only a body", "Hello Bob,\r\nhow are you?\r\n", { NULL }, { NULL },
		    "Hello Bob,\r\nhow are you?\r\n" },
		{ "empty data", "", { NULL }, { NULL }, "" },
	};

	run_field_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- mime_split ---- */

struct split_case {
	const char *what;
	struct bytes input;
	struct bytes outer, content, sep, body;
};

/*
 * The input must be the outer and content fields interleaved, each list in
 * its own order, then the separator and the body: no byte lost, added or
 * changed.
 */
static void
assert_split_preserves_bytes(const struct split_case *c, const struct buf *outer,
    const struct buf *content, size_t body_off)
{
	const char *in = c->input.p;
	size_t i = 0, oi = 0, ci = 0;

	while (oi < outer->len || ci < content->len) {
		struct mime_field f;
		size_t o_next = oi, c_next = ci;

		if (oi < outer->len && mime_field_next(outer->data, outer->len, &o_next, &f) == 1 &&
		    i + (o_next - oi) <= c->input.n && memcmp(in + i, outer->data + oi, o_next - oi) == 0) {
			i += o_next - oi;
			oi = o_next;
		} else if (ci < content->len &&
		    mime_field_next(content->data, content->len, &c_next, &f) == 1 &&
		    i + (c_next - ci) <= c->input.n && memcmp(in + i, content->data + ci, c_next - ci) == 0) {
			i += c_next - ci;
			ci = c_next;
		} else {
			fail_msg("%s: input byte %zu is neither the next outer nor the next content field",
			    c->what, i);
		}
	}
	assert_int_equal(i + c->sep.n, body_off);
	assert_int_equal(c->input.n - i, c->sep.n + c->body.n);
	assert_int_equal(outer->len + content->len + c->sep.n + (c->input.n - body_off), c->input.n);
}

static void
test_split_keeps_every_byte_and_sorts_content_fields(void **state)
{
	static const struct split_case cases[] = {
		{ "plain CRLF message",
		    B("From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		      "H\xc3\xa4llo\r\n"),
		    B("From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n"),
		    B("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		      "Content-Transfer-Encoding: 8bit\r\n"),
		    B("\r\n"), B("H\xc3\xa4llo\r\n") },
		{ "8-bit bytes and NUL",
		    B("Subject: \xe2\x82\xac 100 \xff\r\nContent-Type: application/octet-stream\r\n\r\n"
		      "\x00\x01\xfe\xff\r\n\x80"),
		    B("Subject: \xe2\x82\xac 100 \xff\r\n"),
		    B("Content-Type: application/octet-stream\r\n"),
		    B("\r\n"), B("\x00\x01\xfe\xff\r\n\x80") },
		{ "folded Content-Type",
		    B("From: a\r\nContent-Type: multipart/mixed;\r\n\tboundary=\"b1\"\r\nSubject: s\r\n"
		      "\r\n--b1\r\n"),
		    B("From: a\r\nSubject: s\r\n"),
		    B("Content-Type: multipart/mixed;\r\n\tboundary=\"b1\"\r\n"),
		    B("\r\n"), B("--b1\r\n") },
		{ "interleaved",
		    B("MIME-Version: 1.0\r\nFrom: a\r\nContent-Type: text/plain\r\nSubject: s\r\n"
		      "Content-Disposition: inline\r\nDate: d\r\n\r\nbody"),
		    B("From: a\r\nSubject: s\r\nDate: d\r\n"),
		    B("MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Disposition: inline\r\n"),
		    B("\r\n"), B("body") },
		{ "duplicate Content-Type",
		    B("Content-Type: text/plain\r\nX-A: 1\r\nContent-Type: text/html\r\n\r\nb"),
		    B("X-A: 1\r\n"),
		    B("Content-Type: text/plain\r\nContent-Type: text/html\r\n"),
		    B("\r\n"), B("b") },
		{ "LF only",
		    B("From: a\nMIME-Version: 1.0\nContent-Type: text/plain;\n charset=us-ascii\nTo: b\n\nline\n"),
		    B("From: a\nTo: b\n"),
		    B("MIME-Version: 1.0\nContent-Type: text/plain;\n charset=us-ascii\n"),
		    B("\n"), B("line\n") },
		{ "case and look-alikes",
		    B("content-type: text/plain\r\nmime-version: 1.0\r\nX-Content-Type: x\r\n"
		      "Contented: yes\r\nContent-Type : text/html\r\n\r\n"),
		    B("X-Content-Type: x\r\nContented: yes\r\n"),
		    B("content-type: text/plain\r\nmime-version: 1.0\r\nContent-Type : text/html\r\n"),
		    B("\r\n"), B("") },
		{ "no separator, no body",
		    B("From: a\r\nContent-Type: text/plain\r\n"),
		    B("From: a\r\n"), B("Content-Type: text/plain\r\n"), B(""), B("") },
		{ "header ended by a text line",
		    B("From: a\r\nthis is not a header\r\n\r\nmore\r\n"),
		    B("From: a\r\n"), B(""), B(""), B("this is not a header\r\n\r\nmore\r\n") },
		{ "only a body",
		    B("Hello Bob,\r\n\r\nsee you.\r\n"),
		    B(""), B(""), B(""), B("Hello Bob,\r\n\r\nsee you.\r\n") },
		{ "empty", B(""), B(""), B(""), B(""), B("") },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct split_case *c = &cases[i];
		struct buf outer, content;
		size_t body_off = 12345;

		buf_init(&outer);
		buf_init(&content);
		mime_split(c->input.p, c->input.n, &outer, &content, &body_off);
		assert_bytes_equal(c->what, outer.data, outer.len, c->outer.p, c->outer.n);
		assert_bytes_equal(c->what, content.data, content.len, c->content.p, c->content.n);
		assert_true(body_off <= c->input.n);
		assert_bytes_equal(c->what, c->input.p + body_off, c->input.n - body_off, c->body.p, c->body.n);
		assert_bytes_equal(c->what, c->input.p + body_off - c->sep.n, c->sep.n, c->sep.p, c->sep.n);
		assert_split_preserves_bytes(c, &outer, &content, body_off);
		buf_release(&outer);
		buf_release(&content);
	}
}

static void
test_split_concatenation_is_the_input_when_content_fields_come_last(void **state)
{
	const char msg[] = "From: a\r\nTo: b\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n"
	    "\r\nbody \xff\r\n";
	struct buf outer, content, joined;
	size_t body_off;

	buf_init(&outer);
	buf_init(&content);
	buf_init(&joined);
	mime_split(msg, sizeof(msg) - 1, &outer, &content, &body_off);
	buf_append(&joined, outer.data, outer.len);
	buf_append(&joined, content.data, content.len);
	buf_appends(&joined, "\r\n");
	buf_append(&joined, msg + body_off, sizeof(msg) - 1 - body_off);
	assert_bytes_equal("joined", joined.data, joined.len, msg, sizeof(msg) - 1);
	buf_release(&outer);
	buf_release(&content);
	buf_release(&joined);
}

/* ---- mime_is_content_header ---- */

static void
test_content_header_names(void **state)
{
	const struct {
		const char *name;
		bool expect;
	} cases[] = {
		{ "Content-Type", true },
		{ "content-type", true },
		{ "CONTENT-TRANSFER-ENCODING", true },
		{ "Content-Disposition", true },
		{ "Content-ID", true },
		{ "Content-Description", true },
		{ "Content-Language", true },
		{ "MIME-Version", true },
		{ "mime-version", true },
		{ "Mime-Version", true },
		{ "X-Content-Foo", false },
		{ "Contented", false },
		{ "Content", false },
		{ "Conten", false },
		{ "MIME-Versions", false },
		{ "MIME-Versio", false },
		{ "MIME", false },
		{ "Subject", false },
		{ "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (mime_is_content_header(cases[i].name, strlen(cases[i].name)) != cases[i].expect)
			fail_msg("'%s': expected %d", cases[i].name, cases[i].expect);
	/* Only len bytes count: a longer buffer does not turn a prefix into a name. */
	assert_false(mime_is_content_header("MIME-Version", 4));
	assert_false(mime_is_content_header("Content-Type", 7));
	assert_true(mime_is_content_header("MIME-Version: 1.0", 12));
}

/* ---- mime_type_parse ---- */

static void
assert_opt_str(const char *what, const char *field, const char *got, const char *want)
{
	if ((got == NULL) != (want == NULL) || (got != NULL && strcmp(got, want) != 0))
		fail_msg("%s: %s is '%s', want '%s'", what, field, got != NULL ? got : "(null)",
		    want != NULL ? want : "(null)");
}

static void
test_type_parse_parameters(void **state)
{
	const struct {
		const char *value;
		const char *type, *subtype, *smime_type, *protocol, *name, *boundary;
	} cases[] = {
		{ NULL, "text", "plain", NULL, NULL, NULL, NULL },
		{ "text/plain", "text", "plain", NULL, NULL, NULL, NULL },
		{ "Application/PKCS7-MIME; smime-type=enveloped-data; name=\"smime.p7m\"",
		    "application", "pkcs7-mime", "enveloped-data", NULL, "smime.p7m", NULL },
		{ "application/pkcs7-mime; smime-type=\"authEnveloped-data\"; name=SMIME.P7M",
		    "application", "pkcs7-mime", "authEnveloped-data", NULL, "SMIME.P7M", NULL },
		{ "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"=-=abc 123=-=\"",
		    "multipart", "encrypted", NULL, "application/pgp-encrypted", NULL, "=-=abc 123=-=" },
		{ "MULTIPART/Mixed; BOUNDARY=simple", "multipart", "mixed", NULL, NULL, NULL, "simple" },
		{ "TEXT/HTML; Boundary=\"MiXeD\"", "text", "html", NULL, NULL, NULL, "MiXeD" },
		{ "text/plain (a comment); charset=us-ascii (another) ; name=\"a b.txt\"",
		    "text", "plain", NULL, NULL, "a b.txt", NULL },
		{ " multipart/signed ;\r\n\tprotocol=\"application/pkcs7-signature\"; micalg=sha-256;"
		  " boundary=\"----B\"",
		    "multipart", "signed", NULL, "application/pkcs7-signature", NULL, "----B" },
		{ "application/octet-stream; name*=utf-8''smime%2Ep7m",
		    "application", "octet-stream", NULL, NULL, "smime.p7m", NULL },
		{ "application/octet-stream; name*0=\"sm\"; name*1=\"ime.p7m\"",
		    "application", "octet-stream", NULL, NULL, "smime.p7m", NULL },
		{ "application/pkcs7-mime; smime-type=enveloped-data; name=",
		    "application", "pkcs7-mime", "enveloped-data", NULL, NULL, NULL },
		{ "application/pkcs7-mime; name=\"smime.p7m\"; smime-type",
		    "application", "pkcs7-mime", NULL, NULL, "smime.p7m", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *what = cases[i].value != NULL ? cases[i].value : "(null)";
		struct mime_type t;

		mime_type_parse(cases[i].value, &t);
		assert_opt_str(what, "type", t.type, cases[i].type);
		assert_opt_str(what, "subtype", t.subtype, cases[i].subtype);
		assert_opt_str(what, "smime-type", t.smime_type, cases[i].smime_type);
		assert_opt_str(what, "protocol", t.protocol, cases[i].protocol);
		assert_opt_str(what, "name", t.name, cases[i].name);
		assert_opt_str(what, "boundary", t.boundary, cases[i].boundary);
		assert_true(mime_type_is(&t, cases[i].type, cases[i].subtype));
		assert_true(mime_type_is(&t, cases[i].type, NULL));
		assert_false(mime_type_is(&t, cases[i].type, "no-such-subtype"));
		mime_type_release(&t);
		assert_null(t.type);
		assert_null(t.subtype);
	}
}

static void
test_type_parse_survives_garbage(void **state)
{
	const char *garbage[] = {
		"", ";;;", "/", "text", "text/", "/plain", "\x01\xff garbage \"unterminated",
		"a/b; c=\"", "text/plain; name=\"unterminated", "text/plain; (unclosed comment",
		"text/plain; ==; ;name", "multipart/mixed; boundary=\"", "\"\"/\"\"",
		"text/plain; name*=utf-8'en'%ZZ%", "text/plain; name*0*=x; name*99999999999=y",
	};

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		struct mime_type t;

		mime_type_parse(garbage[i], &t);
		assert_non_null(t.type);
		assert_non_null(t.subtype);
		for (const char *c = t.type; *c != '\0'; c++)
			assert_false(*c >= 'A' && *c <= 'Z');
		for (const char *c = t.subtype; *c != '\0'; c++)
			assert_false(*c >= 'A' && *c <= 'Z');
		mime_type_release(&t);
	}
}

/* ---- mime_detect ---- */

struct detect_case {
	const char *what;
	const char *content_type;
	const char *cte;
	const char *body;
	size_t len;		/* 0: strlen(body) */
	enum mime_crypto expect;
};

static enum mime_crypto
detect_with_limit(const struct detect_case *c, size_t mem_limit)
{
	char *dir = test_tempdir();
	struct spool *sp = spool_new(dir, mem_limit, 0);
	size_t len = c->len != 0 ? c->len : strlen(c->body);
	enum mime_crypto out = (enum mime_crypto)99;
	struct cables_err err = { "" };
	cables_status st;

	assert_int_equal(spool_append(sp, c->body, len, &err), CABLES_OK);
	assert_int_equal(spool_on_disk(sp) != 0, len > mem_limit);
	st = mime_detect(c->content_type, c->cte, sp, &out, &err);
	if (st != CABLES_OK)
		fail_msg("%s: status %d: %s", c->what, st, err.msg);
	spool_free(sp);
	test_rmdir(dir);
	free(dir);
	return out;
}

/*
 * Every case runs with the body in memory and with the body on disk.
 * Returns the number of failed cases, so that callers free their bodies first.
 */
static size_t
run_detect_cases(const struct detect_case *cases, size_t n)
{
	size_t failed = 0;

	for (size_t i = 0; i < n; i++) {
		enum mime_crypto mem = detect_with_limit(&cases[i], SPOOL_MEMORY_LIMIT);
		enum mime_crypto disk = detect_with_limit(&cases[i], 16);

		if (mem != cases[i].expect || disk != cases[i].expect) {
			print_error("case '%s': got %s (memory) / %s (disk), want %s\n", cases[i].what,
			    mime_crypto_name(mem), mime_crypto_name(disk), mime_crypto_name(cases[i].expect));
			failed++;
		}
	}
	if (failed > 0)
		print_error("%zu of %zu cases failed\n", failed, n);
	return failed;
}

#define P7M "application/pkcs7-mime; smime-type=enveloped-data; name=\"smime.p7m\""

static void
test_detect_smime_enveloped_and_authenveloped(void **state)
{
	char *env64 = b64_lines(der_enveloped, 64, "\r\n");
	char *env76 = b64_lines(der_enveloped, 76, "\n");
	char *gcm76 = b64_lines(der_auth_enveloped, 76, "\r\n");
	char *gcm64 = b64_lines(der_auth_enveloped, 64, "\n");
	char *ber76 = b64_lines(der_ber_enveloped, 76, "\r\n");
	char *lead = xasprintf("\r\n\r\n%s", env76);
	const struct detect_case cases[] = {
		{ "enveloped, 64 columns CRLF", P7M, "base64", env64, 0, MIME_SMIME_ENVELOPED },
		{ "enveloped, 76 columns LF", P7M, " Base64 ", env76, 0, MIME_SMIME_ENVELOPED },
		{ "enveloped after blank lines", P7M, "BASE64", lead, 0, MIME_SMIME_ENVELOPED },
		{ "enveloped, streamed BER", P7M, "base64", ber76, 0, MIME_SMIME_ENVELOPED },
		{ "authEnveloped, 76 columns", "application/pkcs7-mime; smime-type=authEnveloped-data",
		    "base64", gcm76, 0, MIME_SMIME_AUTHENVELOPED },
		{ "authEnveloped, 64 columns", P7M, "base64", gcm64, 0, MIME_SMIME_AUTHENVELOPED },
		{ "x-pkcs7-mime", "application/x-pkcs7-mime; name=smime.p7m", "base64", env64, 0,
		    MIME_SMIME_ENVELOPED },
		{ "octet-stream named smime.p7m", "application/octet-stream; name=smime.p7m", "base64",
		    env76, 0, MIME_SMIME_ENVELOPED },
		{ "octet-stream named SMIME.P7M (RFC 2231)",
		    "application/octet-stream; name*=us-ascii''SMIME.P7M", "base64", gcm76, 0,
		    MIME_SMIME_AUTHENVELOPED },
		{ "octet-stream without a name", "application/octet-stream", "base64", env76, 0, MIME_PLAIN },
		{ "octet-stream named report.pdf", "application/octet-stream; name=report.pdf", "base64",
		    env76, 0, MIME_PLAIN },
		{ "enveloped body labelled text/plain", "text/plain", "base64", env76, 0, MIME_PLAIN },
		{ "binary DER", P7M, "binary", der_enveloped.p, der_enveloped.n, MIME_SMIME_ENVELOPED },
		{ "binary DER without CTE", P7M, NULL, der_enveloped.p, der_enveloped.n,
		    MIME_SMIME_ENVELOPED },
		{ "binary authEnveloped DER", P7M, "binary", der_auth_enveloped.p, der_auth_enveloped.n,
		    MIME_SMIME_AUTHENVELOPED },
		{ "binary streamed BER", P7M, "binary", der_ber_enveloped.p, der_ber_enveloped.n,
		    MIME_SMIME_ENVELOPED },
	};
	size_t failed;

	assert_int_equal((unsigned char)der_enveloped.p[0], 0x30);
	assert_int_equal((unsigned char)der_enveloped.p[1], 0x82);
	assert_int_equal((unsigned char)der_ber_enveloped.p[1], 0x80);
	failed = run_detect_cases(cases, sizeof(cases) / sizeof(cases[0]));
	free(env64);
	free(env76);
	free(gcm76);
	free(gcm64);
	free(ber76);
	free(lead);
	assert_int_equal(failed, 0);
}

static void
test_detect_mislabelled_smime_is_plain(void **state)
{
	char *signed76 = b64_lines(der_signed, 76, "\r\n");
	struct bytes text = B("Dear Bob, this message only claims to be encrypted. It is not.\r\n");
	char *text64 = b64_lines(text, 76, "\r\n");
	/* An enveloped body cut short: too little to tell. */
	char *env = b64_lines(der_enveloped, 76, "\r\n");
	char *short_env = xstrndup(env, 16);
	const struct detect_case cases[] = {
		{ "plaintext", P7M, "base64", "Dear Bob,\r\nthis is not encrypted.\r\n", 0, MIME_PLAIN },
		{ "base64 plaintext", P7M, "base64", text64, 0, MIME_PLAIN },
		{ "signed-data", "application/pkcs7-mime; smime-type=signed-data; name=smime.p7m",
		    "base64", signed76, 0, MIME_PLAIN },
		{ "signed-data labelled enveloped", P7M, "base64", signed76, 0, MIME_PLAIN },
		{ "binary signed-data", P7M, "binary", der_signed.p, der_signed.n, MIME_PLAIN },
		{ "base64 body without base64 CTE", P7M, NULL, env, 0, MIME_PLAIN },
		{ "binary body declared base64", P7M, "base64", der_enveloped.p, der_enveloped.n, MIME_PLAIN },
		{ "truncated base64", P7M, "base64", short_env, 0, MIME_PLAIN },
		{ "empty body", P7M, "base64", "", 0, MIME_PLAIN },
		{ "quoted-printable plaintext", P7M, "quoted-printable", "Caf=C3=A9\r\n", 0, MIME_PLAIN },
	};
	size_t failed;

	failed = run_detect_cases(cases, sizeof(cases) / sizeof(cases[0]));
	free(signed76);
	free(text64);
	free(env);
	free(short_env);
	assert_int_equal(failed, 0);
}

#define PGP_ENC "multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"b1\""

static void
test_detect_pgp_mime(void **state)
{
	const char *body =
	    "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"
	    "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
	    "--b1\r\nContent-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n"
	    "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA6Vh3wL1pWPvAQf/dGhpcw==\r\n=AbCd\r\n"
	    "-----END PGP MESSAGE-----\r\n\r\n--b1--\r\n";
	const char *no_block =
	    "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
	    "--b1\r\nContent-Type: text/plain\r\n\r\nI am not encrypted at all.\r\n--b1--\r\n";
#define PART1 "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
#define PART2 "--b1\r\nContent-Type: application/octet-stream\r\n\r\n"
#define BLOCK "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA6Vh3wL1pWPvAQf/dGhpcw==\r\n-----END PGP MESSAGE-----\r\n"
	const struct detect_case cases[] = {
		{ "RFC 3156 message", PGP_ENC, NULL, body, 0, MIME_PGP_MIME },
		{ "text after the block in the second part", PGP_ENC, NULL,
		    PART1 PART2 BLOCK "PLAINTEXT\r\n--b1--\r\n", 0, MIME_PLAIN },
		{ "text before the block in the second part", PGP_ENC, NULL,
		    PART1 PART2 "PLAINTEXT\r\n" BLOCK "--b1--\r\n", 0, MIME_PLAIN },
		{ "a third part", PGP_ENC, NULL,
		    PART1 PART2 BLOCK "--b1\r\nContent-Type: text/plain\r\n\r\nPLAINTEXT\r\n--b1--\r\n", 0, MIME_PLAIN },
		{ "no closing boundary", PGP_ENC, NULL, PART1 PART2 BLOCK, 0, MIME_PLAIN },
		{ "block without its END line", PGP_ENC, NULL,
		    PART1 PART2 "-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA6Vh3w\r\nPLAINTEXT here\r\n--b1--\r\n", 0,
		    MIME_PLAIN },
		{ "only one part", PGP_ENC, NULL, PART2 BLOCK "--b1--\r\n", 0, MIME_PLAIN },
		{ "block in the first part", PGP_ENC, NULL,
		    "--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\n" BLOCK PART2 "PLAINTEXT\r\n--b1--\r\n", 0,
		    MIME_PLAIN },
		{ "other boundary than declared", PGP_ENC, NULL,
		    "--b2\r\n\r\nVersion: 1\r\n--b2\r\n\r\n" BLOCK "--b2--\r\n", 0, MIME_PLAIN },
		{ "boundary-like line with a suffix", PGP_ENC, NULL, PART1 PART2 BLOCK "--b1x\r\n--b1--\r\n", 0, MIME_PLAIN },
		{ "text in the epilogue", PGP_ENC, NULL, PART1 PART2 BLOCK "--b1--\r\nPLAINTEXT\r\n", 0, MIME_PLAIN },
		{ "white space in the epilogue", PGP_ENC, NULL, PART1 PART2 BLOCK "--b1--\r\n \r\n\r\n", 0,
		    MIME_PGP_MIME },
		{ "transport padding on boundary lines", PGP_ENC, NULL,
		    "--b1 \r\n\r\nVersion: 1\r\n--b1\t\r\n\r\n" BLOCK "--b1-- \r\n", 0, MIME_PGP_MIME },
		{ "no boundary parameter", "multipart/encrypted; protocol=\"application/pgp-encrypted\"", NULL,
		    PART1 PART2 BLOCK "--b1--\r\n", 0, MIME_PLAIN },
		{ "protocol in other case",
		    "Multipart/Encrypted; Protocol=\"Application/PGP-Encrypted\"; boundary=b1", "7bit",
		    body, 0, MIME_PGP_MIME },
		{ "no armored block", PGP_ENC, NULL, no_block, 0, MIME_PLAIN },
		{ "empty body", PGP_ENC, NULL, "", 0, MIME_PLAIN },
		{ "other protocol", "multipart/encrypted; protocol=\"application/x-foo\"; boundary=b1",
		    NULL, body, 0, MIME_PLAIN },
		{ "no protocol", "multipart/encrypted; boundary=b1", NULL, body, 0, MIME_PLAIN },
		{ "multipart/mixed", "multipart/mixed; protocol=\"application/pgp-encrypted\"; boundary=b1",
		    NULL, body, 0, MIME_PLAIN },
	};

	assert_int_equal(run_detect_cases(cases, sizeof(cases) / sizeof(cases[0])), 0);
}

#define ARMOR_LF "-----BEGIN PGP MESSAGE-----\n\nhQEMA6Vh3wL1pWPvAQf/dGhpcyBpcyBub3QgcmVhbGx5IGVuY3J5cHRlZA==\n" \
	"=AbCd\n-----END PGP MESSAGE-----\n"
#define ARMOR_CRLF "-----BEGIN PGP MESSAGE-----\r\nVersion: GnuPG v2\r\n\r\n" \
	"hQEMA6Vh3wL1pWPvAQf/dGhpcyBpcyBub3QgcmVhbGx5IGVuY3J5cHRlZA==\r\n=AbCd\r\n" \
	"-----END PGP MESSAGE-----\r\n"

static void
test_detect_inline_pgp(void **state)
{
	const struct detect_case cases[] = {
		{ "one block, LF", "text/plain", NULL, ARMOR_LF, 0, MIME_PGP_INLINE },
		{ "one block, CRLF", "text/plain; charset=us-ascii", "7bit", ARMOR_CRLF, 0, MIME_PGP_INLINE },
		{ "blank lines around", "TEXT/PLAIN", NULL, "\r\n \r\n\t\r\n" ARMOR_CRLF "\r\n  \r\n", 0,
		    MIME_PGP_INLINE },
		{ "no Content-Type", NULL, NULL, "\n" ARMOR_LF "\n", 0, MIME_PGP_INLINE },
		{ "no final line break", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE-----\n\nhQEMA6Vh3wL1pWPvAQf/\n-----END PGP MESSAGE-----", 0,
		    MIME_PGP_INLINE },
		{ "text before", "text/plain", NULL, "Hi Bob,\n\n" ARMOR_LF, 0, MIME_PLAIN },
		{ "text after END", "text/plain", NULL, ARMOR_LF "\n-- \nAlice\n", 0, MIME_PLAIN },
		{ "two blocks", "text/plain", NULL, ARMOR_LF "\n" ARMOR_LF, 0, MIME_PLAIN },
		{ "BEGIN without END", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE-----\n\nhQEMA6Vh3wL1pWPvAQf/\n", 0, MIME_PLAIN },
		{ "END without BEGIN", "text/plain", NULL, "-----END PGP MESSAGE-----\n", 0, MIME_PLAIN },
		{ "quoted block", "text/plain", NULL,
		    "> -----BEGIN PGP MESSAGE-----\n> \n> hQEMA6Vh3wL1pWPvAQf/\n> -----END PGP MESSAGE-----\n",
		    0, MIME_PLAIN },
		{ "indented block", "text/plain", NULL,
		    " -----BEGIN PGP MESSAGE-----\n\nhQEMA6Vh3wL1pWPvAQf/\n-----END PGP MESSAGE-----\n",
		    0, MIME_PLAIN },
		{ "clear-signed text", "text/plain", NULL,
		    "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n-----BEGIN PGP SIGNATURE-----\n"
		    "\niQEz\n-----END PGP SIGNATURE-----\n", 0, MIME_PLAIN },
		{ "empty body", "text/plain", NULL, "", 0, MIME_PLAIN },
		{ "blank body", "text/plain", NULL, "\r\n\r\n \r\n", 0, MIME_PLAIN },
		{ "block in text/html", "text/html", NULL, ARMOR_LF, 0, MIME_PLAIN },
	};

	assert_int_equal(run_detect_cases(cases, sizeof(cases) / sizeof(cases[0])), 0);
}

/* Text on a marker line is text outside the block: the body is not one armored message. */
static void
test_detect_inline_pgp_marker_lines_must_be_exact(void **state)
{
	const struct detect_case cases[] = {
		{ "text after the END marker", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE-----\n\nhQEMA6Vh3wL1pWPvAQf/\n"
		    "-----END PGP MESSAGE----- PS: the wire transfer password is hunter2\n", 0, MIME_PLAIN },
		{ "text after the BEGIN marker", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE----- the vault code is 4711\n\nhQEMA6Vh3wL1pWPvAQf/\n"
		    "-----END PGP MESSAGE-----\n", 0, MIME_PLAIN },
		{ "trailing blanks after the markers", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE-----  \r\n\r\nhQEMA6Vh3wL1pWPvAQf/\r\n-----END PGP MESSAGE-----\t\r\n",
		    0, MIME_PGP_INLINE },
	};

	assert_int_equal(run_detect_cases(cases, sizeof(cases) / sizeof(cases[0])), 0);
}

/* Plain sentences between the markers are not an armored message. */
static void
test_detect_inline_pgp_block_must_be_armor(void **state)
{
	const struct detect_case cases[] = {
		{ "plaintext inside the markers", "text/plain", NULL,
		    "-----BEGIN PGP MESSAGE-----\n\nDear Bob, the password is hunter2.\n"
		    "-----END PGP MESSAGE-----\n", 0, MIME_PLAIN },
	};

	assert_int_equal(run_detect_cases(cases, sizeof(cases) / sizeof(cases[0])), 0);
}

static char *
repeat(char c, size_t n)
{
	char *s = xmalloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static void
test_detect_inline_pgp_with_lines_longer_than_8k(void **state)
{
	char *text = repeat('x', 10000), *spaces = repeat(' ', 8192), *b64 = repeat('A', 20000);
	char *long_before = xasprintf("%s\n\n" ARMOR_LF, text);
	char *long_inside = xasprintf("-----BEGIN PGP MESSAGE-----\n\n%s\n=AbCd\n-----END PGP MESSAGE-----\n", b64);
	char *long_after = xasprintf(ARMOR_LF "\n%s\n", text);
	char *blank_then_text = xasprintf("%s%s\n" ARMOR_LF, spaces, "x");
	char *long_blank = xasprintf("%s\n" ARMOR_LF "%s\n", spaces, spaces);
	char *long_preamble = xasprintf("%s\n--b1\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n"
	    "--b1\nContent-Type: application/octet-stream\n\n" ARMOR_LF "--b1--\n", text);
	const struct detect_case cases[] = {
		{ "long text line before", "text/plain", NULL, long_before, 0, MIME_PLAIN },
		{ "long armor line inside", "text/plain", NULL, long_inside, 0, MIME_PGP_INLINE },
		{ "long text line after", "text/plain", NULL, long_after, 0, MIME_PLAIN },
		{ "8 KiB of blanks then text on one line", "text/plain", NULL, blank_then_text, 0, MIME_PLAIN },
		{ "long blank lines around", "text/plain", NULL, long_blank, 0, MIME_PGP_INLINE },
		{ "long text line in the PGP/MIME preamble", PGP_ENC, NULL, long_preamble, 0, MIME_PGP_MIME },
		{ "long text line in PGP/MIME before the block", PGP_ENC, NULL, long_before, 0, MIME_PLAIN },
	};
	size_t failed;

	failed = run_detect_cases(cases, sizeof(cases) / sizeof(cases[0]));
	free(text);
	free(spaces);
	free(b64);
	free(long_before);
	free(long_preamble);
	free(long_inside);
	free(long_after);
	free(blank_then_text);
	free(long_blank);
	assert_int_equal(failed, 0);
}

/*
 * A line longer than the reader's 8 KiB buffer comes in pieces; a piece that
 * starts mid-line must not count as a marker (nor as blank).
 */
static void
test_detect_inline_pgp_marker_mid_line_after_8k_is_not_a_marker(void **state)
{
	char *spaces = repeat(' ', 8192), *text = repeat('x', 8192);
	char *begin_after_spaces = xasprintf("%s" ARMOR_LF, spaces);
	char *begin_after_text = xasprintf("%s" ARMOR_LF, text);
	const struct detect_case cases[] = {
		{ "8 KiB of blanks then BEGIN on one line", "text/plain", NULL, begin_after_spaces, 0,
		    MIME_PLAIN },
		{ "8 KiB of text then BEGIN on one line", "text/plain", NULL, begin_after_text, 0,
		    MIME_PLAIN },
	};
	size_t failed;

	failed = run_detect_cases(cases, sizeof(cases) / sizeof(cases[0]));
	free(spaces);
	free(text);
	free(begin_after_spaces);
	free(begin_after_text);
	assert_int_equal(failed, 0);
}

static void
test_detect_other_types_are_plain(void **state)
{
	const struct detect_case cases[] = {
		{ "text/html", "text/html; charset=utf-8", "quoted-printable", "<p>hi</p>\r\n", 0, MIME_PLAIN },
		{ "multipart/mixed", "multipart/mixed; boundary=x", NULL, "--x\r\n\r\nhi\r\n--x--\r\n", 0,
		    MIME_PLAIN },
		{ "multipart/signed", "multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=x",
		    NULL, "--x\r\n\r\nhi\r\n--x--\r\n", 0, MIME_PLAIN },
		{ "plain text", NULL, NULL, "Hello Bob,\r\n\r\nlunch?\r\n", 0, MIME_PLAIN },
	};

	assert_int_equal(run_detect_cases(cases, sizeof(cases) / sizeof(cases[0])), 0);
}

static void
test_crypto_names(void **state)
{
	assert_string_equal(mime_crypto_name(MIME_PLAIN), "plain");
	assert_string_equal(mime_crypto_name(MIME_SMIME_ENVELOPED), "smime-enveloped");
	assert_string_equal(mime_crypto_name(MIME_SMIME_AUTHENVELOPED), "smime-authenveloped");
	assert_string_equal(mime_crypto_name(MIME_PGP_MIME), "pgp-mime");
	assert_string_equal(mime_crypto_name(MIME_PGP_INLINE), "pgp-inline");
	assert_string_equal(mime_crypto_name((enum mime_crypto)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_field_next_walks_crlf_and_lf_fields),
		cmocka_unit_test(test_field_next_joins_folded_lines),
		cmocka_unit_test(test_field_next_allows_space_before_colon),
		cmocka_unit_test(test_field_next_ends_at_empty_line_before_body),
		cmocka_unit_test(test_field_next_stops_at_non_field_line),
		cmocka_unit_test(test_field_next_handles_missing_body_or_header),
		cmocka_unit_test(test_split_keeps_every_byte_and_sorts_content_fields),
		cmocka_unit_test(test_split_concatenation_is_the_input_when_content_fields_come_last),
		cmocka_unit_test(test_content_header_names),
		cmocka_unit_test(test_type_parse_parameters),
		cmocka_unit_test(test_type_parse_survives_garbage),
		cmocka_unit_test(test_detect_smime_enveloped_and_authenveloped),
		cmocka_unit_test(test_detect_mislabelled_smime_is_plain),
		cmocka_unit_test(test_detect_pgp_mime),
		cmocka_unit_test(test_detect_inline_pgp),
		cmocka_unit_test(test_detect_inline_pgp_marker_lines_must_be_exact),
		cmocka_unit_test(test_detect_inline_pgp_block_must_be_armor),
		cmocka_unit_test(test_detect_inline_pgp_with_lines_longer_than_8k),
		cmocka_unit_test(test_detect_inline_pgp_marker_mid_line_after_8k_is_not_a_marker),
		cmocka_unit_test(test_detect_other_types_are_plain),
		cmocka_unit_test(test_crypto_names),
	};

	return cmocka_run_group_tests_name("mime", tests, setup_group, teardown_group);
}
