/* smime_keygen - new keys and self-signed certificates; see smime.h. */
#include "autoconfig.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "smime.h"
#include "util.h"

bool
smime_algo_parse(const char *s, enum smime_algo *out)
{
	if (str_ieq(s, "rsa3072"))
		*out = SMIME_ALGO_RSA3072;
	else if (str_ieq(s, "p256"))
		*out = SMIME_ALGO_P256;
	else
		return false;
	return true;
}

/* Add an extension to cert, issued by issuer (cert itself when self-signed). */
static bool
add_ext_by(X509 *issuer, X509 *cert, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	bool ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return false;
	ok = X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

static bool
add_ext(X509 *cert, int nid, const char *value)
{
	return add_ext_by(cert, cert, nid, value);
}

static bool
set_serial(X509 *cert)
{
	unsigned char raw[16];
	BIGNUM *bn;
	bool ok;

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	raw[0] &= 0x7f;		/* positive, as RFC 5280 requires */
	raw[0] |= 0x40;		/* and of full length */
	bn = BN_bin2bn(raw, sizeof(raw), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
	BN_free(bn);
	return ok;
}

cables_status
smime_generate(const char *addr, enum smime_algo algo, unsigned int days, time_t now,
    X509 **certp, EVP_PKEY **keyp, struct cables_err *err)
{
	EVP_PKEY *key;
	X509 *cert = NULL;
	X509_NAME *name;
	char *san;
	bool ok;

	*certp = NULL;
	*keyp = NULL;
	if (algo == SMIME_ALGO_RSA3072)
		key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	else
		key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "generating a key");
	cert = X509_new();
	name = X509_NAME_new();
	san = xasprintf("email:%s", addr);
	ok = cert != NULL && name != NULL &&
	    X509_set_version(cert, X509_VERSION_3) == 1 && set_serial(cert) &&
	    X509_time_adj_ex(X509_getm_notBefore(cert), 0, -300, &now) != NULL &&
	    X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, &now) != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		(const unsigned char *)addr, -1, -1, 0) == 1 &&
	    X509_set_subject_name(cert, name) == 1 &&
	    X509_set_issuer_name(cert, name) == 1 &&
	    X509_set_pubkey(cert, key) == 1 &&
	    add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") &&
	    add_ext(cert, NID_key_usage, algo == SMIME_ALGO_RSA3072 ?
		"critical,digitalSignature,keyEncipherment" :
		"critical,digitalSignature,keyAgreement") &&
	    add_ext(cert, NID_ext_key_usage, "emailProtection") &&
	    add_ext(cert, NID_subject_alt_name, san) &&
	    add_ext(cert, NID_subject_key_identifier, "hash") &&
	    X509_sign(cert, key, EVP_sha256()) > 0;
	free(san);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(cert);
		EVP_PKEY_free(key);
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "building a certificate for %s", addr);
	}
	*certp = cert;
	*keyp = key;
	return CABLES_OK;
}

cables_status
smime_epoch_issue(X509 *parent, EVP_PKEY *parent_key, const char *addr, long long not_before,
    long long not_after, X509 **certp, EVP_PKEY **keyp, struct cables_err *err)
{
	EVP_PKEY *key;
	X509 *cert = NULL;
	X509_NAME *name;
	char *san;
	bool ok;

	*certp = NULL;
	*keyp = NULL;
	if (X509_check_private_key(parent, parent_key) != 1)
		return cables_fail_ssl(err, CABLES_ERR_ARG, "the long-term key of %s does not match its certificate",
		    addr);
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "generating an epoch key");
	cert = X509_new();
	name = X509_NAME_new();
	san = xasprintf("email:%s", addr);
	/*
	 * Issued by the long-term certificate (its subject, its key
	 * identifier, its key's signature), so a sender that trusts that
	 * certificate can check the binding itself; the long-term certificate
	 * is no CA, so the sender checks this one signature, not an X.509 path.
	 * Key agreement only: an epoch key never signs.
	 */
	ok = cert != NULL && name != NULL &&
	    X509_set_version(cert, X509_VERSION_3) == 1 && set_serial(cert) &&
	    ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)not_before) != NULL &&
	    ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)not_after) != NULL &&
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		(const unsigned char *)addr, -1, -1, 0) == 1 &&
	    X509_set_subject_name(cert, name) == 1 &&
	    X509_set_issuer_name(cert, X509_get_subject_name(parent)) == 1 &&
	    X509_set_pubkey(cert, key) == 1 &&
	    add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") &&
	    add_ext(cert, NID_key_usage, "critical,keyAgreement") &&
	    add_ext(cert, NID_ext_key_usage, "emailProtection") &&
	    add_ext(cert, NID_subject_alt_name, san) &&
	    add_ext(cert, NID_subject_key_identifier, "hash") &&
	    add_ext_by(parent, cert, NID_authority_key_identifier, "keyid") &&
	    X509_sign(cert, parent_key, EVP_sha256()) > 0;
	free(san);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(cert);
		EVP_PKEY_free(key);
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "building an epoch certificate for %s", addr);
	}
	*certp = cert;
	*keyp = key;
	return CABLES_OK;
}
