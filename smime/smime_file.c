/* smime_file - certificates and keys from files; see smime.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "seal.h"
#include "smime.h"
#include "util.h"

#define MAX_KEY_FILE (1024 * 1024)

static cables_status
read_file(const char *path, struct buf *out, struct cables_err *err)
{
	FILE *fp = fopen(path, "rb");
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return cables_fail(err, CABLES_ERR_IO, "%s: %s", path, strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		buf_append(out, chunk, n);
		if (out->len > MAX_KEY_FILE) {
			fclose(fp);
			return cables_fail(err, CABLES_ERR_TOOBIG, "%s: larger than 1 MB, not a key file", path);
		}
	}
	if (ferror(fp)) {
		fclose(fp);
		return cables_fail(err, CABLES_ERR_IO, "%s: read error", path);
	}
	fclose(fp);
	return CABLES_OK;
}

static cables_status
load_pkcs12(const char *path, const struct buf *data, const char *pass,
    STACK_OF(X509) **certs, EVP_PKEY **key, struct cables_err *err)
{
	const unsigned char *p = (const unsigned char *)data->data;
	PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)data->len);
	X509 *leaf = NULL;
	STACK_OF(X509) *ca = NULL;

	if (p12 == NULL)
		return CABLES_ERR_SYNTAX;
	if (PKCS12_parse(p12, pass != NULL ? pass : "", key, &leaf, &ca) != 1) {
		PKCS12_free(p12);
		ERR_clear_error();
		return cables_fail(err, CABLES_ERR_CRYPTO,
		    "%s: PKCS#12 cannot be opened: wrong passphrase (use --passphrase-file) or unsupported encryption", path);
	}
	PKCS12_free(p12);
	*certs = sk_X509_new_null();
	if (leaf != NULL)
		sk_X509_push(*certs, leaf);
	while (ca != NULL && sk_X509_num(ca) > 0)
		sk_X509_push(*certs, sk_X509_shift(ca));
	sk_X509_free(ca);
	return CABLES_OK;
}

static cables_status
load_pem(const char *path, const struct buf *data, const char *pass,
    STACK_OF(X509) **certs, EVP_PKEY **key, struct cables_err *err)
{
	BIO *bio = BIO_new_mem_buf(data->data, (int)data->len);
	STACK_OF(X509_INFO) *infos;
	cables_status st = CABLES_OK;

	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, (void *)(pass != NULL ? pass : ""));
	BIO_free(bio);
	if (infos == NULL || sk_X509_INFO_num(infos) == 0) {
		sk_X509_INFO_pop_free(infos, X509_INFO_free);
		ERR_clear_error();
		return CABLES_ERR_SYNTAX;
	}
	*certs = sk_X509_new_null();
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509 != NULL) {
			sk_X509_push(*certs, info->x509);
			info->x509 = NULL;
		}
		if (info->x_pkey != NULL && info->x_pkey->dec_pkey != NULL) {
			if (*key != NULL) {
				st = cables_fail(err, CABLES_ERR_ARG, "%s: more than one private key", path);
				break;
			}
			*key = info->x_pkey->dec_pkey;
			info->x_pkey->dec_pkey = NULL;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	ERR_clear_error();
	return st;
}

cables_status
smime_load_file(const char *path, const char *passphrase, STACK_OF(X509) **certs,
    EVP_PKEY **key, struct cables_err *err)
{
	struct buf data;
	cables_status st;
	X509 *cert;

	*certs = NULL;
	*key = NULL;
	buf_init(&data);
	st = read_file(path, &data, err);
	if (st != CABLES_OK)
		goto out;
	if (data.len == 0) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "%s: empty file", path);
		goto out;
	}
	if (memmem(data.data, data.len, "-----BEGIN ", 11) != NULL) {
		st = load_pem(path, &data, passphrase, certs, key, err);
		if (st == CABLES_ERR_SYNTAX)
			st = cables_fail(err, st, "%s: no certificate or key in this PEM file", path);
	} else if ((cert = smime_cert_from_der((const uint8_t *)data.data, data.len)) != NULL) {
		*certs = sk_X509_new_null();
		sk_X509_push(*certs, cert);
		st = CABLES_OK;
	} else {
		ERR_clear_error();
		st = load_pkcs12(path, &data, passphrase, certs, key, err);
		if (st == CABLES_ERR_SYNTAX)
			st = cables_fail(err, st,
			    "%s: not a PEM, DER certificate or PKCS#12 file", path);
	}
	if (st == CABLES_OK && (*certs == NULL || sk_X509_num(*certs) == 0) && *key == NULL)
		st = cables_fail(err, CABLES_ERR_SYNTAX, "%s: no certificate in file", path);
out:
	if (st != CABLES_OK) {
		sk_X509_pop_free(*certs, X509_free);
		EVP_PKEY_free(*key);
		*certs = NULL;
		*key = NULL;
	}
	if (data.data != NULL)
		OPENSSL_cleanse(data.data, data.len);
	buf_release(&data);
	return st;
}

cables_status
smime_key_to_der(EVP_PKEY *key, uint8_t **der, size_t *len, struct cables_err *err)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	unsigned char *p = NULL;
	int n = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, &p) : -1;

	PKCS8_PRIV_KEY_INFO_free(p8);
	*der = NULL;
	*len = 0;
	if (n <= 0)
		return cables_fail_ssl(err, CABLES_ERR_CRYPTO, "encoding a private key");
	*der = xmalloc((size_t)n);
	memcpy(*der, p, (size_t)n);
	*len = (size_t)n;
	OPENSSL_clear_free(p, (size_t)n);
	return CABLES_OK;
}

EVP_PKEY *
smime_key_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;

	return d2i_AutoPrivateKey(NULL, &p, (long)len);
}
