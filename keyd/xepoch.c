/*
 * xepoch - may an epoch key offered in a key-exchange answer be used?
 * See x_epoch_check() in exchange.h and doc/key-exchange.md, "Forward
 * secrecy: epoch keys".  Apart from exchange.c, which knows no X.509.
 */
#include "autoconfig.h"

#include <string.h>

#include <openssl/x509v3.h>

#include "addr.h"
#include "exchange.h"
#include "pgp_epoch.h"
#include "smime.h"
#include "util.h"

/* Is parent one of the result's usable long-term certificates, and did it issue and sign cert? */
static bool
issued_by(X509 *cert, const struct x_key *k, const char *address, const struct addr_opts *ao, time_t now,
    char fpr[65])
{
	X509 *parent;
	bool ok;

	if (strcmp(k->format, "smime") != 0 || (parent = smime_cert_from_der(k->data, k->len)) == NULL)
		return false;
	ok = smime_cert_check(parent, address, ao, now, NULL) == CABLES_OK &&
	    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(parent)) == 0 &&
	    X509_verify(cert, X509_get0_pubkey(parent)) == 1;
	if (ok)
		smime_cert_fingerprint(parent, fpr);
	X509_free(parent);
	return ok;
}

/*
 * An OpenPGP epoch key: bound (pgp_epoch_check) by the primary key of one
 * of the result's OpenPGP keys, its expiry the one the answer states.
 * parent_fpr: that key's primary fingerprint (lowercase hex).
 */
static cables_status
pgp_epoch_of(const struct x_result *res, const struct x_key *epoch, time_t now, char parent_fpr[65],
    struct cables_err *err)
{
	struct pgp_epoch_info info;
	struct cables_err why = { "" };
	bool any = false;

	for (size_t i = 0; i < res->n; i++) {
		if (strcmp(res->keys[i].format, "pgp") != 0)
			continue;
		any = true;
		if (pgp_epoch_check(epoch->data, epoch->len, res->keys[i].data, res->keys[i].len, (long long)now,
		    X_EPOCH_VALIDITY_MAX, &info, &why) != CABLES_OK)
			continue;
		if (info.not_after != epoch->not_after)
			return cables_fail(err, CABLES_ERR_UNUSABLE, "the OpenPGP epoch subkey expires at %lld, not at %lld as "
			    "the answer says", info.not_after, epoch->not_after);
		if (parent_fpr != NULL)
			strlcpy_c(parent_fpr, info.primary, 65);
		return CABLES_OK;
	}
	if (!any)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "an OpenPGP epoch key without an OpenPGP key of %s in the "
		    "answer", res->address);
	return cables_fail(err, CABLES_ERR_UNUSABLE, "the OpenPGP epoch key: %s", why.msg);
}

cables_status
x_epoch_check(const struct x_result *res, const struct x_key *epoch, const struct addr_opts *ao, time_t now,
    char parent_fpr[65], struct cables_err *err)
{
	char fpr[65] = "";
	X509 *cert;
	long long not_before, not_after;
	struct cables_err why;
	cables_status st = CABLES_ERR_UNUSABLE;
	bool signed_by_user = false;

	if (strcmp(epoch->format, "pgp") == 0)
		return pgp_epoch_of(res, epoch, now, parent_fpr, err);
	if (strcmp(epoch->format, "smime") != 0)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "epoch keys of format %s are not supported", epoch->format);
	if ((cert = smime_cert_from_der(epoch->data, epoch->len)) == NULL)
		return cables_fail(err, CABLES_ERR_UNUSABLE, "the epoch certificate cannot be decoded");
	smime_cert_validity(cert, &not_before, &not_after);
	for (size_t i = 0; i < res->n && !signed_by_user; i++)
		signed_by_user = issued_by(cert, &res->keys[i], res->address, ao, now, fpr);
	if (not_after != epoch->not_after)
		cables_fail(err, st, "the epoch certificate expires at %lld, not at %lld as the answer says", not_after,
		    epoch->not_after);
	else if (smime_cert_check(cert, res->address, ao, now, &why) != CABLES_OK)
		cables_fail(err, st, "the epoch certificate: %s", why.msg);
	else if (not_after - not_before > X_EPOCH_VALIDITY_MAX)
		cables_fail(err, st, "the epoch certificate is valid for %lld days: no short-lived key",
		    (not_after - not_before) / 86400);
	else if (X509_get_key_usage(cert) != KU_KEY_AGREEMENT || (X509_get_extension_flags(cert) & EXFLAG_CA))
		cables_fail(err, st, "the epoch certificate is not for key agreement only");
	else if (!signed_by_user)
		cables_fail(err, st, "the epoch certificate is not issued by a long-term certificate of %s in the answer",
		    res->address);
	else
		st = CABLES_OK;
	if (st == CABLES_OK && parent_fpr != NULL)
		strlcpy_c(parent_fpr, fpr, 65);
	X509_free(cert);
	return st;
}
