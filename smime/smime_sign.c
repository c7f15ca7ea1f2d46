/* smime_sign - signing and verification; see smime.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "cms_detach.h"
#include "mime.h"
#include "smime.h"
#include "util.h"

#define SIGNATURE_PART_MAX (1024 * 1024)

static const char sig_part_fields[] =
    "Content-Type: application/pkcs7-signature; name=smime.p7s\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "Content-Disposition: attachment; filename=smime.p7s\r\n"
    "Content-Description: S/MIME Cryptographic Signature\r\n\r\n";

static cables_status
write_to_bio(void *arg, const void *p, size_t n, struct cables_err *err)
{
	if (BIO_write(arg, p, (int)n) != (int)n)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "digesting the signed content");
	return CABLES_OK;
}

/* Base64 in 76-column CRLF lines. */
static void
append_base64(struct buf *out, const unsigned char *der, size_t len)
{
	char line[80];

	for (size_t i = 0; i < len; i += 57) {
		int n = EVP_EncodeBlock((unsigned char *)line, der + i, (int)(len - i < 57 ? len - i : 57));

		buf_append(out, line, (size_t)n);
		buf_append(out, "\r\n", 2);
	}
}

cables_status
smime_sign(X509 *cert, EVP_PKEY *key, STACK_OF(X509) *chain, const struct entity_src *content,
    struct smime_signed *out, struct cables_err *err)
{
	const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL;
	CMS_ContentInfo *cms;
	BIO *digest = NULL;
	unsigned char rnd[16], *der = NULL;
	char boundary[48];
	int der_len;
	cables_status st = CABLES_OK;

	memset(out, 0, sizeof(*out));
	buf_init(&out->prologue);
	buf_init(&out->epilogue);
	cms = CMS_sign(NULL, NULL, chain, NULL, flags);
	if (cms == NULL || CMS_add1_signer(cms, cert, key, EVP_sha256(), flags) == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "setting up the signature");
		goto out;
	}
	digest = CMS_dataInit(cms, NULL);
	if (digest == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "starting the digest");
		goto out;
	}
	if ((st = entity_src_each(content, write_to_bio, digest, err)) != CABLES_OK)
		goto out;
	if (BIO_flush(digest) <= 0 || CMS_dataFinal(cms, digest) != 1) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "signing");
		goto out;
	}
	der_len = i2d_CMS_ContentInfo(cms, &der);
	if (der_len <= 0 || RAND_bytes(rnd, sizeof(rnd)) != 1) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "encoding the signature");
		goto out;
	}
	strcpy(boundary, "----=_cables_");
	hex_encode(rnd, sizeof(rnd), boundary + strlen(boundary));
	snprintf(out->content_type, sizeof(out->content_type),
	    "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256;\r\n\tboundary=\"%s\"",
	    boundary);
	buf_printf(&out->prologue, "This is a cryptographically signed message in MIME format.\r\n\r\n--%s\r\n",
	    boundary);
	buf_printf(&out->epilogue, "\r\n--%s\r\n%s", boundary, sig_part_fields);
	append_base64(&out->epilogue, der, (size_t)der_len);
	buf_printf(&out->epilogue, "\r\n--%s--\r\n", boundary);
out:
	OPENSSL_free(der);
	BIO_free_all(digest);
	CMS_ContentInfo_free(cms);
	ERR_clear_error();
	if (st != CABLES_OK)
		smime_signed_release(out);
	return st;
}

void
smime_signed_release(struct smime_signed *s)
{
	buf_release(&s->prologue);
	buf_release(&s->epilogue);
}

const char *
smime_sig_status_name(enum smime_sig_status s)
{
	switch (s) {
	case SMIME_SIG_VALID:		return "valid";
	case SMIME_SIG_UNTRUSTED:	return "untrusted";
	case SMIME_SIG_INVALID:		return "invalid";
	}
	return "unknown";
}

void
smime_sig_release(struct smime_sig *sig)
{
	X509_free(sig->cert);
	memset(sig, 0, sizeof(*sig));
}

