/* smime_cert - certificate checks and helpers; see smime.h. */
#include "autoconfig.h"

#include <limits.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "smime.h"
#include "util.h"

static void
add_email(char ***emails, size_t *n, const char *e, size_t len)
{
	for (size_t i = 0; i < *n; i++)
		if (strlen((*emails)[i]) == len && str_nieq((*emails)[i], e, len))
			return;
	*emails = xreallocarray(*emails, *n + 1, sizeof(**emails));
	(*emails)[(*n)++] = xstrndup(e, len);
}

size_t
smime_cert_emails(X509 *cert, char ***emails)
{
	GENERAL_NAMES *sans;
	X509_NAME *subject;
	size_t n = 0;
	int i;

	*emails = NULL;
	sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *s;
		int len;

		if (gn->type != GEN_EMAIL)
			continue;
		s = ASN1_STRING_get0_data(gn->d.rfc822Name);
		len = ASN1_STRING_length(gn->d.rfc822Name);
		/* An embedded NUL would let "a@x\0@evil" pass as "a@x". */
		if (len > 0 && memchr(s, '\0', (size_t)len) == NULL)
			add_email(emails, &n, (const char *)s, (size_t)len);
	}
	GENERAL_NAMES_free(sans);
	subject = X509_get_subject_name(cert);
	for (i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, i)) >= 0;) {
		ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
		const unsigned char *s = ASN1_STRING_get0_data(v);
		int len = ASN1_STRING_length(v);

		if (len > 0 && memchr(s, '\0', (size_t)len) == NULL)
			add_email(emails, &n, (const char *)s, (size_t)len);
	}
	return n;
}

void
smime_free_emails(char **emails, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(emails[i]);
	free(emails);
}

void
smime_cert_fingerprint(X509 *cert, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
		out[0] = '\0';
		return;
	}
	hex_encode(md, 32, out);
}

static long long
asn1_time_to_unix(const ASN1_TIME *t)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (long long)timegm(&tm);
}

void
smime_cert_validity(X509 *cert, long long *not_before, long long *not_after)
{
	*not_before = asn1_time_to_unix(X509_get0_notBefore(cert));
	*not_after = asn1_time_to_unix(X509_get0_notAfter(cert));
}

static void
format_date(long long t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

void
smime_key_description(EVP_PKEY *key, char *out, size_t len)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		snprintf(out, len, "RSA %d", EVP_PKEY_get_bits(key));
		return;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
		    group, sizeof(group), &glen) != 1)
			strlcpy_c(group, "unknown curve", sizeof(group));
		snprintf(out, len, "EC %s", strcmp(group, "prime256v1") == 0 ? "P-256" :
		    strcmp(group, "secp384r1") == 0 ? "P-384" :
		    strcmp(group, "secp521r1") == 0 ? "P-521" : group);
		return;
	default:
		snprintf(out, len, "%s", EVP_PKEY_get0_type_name(key) != NULL ?
		    EVP_PKEY_get0_type_name(key) : "unknown key type");
	}
}

enum purpose { FOR_ENCRYPTION, FOR_SIGNING };

static cables_status
check_key(X509 *cert, enum purpose purpose, struct cables_err *err)
{
	EVP_PKEY *key = X509_get0_pubkey(cert);
	uint32_t ku = X509_get_key_usage(cert);
	bool ec;
	char desc[64];

	if (key == NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "public key cannot be decoded");
	smime_key_description(key, desc, sizeof(desc));
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(key) < 2048)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "%s key is too weak (needs 2048 bits or more)", desc);
		ec = false;
		break;
	case EVP_PKEY_EC:
		if (strcmp(desc, "EC P-256") != 0 && strcmp(desc, "EC P-384") != 0 &&
		    strcmp(desc, "EC P-521") != 0)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "%s is not a supported curve", desc);
		ec = true;
		break;
	default:
		return cables_fail(err, CABLES_ERR_UNUSABLE, "%s keys cannot be used for S/MIME %s", desc,
		    purpose == FOR_SIGNING ? "signing" : "encryption");
	}
	if (ku == UINT32_MAX)
		return CABLES_OK;
	if (purpose == FOR_SIGNING && (ku & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION)) == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "key usage does not allow digitalSignature");
	if (purpose == FOR_ENCRYPTION && !ec && (ku & KU_KEY_ENCIPHERMENT) == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE,
		    "key usage does not allow keyEncipherment (signing-only certificate)");
	if (purpose == FOR_ENCRYPTION && ec && (ku & KU_KEY_AGREEMENT) == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE,
		    "key usage does not allow keyAgreement (signing-only certificate)");
	return CABLES_OK;
}

static cables_status
check_cert(X509 *cert, const char *addr, const struct addr_opts *ao, time_t now, enum purpose purpose,
    struct cables_err *err)
{
	long long nb, na;
	char when[64], **emails;
	size_t n, i;
	uint32_t xku;
	bool match = false;

	smime_cert_validity(cert, &nb, &na);
	if (nb == 0 || na == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "validity dates cannot be read");
	if ((long long)now < nb) {
		format_date(nb, when, sizeof(when));
		return cables_fail(err, CABLES_ERR_UNUSABLE, "not valid before %s", when);
	}
	if ((long long)now > na) {
		format_date(na, when, sizeof(when));
		return cables_fail(err, CABLES_ERR_UNUSABLE, "expired on %s", when);
	}
	n = smime_cert_emails(cert, &emails);
	for (i = 0; i < n && !match; i++) {
		char *norm = addr_normalize(emails[i], ao);

		match = norm != NULL && strcmp(norm, addr) == 0;
		free(norm);
	}
	smime_free_emails(emails, n);
	if (!match)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "certificate names no email address matching %s", addr);
	xku = X509_get_extended_key_usage(cert);
	if (xku != UINT32_MAX && (xku & (XKU_SMIME | XKU_ANYEKU)) == 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "extended key usage does not include emailProtection");
	return check_key(cert, purpose, err);
}

cables_status
smime_cert_check(X509 *cert, const char *addr, const struct addr_opts *ao, time_t now,
    struct cables_err *err)
{
	return check_cert(cert, addr, ao, now, FOR_ENCRYPTION, err);
}

cables_status
smime_cert_check_signing(X509 *cert, const char *addr, const struct addr_opts *ao, time_t now,
    struct cables_err *err)
{
	return check_cert(cert, addr, ao, now, FOR_SIGNING, err);
}

X509 *
smime_cert_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509 *cert;

	if (len > LONG_MAX)
		return NULL;
	cert = d2i_X509(NULL, &p, (long)len);
	if (cert != NULL && p != der + len) {
		X509_free(cert);	/* trailing garbage */
		return NULL;
	}
	return cert;
}

uint8_t *
smime_cert_to_der(X509 *cert, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_X509(cert, &der);
	uint8_t *copy;

	if (n <= 0)
		return NULL;
	copy = xmalloc((size_t)n);
	memcpy(copy, der, (size_t)n);
	OPENSSL_free(der);
	*len = (size_t)n;
	return copy;
}

bool
smime_key_matches(X509 *cert, EVP_PKEY *key)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);

	return pub != NULL && EVP_PKEY_eq(pub, key) == 1;
}
