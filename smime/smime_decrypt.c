/* smime_decrypt - streaming decryption of S/MIME entities; see smime.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cms.h>
#include <openssl/err.h>

#include "cms_detach.h"
#include "smime.h"
#include "util.h"

struct smime_envelope {
	char *tmpdir;
	struct spool *der;
	struct cms_detached det;
	CMS_ContentInfo *cms;	/* decoded from the skeleton */
};

void
smime_envelope_free(struct smime_envelope *e)
{
	if (e == NULL)
		return;
	CMS_ContentInfo_free(e->cms);
	cms_detached_release(&e->det);
	spool_free(e->der);
	free(e->tmpdir);
	free(e);
}

static cables_status
copy_binary(const struct spool *in, off_t from, struct spool *out, struct cables_err *err)
{
	char chunk[16384];
	size_t got;
	cables_status st;

	for (;;) {
		if ((st = spool_pread(in, from, chunk, sizeof(chunk), &got, err)) != CABLES_OK)
			return st;
		if (got == 0)
			return CABLES_OK;
		if ((st = spool_append(out, chunk, got, err)) != CABLES_OK)
			return st;
		from += (off_t)got;
	}
}

cables_status
smime_envelope_open(const struct spool *body, off_t from, bool base64, const char *tmpdir,
    struct smime_envelope **out, struct cables_err *err)
{
	struct smime_envelope *e = xcalloc(1, sizeof(*e));
	const unsigned char *p;
	cables_status st;

	*out = NULL;
	e->tmpdir = xstrdup(tmpdir);
	e->der = spool_new(tmpdir, SPOOL_MEMORY_LIMIT, 0);
	st = base64 ? cms_decode_base64(body, from, e->der, err) : copy_binary(body, from, e->der, err);
	if (st != CABLES_OK)
		goto fail;
	if (spool_size(e->der) == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "empty S/MIME body");
		goto fail;
	}
	if ((st = cms_detach(e->der, &e->det, err)) != CABLES_OK)
		goto fail;
	if (e->det.kind == CMS_KIND_SIGNED) {
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "not encrypted (signed data)");
		goto fail;
	}
	if (!e->det.has_content) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the CMS structure holds no encrypted content");
		goto fail;
	}
	p = (const unsigned char *)e->det.skeleton.data;
	e->cms = d2i_CMS_ContentInfo(NULL, &p, (long)e->det.skeleton.len);
	if (e->cms == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_SYNTAX, "the CMS structure cannot be decoded");
		goto fail;
	}
	*out = e;
	return CABLES_OK;
fail:
	smime_envelope_free(e);
	return st;
}

const char *
smime_envelope_algorithm(const struct smime_envelope *e)
{
	return e->det.algorithm;
}

cables_status
smime_envelope_check(struct smime_envelope *e, struct cables_err *err)
{
	uint8_t chunk[4096];
	size_t got;
	off_t off = e->det.end;
	BIO *content;
	int n;
	cables_status st;

	/* Binary bodies may end with a line break; anything else after the structure is not ciphertext. */
	while (off < (off_t)spool_size(e->der)) {
		if ((st = spool_pread(e->der, off, chunk, sizeof(chunk), &got, err)) != CABLES_OK)
			return st;
		for (size_t i = 0; i < got; i++)
			if (chunk[i] != '\r' && chunk[i] != '\n' && chunk[i] != ' ' && chunk[i] != '\t')
				return cables_fail(err, CABLES_ERR_SYNTAX, "data after the CMS structure at byte %lld",
				    (long long)(off + (off_t)i));
		off += (off_t)got;
	}
	if (sk_CMS_RecipientInfo_num(CMS_get0_RecipientInfos(e->cms)) <= 0)
		return cables_fail(err, CABLES_ERR_SYNTAX, "the CMS structure has no RecipientInfo");
	if ((content = cms_content_bio(e->der, &e->det)) == NULL)
		return cables_fail(err, CABLES_ERR_INTERNAL, "reading the CMS content");
	while ((n = BIO_read(content, chunk, sizeof(chunk))) > 0)
		;
	st = n < 0 || !BIO_eof(content) ? cables_fail(err, CABLES_ERR_SYNTAX, "the encrypted content is malformed") :
	    CABLES_OK;
	BIO_free(content);
	return st;
}

bool
smime_envelope_names(const struct smime_envelope *e, X509 *cert)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(e->cms);

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris); i++) {
		CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);

		switch (CMS_RecipientInfo_type(ri)) {
		case CMS_RECIPINFO_TRANS:
			if (CMS_RecipientInfo_ktri_cert_cmp(ri, cert) == 0)
				return true;
			break;
		case CMS_RECIPINFO_AGREE: {
			STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

			for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++)
				if (CMS_RecipientEncryptedKey_cert_cmp(sk_CMS_RecipientEncryptedKey_value(reks, j),
				    cert) == 0)
					return true;
			break;
		}
		default:
			break;
		}
	}
	ERR_clear_error();
	return false;
}

/* Is the recipient identifier of ri (or, for key agreement, of one of its keys) by issuer's subject? */
static bool
ri_issued_by(CMS_RecipientInfo *ri, X509_NAME *issuer)
{
	X509_NAME *name;
	ASN1_INTEGER *sno;
	ASN1_OCTET_STRING *keyid;

	switch (CMS_RecipientInfo_type(ri)) {
	case CMS_RECIPINFO_TRANS:
		name = NULL;
		return CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &name, &sno) == 1 && name != NULL &&
		    X509_NAME_cmp(name, issuer) == 0;
	case CMS_RECIPINFO_AGREE: {
		STACK_OF(CMS_RecipientEncryptedKey) *reks = CMS_RecipientInfo_kari_get0_reks(ri);

		for (int j = 0; j < sk_CMS_RecipientEncryptedKey_num(reks); j++) {
			name = NULL;
			if (CMS_RecipientEncryptedKey_get0_id(sk_CMS_RecipientEncryptedKey_value(reks, j), &keyid, NULL, NULL,
			    &name, &sno) == 1 && name != NULL && X509_NAME_cmp(name, issuer) == 0)
				return true;
		}
		return false;
	}
	default:
		return false;
	}
}

bool
smime_envelope_names_issuer(const struct smime_envelope *e, X509 *issuer)
{
	STACK_OF(CMS_RecipientInfo) *ris = CMS_get0_RecipientInfos(e->cms);
	bool found = false;

	for (int i = 0; i < sk_CMS_RecipientInfo_num(ris) && !found; i++)
		found = ri_issued_by(sk_CMS_RecipientInfo_value(ris, i), X509_get_subject_name(issuer));
	ERR_clear_error();
	return found;
}

cables_status
smime_envelope_decrypt(struct smime_envelope *e, X509 *cert, EVP_PKEY *key, struct spool **plain,
    struct cables_err *err)
{
	struct spool *sp = spool_new(e->tmpdir, SPOOL_MEMORY_LIMIT, 0);
	BIO *content = cms_content_bio(e->der, &e->det), *out = spool_bio_writer(sp);
	cables_status st = CABLES_OK;

	*plain = NULL;
	if (content == NULL || out == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "setting up decryption");
	} else if (CMS_decrypt(e->cms, key, cert, content, out, 0) != 1) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "cannot decrypt (%s)",
		    e->det.algorithm[0] != '\0' ? e->det.algorithm : "unknown algorithm");
	}
	BIO_free(content);
	BIO_free(out);
	if (st != CABLES_OK) {
		spool_free(sp);
		return st;
	}
	*plain = sp;
	return CABLES_OK;
}
