/* smimea - the certificates an SMIMEA RRset vouches for; see smimea.h. */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "smimea.h"

/* Does record r match cert c (its selector and matching type)? */
static bool
matches(const struct dns_record *r, X509 *c)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool ok = false;
	int len;

	if (r->selector == 0)
		len = i2d_X509(c, &der);
	else if (r->selector == 1)
		len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c), &der);
	else
		return false;
	if (len <= 0)
		return false;
	if (r->mtype == 0)
		ok = (size_t)len == r->len && memcmp(der, r->data, r->len) == 0;
	else if (r->mtype == 1 || r->mtype == 2)
		ok = EVP_Digest(der, (size_t)len, md, &mdlen, r->mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL) &&
		    mdlen == r->len && memcmp(md, r->data, mdlen) == 0;
	OPENSSL_free(der);
	return ok;
}

/* Verify c against store (building from set); the chain on success, else NULL and the error in why. */
static STACK_OF(X509) *
chain_of(X509 *c, X509_STORE *store, STACK_OF(X509) *set, time_t now, char *why, size_t why_len)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = NULL;

	if (ctx == NULL || !X509_STORE_CTX_init(ctx, store, c, set)) {
		snprintf(why, why_len, "out of memory");
		X509_STORE_CTX_free(ctx);
		return NULL;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SMIME_ENCRYPT);
	if (X509_verify_cert(ctx) == 1)
		chain = X509_STORE_CTX_get1_chain(ctx);
	else
		snprintf(why, why_len, "%s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	X509_STORE_CTX_free(ctx);
	return chain;
}

/* Does some certificate of chain (past the first, or the first when it is all there is) match r? */
static bool
chain_matches(const struct dns_record *r, STACK_OF(X509) *chain)
{
	int n = sk_X509_num(chain);

	for (int i = n > 1 ? 1 : 0; i < n; i++)
		if (matches(r, sk_X509_value(chain, i)))
			return true;
	return false;
}

/* DANE-TA: does c chain to a certificate of set that matches r, taken as the trust anchor? */
static bool
dane_ta(const struct dns_record *r, X509 *c, STACK_OF(X509) *set, time_t now, char *why, size_t why_len)
{
	bool anchored = false, ok = false;

	for (int i = 0; i < sk_X509_num(set) && !ok; i++) {
		X509 *ta = sk_X509_value(set, i);
		X509_STORE *store;
		STACK_OF(X509) *chain;
		char err[160];

		if (!matches(r, ta) || (store = X509_STORE_new()) == NULL)
			continue;
		anchored = true;
		/* The anchor need not be self-signed: an intermediate the record names is trusted as it is. */
		X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
		X509_STORE_add_cert(store, ta);
		if ((chain = chain_of(c, store, set, now, err, sizeof(err))) != NULL) {
			ok = true;
			sk_X509_pop_free(chain, X509_free);
		} else {
			snprintf(why, why_len, "usage 2 (DANE-TA): does not chain to the asserted trust anchor: %s", err);
		}
		X509_STORE_free(store);
	}
	if (!anchored)
		snprintf(why, why_len, "usage 2 (DANE-TA): the asserted trust anchor is not among the records' certificates");
	return ok;
}

/* PKIX-EE (1) and PKIX-TA (0): c chains to TrustAnchors, and r matches c (1) or a certificate above it (0). */
static bool
pkix(const struct dns_record *r, X509 *c, STACK_OF(X509) *set, X509_STORE *anchors, time_t now, char *why,
    size_t why_len)
{
	const char *name = r->usage == 1 ? "usage 1 (PKIX-EE)" : "usage 0 (PKIX-TA)";
	STACK_OF(X509) *chain;
	char err[160];
	bool ok;

	if (r->usage == 1 && !matches(r, c))
		return false;
	if (anchors == NULL) {
		snprintf(why, why_len, "%s: no TrustAnchors configured", name);
		return false;
	}
	if ((chain = chain_of(c, anchors, set, now, err, sizeof(err))) == NULL) {
		snprintf(why, why_len, "%s: not trusted by TrustAnchors: %s", name, err);
		return false;
	}
	ok = r->usage == 1 || chain_matches(r, chain);
	if (!ok)
		snprintf(why, why_len, "%s: the asserted CA is not on the certificate's chain", name);
	sk_X509_pop_free(chain, X509_free);
	return ok;
}

static bool
vouches(const struct dns_record *r, X509 *c, STACK_OF(X509) *set, X509_STORE *anchors, time_t now, char *why,
    size_t why_len)
{
	if (r->selector > 1 || r->mtype > 2) {
		snprintf(why, why_len, "selector %u, matching type %u: not supported", r->selector, r->mtype);
		return false;
	}
	switch (r->usage) {
	case 3:
		return matches(r, c);
	case 2:
		return dane_ta(r, c, set, now, why, why_len);
	case 1:
	case 0:
		return pkix(r, c, set, anchors, now, why, why_len);
	default:
		snprintf(why, why_len, "usage %u: not supported", r->usage);
		return false;
	}
}

static bool
encodes_back(X509 *c, const struct dns_record *r)
{
	unsigned char *der = NULL;
	int len = i2d_X509(c, &der);
	bool same = len > 0 && (size_t)len == r->len && memcmp(der, r->data, r->len) == 0;

	OPENSSL_free(der);
	return same;
}

size_t
smimea_select(const struct dns_record *recs, size_t n, X509_STORE *anchors, time_t now, X509 **out, size_t max,
    char *why, size_t why_len)
{
	STACK_OF(X509) *set = sk_X509_new_null();
	size_t found = 0, ee = 0;
	bool reasoned = false;

	snprintf(why, why_len, "no record matches a certificate the records carry");
	for (size_t i = 0; i < n && set != NULL; i++) {
		const unsigned char *p = recs[i].data;
		X509 *c;

		if (recs[i].selector != 0 || recs[i].mtype != 0)
			continue;
		if ((c = d2i_X509(NULL, &p, (long)recs[i].len)) == NULL || p != recs[i].data + recs[i].len) {
			X509_free(c);
			snprintf(why, why_len, "a record's certificate cannot be decoded");
			continue;
		}
		/* Digests are over DER: a certificate that does not encode back to its bytes is not one. */
		if (!encodes_back(c, &recs[i])) {
			X509_free(c);
			snprintf(why, why_len, "a record's certificate is not in DER");
			continue;
		}
		sk_X509_push(set, c);
	}
	if (set == NULL || sk_X509_num(set) == 0) {
		if (set != NULL && n > 0 && strncmp(why, "a record's certificate", 22) != 0)
			snprintf(why, why_len, "the records carry no certificate (only digests)");
		sk_X509_free(set);
		return 0;
	}
	for (int i = 0; i < sk_X509_num(set) && found < max; i++) {
		X509 *c = sk_X509_value(set, i);

		if (X509_check_ca(c) != 0)
			continue;	/* a CA's certificate is never a recipient's */
		ee++;
		for (size_t j = 0; j < n; j++) {
			char one[256] = "";

			if (vouches(&recs[j], c, set, anchors, now, one, sizeof(one))) {
				X509_up_ref(c);
				out[found++] = c;
				break;
			}
			/* The first assertion that failed for a reason says most: keep it. */
			if (one[0] != '\0' && !reasoned) {
				snprintf(why, why_len, "%s", one);
				reasoned = true;
			}
		}
	}
	if (ee == 0)
		snprintf(why, why_len, "the records carry only CA certificates");
	sk_X509_pop_free(set, X509_free);
	return found;
}