/* Who signed, and is that signer trusted?  Called after the signature verified. */
static void
judge_signer(const struct smime_verify_ctx *ctx, CMS_ContentInfo *cms, struct smime_sig *sig)
{
	STACK_OF(X509) *signers = CMS_get0_signers(cms), *certs = CMS_get1_certs(cms);
	X509_STORE_CTX *sctx = NULL;
	X509 *cert;
	char **emails;
	size_t n;

	sig->status = SMIME_SIG_UNTRUSTED;
	if (signers == NULL || sk_X509_num(signers) == 0) {
		snprintf(sig->reason, sizeof(sig->reason), "the signer's certificate is not in the message");
		goto out;
	}
	cert = sk_X509_value(signers, 0);
	X509_up_ref(cert);
	sig->cert = cert;
	n = smime_cert_emails(cert, &emails);
	if (n > 0)
		strlcpy_c(sig->signer, emails[0], sizeof(sig->signer));
	smime_free_emails(emails, n);
	/*
	 * The anchors first: a certificate they vouch for speaks for every
	 * address it names, one the store holds only for the address the
	 * store holds it for, so the caller must know which trust it was.
	 */
	if (ctx->anchors == NULL) {
		snprintf(sig->reason, sizeof(sig->reason),
		    "signer's certificate is not in the key store and no TrustAnchors are configured");
	} else if ((sctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(sctx, ctx->anchors, cert, certs) != 1) {
		snprintf(sig->reason, sizeof(sig->reason), "cannot set up certificate verification");
	} else {
		X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SMIME_SIGN);
		X509_STORE_CTX_set_time(sctx, 0, ctx->now);
		if (X509_verify_cert(sctx) == 1) {
			sig->status = SMIME_SIG_VALID;
			goto out;
		}
		snprintf(sig->reason, sizeof(sig->reason), "certificate: %s",
		    X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx)));
	}
	if (ctx->known != NULL && ctx->known(ctx->arg, cert)) {
		sig->status = SMIME_SIG_VALID;
		sig->by_store = true;
		sig->reason[0] = '\0';
	}
out:
	X509_STORE_CTX_free(sctx);
	sk_X509_free(signers);
	sk_X509_pop_free(certs, X509_free);
	ERR_clear_error();
}

/* Check the signature over content; fill sig. */
static void
verify_cms(const struct smime_verify_ctx *ctx, CMS_ContentInfo *cms, BIO *content, struct smime_sig *sig)
{
	unsigned long e;

	memset(sig, 0, sizeof(*sig));
	if (CMS_verify(cms, NULL, NULL, content, NULL, CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
		e = ERR_peek_last_error();
		sig->status = SMIME_SIG_INVALID;
		snprintf(sig->reason, sizeof(sig->reason), "%s",
		    e != 0 && ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) :
		    "the signature does not verify");
		ERR_clear_error();
		return;
	}
	judge_signer(ctx, cms, sig);
}

/* The signature part: header fields and a base64 (or binary) DER body. */
static cables_status
parse_signature_part(const struct spool *sp, off_t from, off_t to, CMS_ContentInfo **cms,
    struct cables_err *err)
{
	size_t len = (size_t)(to - from), got, off = 0;
	char *part, *ct = NULL;
	struct mime_field f;
	struct mime_type t;
	struct b64_decoder dec;
	struct buf der;
	bool base64 = false;
	const unsigned char *p;
	cables_status st;

	*cms = NULL;
	if (len > SIGNATURE_PART_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "signature part larger than 1 MB");
	part = xmalloc(len + 1);
	if ((st = spool_pread(sp, from, part, len, &got, err)) != CABLES_OK) {
		free(part);
		return st;
	}
	len = got;
	while (mime_field_next(part, len, &off, &f) == 1) {
		char *value = xstrndup(f.value, f.value_len);

		if (ct == NULL && f.name_len == 12 && str_nieq(f.name, "Content-Type", 12))
			ct = xstrdup(value);
		else if (f.name_len == 25 && str_nieq(f.name, "Content-Transfer-Encoding", 25))
			base64 = str_ieq(str_trim(value), "base64");
		free(value);
	}
	mime_type_parse(ct, &t);
	buf_init(&der);
	if (!mime_type_is(&t, "application", "pkcs7-signature") &&
	    !mime_type_is(&t, "application", "x-pkcs7-signature")) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the second part is %s/%s, not application/pkcs7-signature",
		    t.type, t.subtype);
		goto out;
	}
	if (base64) {
		b64_decoder_init(&dec);
		if ((st = b64_decode_update(&dec, (uint8_t *)part + off, len - off, &der, err)) != CABLES_OK ||
		    (st = b64_decode_final(&dec, err)) != CABLES_OK)
			goto out;
	} else {
		buf_append(&der, part + off, len - off);
	}
	p = (const unsigned char *)der.data;
	*cms = der.len > 0 ? d2i_CMS_ContentInfo(NULL, &p, (long)der.len) : NULL;
	if (*cms == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_SYNTAX, "the signature part is not a CMS structure");
	} else if (OBJ_obj2nid(CMS_get0_type(*cms)) != NID_pkcs7_signed) {
		CMS_ContentInfo_free(*cms);
		*cms = NULL;
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the signature part is not signed data");
	}
