/* khkey - keys whose private half stays in cables-keyholder; see khkey.h. */
#define OPENSSL_SUPPRESS_DEPRECATED	/* RSA_METHOD and EC_KEY_METHOD are the 3.0 way to a foreign key */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>

#include "khkey.h"
#include "util.h"

struct khkey {
	const struct kh_transport *t;
	char address[KH_ADDR_MAX];
	char fingerprint[KH_FPR_LEN + 1];
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_method;
static EC_KEY_METHOD *ec_method;
static int rsa_index = -1, ec_index = -1;

static _Thread_local enum khkey_failure failure;
static _Thread_local char failure_detail[CABLES_ERR_MAX];

void
khkey_reset(void)
{
	failure = KHKEY_NONE;
	failure_detail[0] = '\0';
}

enum khkey_failure
khkey_failure(struct cables_err *err)
{
	if (failure != KHKEY_NONE)
		cables_fail(err, failure == KHKEY_UNREACHABLE ? CABLES_ERR_IO : CABLES_ERR_CRYPTO, "%s", failure_detail);
	return failure;
}

cables_status
khkey_settle(cables_status st, struct cables_err *err)
{
	struct cables_err why;
	enum khkey_failure f = khkey_failure(&why);

	if (f == KHKEY_NONE)
		return st;
	/* Declined with CMS's own failure: keep CMS's words; otherwise the keyholder's. */
	if (st == CABLES_OK || f == KHKEY_UNREACHABLE)
		cables_fail(err, CABLES_ERR_IO, "%s", why.msg);
	return f == KHKEY_UNREACHABLE ? CABLES_ERR_IO : CABLES_ERR_CRYPTO;
}

static void
note(enum khkey_failure f, const char *detail)
{
	if (f >= failure) {
		failure = f;
		strlcpy_c(failure_detail, detail, sizeof(failure_detail));
	}
}

/* One request for k; the reply's data (len bytes, at most max) into out.  -1 when it failed. */
static int
ask(const struct khkey *k, enum kh_op op, int nid, const uint8_t *data, size_t len, uint8_t *out, size_t max)
{
	struct kh_request req;
	struct kh_reply rep;
	struct cables_err err;
	int n = -1;

	if (k == NULL || len == 0 || len > KH_DATA_MAX) {
		note(KHKEY_DECLINED, "private key operation out of bounds");
		return -1;
	}
	memset(&req, 0, sizeof(req));
	req.op = op;
	req.md_nid = nid;
	strlcpy_c(req.address, k->address, sizeof(req.address));
	strlcpy_c(req.fingerprint, k->fingerprint, sizeof(req.fingerprint));
	memcpy(req.data, data, len);
	req.len = len;
	if (k->t->call(k->t->arg, &req, &rep, &err) != CABLES_OK) {
		note(KHKEY_UNREACHABLE, err.msg);
	} else if (rep.status == KH_UNAVAILABLE || rep.status == KH_LIMITED) {
		snprintf(err.msg, sizeof(err.msg), "keyholder: %s for %.100s", kh_status_name(rep.status), k->address);
		note(KHKEY_UNREACHABLE, err.msg);
	} else if (rep.status != KH_OK || rep.len > max) {
		snprintf(err.msg, sizeof(err.msg), "keyholder: %s %s for %.100s", kh_op_name(op),
		    rep.status == KH_OK ? "answer too long" : kh_status_name(rep.status), k->address);
		note(KHKEY_DECLINED, err.msg);
	} else {
		memcpy(out, rep.data, rep.len);
		n = (int)rep.len;
	}
	OPENSSL_cleanse(&rep, sizeof(rep));
	OPENSSL_cleanse(&req, sizeof(req));
	return n;
}

static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	const struct khkey *k = RSA_get_ex_data(rsa, rsa_index);

	/* PKCS#1 v1.5 is unpadded by the keyholder; OAEP arrives here as a raw decryption (checked there). */
	if (flen < 0 || (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING))
		return -1;
	return ask(k, padding == RSA_PKCS1_PADDING ? KH_OP_RSA_DECRYPT : KH_OP_RSA_DECRYPT_OAEP, 0, from,
	    (size_t)flen, to, (size_t)RSA_size(rsa));
}

static int
rsa_sign(int type, const unsigned char *m, unsigned int m_length, unsigned char *sigret, unsigned int *siglen,
    const RSA *rsa)
{
	int n = ask(RSA_get_ex_data(rsa, rsa_index), KH_OP_SIGN, type, m, m_length, sigret, (size_t)RSA_size(rsa));

	if (n < 0)
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

static int
ec_compute_key(unsigned char **psec, size_t *pseclen, const EC_POINT *pub, const EC_KEY *ec)
{
	uint8_t point[KH_DATA_MAX], secret[KH_DATA_MAX];
	size_t plen = EC_POINT_point2oct(EC_KEY_get0_group(ec), pub, POINT_CONVERSION_UNCOMPRESSED, point,
	    sizeof(point), NULL);
	int n;

	if (plen == 0)
		return 0;
	n = ask(EC_KEY_get_ex_data(ec, ec_index), KH_OP_ECDH, 0, point, plen, secret, sizeof(secret));
	if (n <= 0)
		return 0;
	*psec = OPENSSL_memdup(secret, (size_t)n);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (*psec == NULL)
		return 0;
	*pseclen = (size_t)n;
	return 1;
}

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	uint8_t der[KH_DATA_MAX];
	const uint8_t *p = der;
	int n;

	if (dlen <= 0 || (n = ask(EC_KEY_get_ex_data(ec, ec_index), KH_OP_SIGN, 0, dgst, (size_t)dlen, der,
	    sizeof(der))) <= 0)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, n);
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
    const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	int n;

	if (dlen <= 0 || (n = ask(EC_KEY_get_ex_data(ec, ec_index), KH_OP_SIGN, 0, dgst, (size_t)dlen, sig,
	    (size_t)ECDSA_size(ec))) <= 0)
		return 0;
	*siglen = (unsigned)n;
	return 1;
}

static int
ec_sign_setup(EC_KEY *ec, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	return 0;	/* the nonce is the keyholder's business */
}

static void
free_khkey(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	if (ptr != NULL)
		OPENSSL_clear_free(ptr, sizeof(struct khkey));
}

static void
setup(void)
{
	rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL());
	RSA_meth_set1_name(rsa_method, "cables-keyholder");
	RSA_meth_set_priv_dec(rsa_method, rsa_priv_dec);
	RSA_meth_set_priv_enc(rsa_method, NULL);
	RSA_meth_set_sign(rsa_method, rsa_sign);
	ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
	EC_KEY_METHOD_set_compute_key(ec_method, ec_compute_key);
	EC_KEY_METHOD_set_sign(ec_method, ec_sign, ec_sign_setup, ec_sign_sig);
	rsa_index = RSA_get_ex_new_index(0, NULL, NULL, NULL, free_khkey);
	ec_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, free_khkey);
}

static EVP_PKEY *
remote_rsa(const EVP_PKEY *pub, struct khkey *k)
{
	const RSA *src = EVP_PKEY_get0_RSA(pub);
	RSA *rsa = RSA_new();
	EVP_PKEY *key = EVP_PKEY_new();

	if (src == NULL || rsa == NULL || key == NULL ||
	    RSA_set0_key(rsa, BN_dup(RSA_get0_n(src)), BN_dup(RSA_get0_e(src)), NULL) != 1 ||
	    RSA_set_method(rsa, rsa_method) != 1 || RSA_set_ex_data(rsa, rsa_index, k) != 1) {
		RSA_free(rsa);
		EVP_PKEY_free(key);
		OPENSSL_clear_free(k, sizeof(*k));
		return NULL;
	}
	if (EVP_PKEY_assign_RSA(key, rsa) != 1) {
		RSA_free(rsa);	/* frees k through the ex_data */
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

static EVP_PKEY *
remote_ec(const EVP_PKEY *pub, struct khkey *k)
{
	const EC_KEY *src = EVP_PKEY_get0_EC_KEY(pub);
	EC_KEY *ec = EC_KEY_new();
	EVP_PKEY *key = EVP_PKEY_new();

	if (src == NULL || ec == NULL || key == NULL || EC_KEY_set_method(ec, ec_method) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 || EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) != 1 ||
	    EC_KEY_set_ex_data(ec, ec_index, k) != 1) {
		EC_KEY_free(ec);
		EVP_PKEY_free(key);
		OPENSSL_clear_free(k, sizeof(*k));
		return NULL;
	}
	if (EVP_PKEY_assign_EC_KEY(key, ec) != 1) {
		EC_KEY_free(ec);
		EVP_PKEY_free(key);
		return NULL;
	}
	return key;
}

EVP_PKEY *
khkey_new(const struct kh_transport *t, X509 *cert, const char *address, const char *fingerprint,
    struct cables_err *err)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert), *key = NULL;
	struct khkey *k;

	pthread_once(&once, setup);
	if (pub == NULL || strlen(address) >= KH_ADDR_MAX || strlen(fingerprint) != KH_FPR_LEN) {
		cables_fail(err, CABLES_ERR_ARG, "no key for the keyholder to use for %s", address);
		return NULL;
	}
	k = OPENSSL_zalloc(sizeof(*k));
	if (k == NULL)
		abort();
	k->t = t;
	strlcpy_c(k->address, address, sizeof(k->address));
	strlcpy_c(k->fingerprint, fingerprint, sizeof(k->fingerprint));
	if (EVP_PKEY_is_a(pub, "RSA"))
		key = remote_rsa(pub, k);
	else if (EVP_PKEY_is_a(pub, "EC"))
		key = remote_ec(pub, k);
	else
		OPENSSL_clear_free(k, sizeof(*k));
	if (key == NULL)
		cables_fail_ssl(err, CABLES_ERR_UNUSABLE, "certificate %.16s: key type %s cannot be used through the keyholder",
		    fingerprint, EVP_PKEY_get0_type_name(pub));
	return key;
}