out:
	mime_type_release(&t);
	buf_release(&der);
	free(ct);
	free(part);
	return st;
}

cables_status
smime_verify_multipart(const struct smime_verify_ctx *ctx, const char *boundary, const struct spool *sp,
    off_t from, off_t to, struct smime_sig *sig, struct cables_err *err)
{
	off_t start[2], end[2];
	CMS_ContentInfo *cms = NULL;
	BIO *content;
	cables_status st;

	memset(sig, 0, sizeof(*sig));
	if ((st = mime_signed_parts(sp, from, to, boundary, start, end, err)) != CABLES_OK)
		return st;
	if ((st = parse_signature_part(sp, start[1], end[1], &cms, err)) != CABLES_OK)
		return st;
	content = spool_bio_reader(sp, start[0], end[0]);
	verify_cms(ctx, cms, content, sig);
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	return CABLES_OK;
}

cables_status
smime_verify_opaque(const struct smime_verify_ctx *ctx, const struct spool *sp, off_t from, bool base64,
    struct smime_sig *sig, struct cables_err *err)
{
	struct spool *der = spool_new(ctx->tmpdir, SPOOL_MEMORY_LIMIT, 0);
	struct cms_detached d;
	CMS_ContentInfo *cms = NULL;
	BIO *content = NULL;
	const unsigned char *p;
	cables_status st;

	memset(sig, 0, sizeof(*sig));
	memset(&d, 0, sizeof(d));
	if (base64)
		st = cms_decode_base64(sp, from, der, err);
	else {
		char chunk[16384];
		size_t got;
		off_t off = from;

		st = CABLES_OK;
		while (st == CABLES_OK && (st = spool_pread(sp, off, chunk, sizeof(chunk), &got, err)) == CABLES_OK &&
		    got > 0) {
			st = spool_append(der, chunk, got, err);
			off += (off_t)got;
		}
	}
	if (st != CABLES_OK || (st = cms_detach(der, &d, err)) != CABLES_OK)
		goto out;
	if (d.kind != CMS_KIND_SIGNED || !d.has_content) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "not opaque signed data");
		goto out;
	}
	p = (const unsigned char *)d.skeleton.data;
	cms = d2i_CMS_ContentInfo(NULL, &p, (long)d.skeleton.len);
	if (cms == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_SYNTAX, "the signed data cannot be decoded");
		goto out;
	}
	content = cms_content_bio(der, &d);
	verify_cms(ctx, cms, content, sig);
out:
	BIO_free(content);
	CMS_ContentInfo_free(cms);
	cms_detached_release(&d);
	spool_free(der);
	return st;
}

X509_STORE *
smime_anchors_load(const char *path, struct cables_err *err)
{
	X509_STORE *store;
	struct stat sb;
	int ok;

	if (stat(path, &sb) != 0) {
		cables_fail(err, CABLES_ERR_IO, "TrustAnchors %s: %s", path, strerror(errno));
		return NULL;
	}
	store = X509_STORE_new();
	ok = store != NULL && (S_ISDIR(sb.st_mode) ? X509_STORE_load_path(store, path) :
	    X509_STORE_load_file(store, path));
	if (ok != 1) {
		cables_fail_ssl(err, CABLES_ERR_SYNTAX, "TrustAnchors %s: no certificates could be loaded", path);
		X509_STORE_free(store);
		return NULL;
	}
	return store;
}
