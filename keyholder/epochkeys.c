/* epochkeys - the keyholder's upkeep of epoch keys; see epochkeys.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "epochkeys.h"
#include "smime.h"
#include "util.h"

static void
report(const struct epochkeys_env *e, enum epochkeys_event ev, const char *address, const char *fpr,
    long long when, const char *why)
{
	if (e->report != NULL)
		e->report(e->arg, ev, address, fpr, when, why);
}

/* Delete every epoch key past its expiry and grace; true when any went. */
static bool
delete_expired(const struct epochkeys_env *e, long long now, struct epochkeys_counts *n)
{
	struct key_list all;
	struct cables_err err;
	bool any = false;

	if (keystore_epoch_list(e->ks, NULL, false, &all, &err) != CABLES_OK) {
		report(e, EPOCHKEYS_FAILED, "-", "-", 0, err.msg);
		n->failed++;
		return false;
	}
	for (size_t i = 0; i < all.count; i++) {
		const struct key_record *r = &all.items[i];
		size_t deleted;

		if (now < epoch_delete_at(r->not_after, &e->times))
			continue;
		if (keystore_delete(e->ks, r->address, r->fingerprint, &deleted, &err) != CABLES_OK) {
			report(e, EPOCHKEYS_FAILED, r->address, r->fingerprint, r->not_after, err.msg);
			n->failed++;
			continue;
		}
		report(e, EPOCHKEYS_DELETED, r->address, r->fingerprint, r->not_after, NULL);
		n->deleted++;
		any = true;
	}
	key_list_release(&all);
	return any;
}

/* Make, seal and store an epoch key for parent's address, valid as p says. */
static cables_status
make_one(const struct epochkeys_env *e, const struct key_record *parent, const struct epoch_plan *p, long long now,
    char fpr[65], long long *not_after, struct cables_err *err)
{
	X509 *pcert = NULL, *cert = NULL;
	EVP_PKEY *pkey = NULL, *key = NULL;
	uint8_t *der = NULL, *secret = NULL, *blob = NULL;
	size_t der_len = 0, secret_len = 0, blob_len = 0;
	struct key_record r;
	cables_status st;

	/* An epoch key does not outlive the certificate that vouches for it. */
	*not_after = p->not_after < parent->not_after ? p->not_after : parent->not_after;
	if ((pcert = smime_cert_from_der(parent->public_data, parent->public_len)) == NULL) {
		st = cables_fail(err, CABLES_ERR_SYNTAX, "the long-term certificate %.16s cannot be decoded",
		    parent->fingerprint);
		goto out;
	}
	if ((st = seal_open(e->store_key, parent->fingerprint, parent->secret_data, parent->secret_len, &secret,
	    &secret_len, err)) != CABLES_OK)
		goto out;
	pkey = smime_key_from_der(secret, secret_len);
	seal_free_secret(secret, secret_len);
	if (pkey == NULL) {
		st = cables_fail(err, CABLES_ERR_CRYPTO, "the long-term private key %.16s cannot be decoded",
		    parent->fingerprint);
		goto out;
	}
	if ((st = smime_epoch_issue(pcert, pkey, parent->address, p->not_before, *not_after, &cert, &key,
	    err)) != CABLES_OK)
		goto out;
	smime_cert_fingerprint(cert, fpr);
	if ((st = smime_key_to_der(key, &secret, &secret_len, err)) != CABLES_OK)
		goto out;
	st = seal_close(e->store_key, fpr, secret, secret_len, &blob, &blob_len, err);
	seal_free_secret(secret, secret_len);
	if (st != CABLES_OK)
		goto out;
	if ((der = smime_cert_to_der(cert, &der_len)) == NULL) {
		st = cables_fail_ssl(err, CABLES_ERR_CRYPTO, "encoding the epoch certificate");
		goto out;
	}
	memset(&r, 0, sizeof(r));
	r.address = parent->address;
	strlcpy_c(r.format, "smime", sizeof(r.format));
	strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
	r.public_data = der;
	r.public_len = der_len;
	r.secret_data = blob;
	r.secret_len = blob_len;
	r.not_before = p->not_before;
	r.not_after = *not_after;
	r.source = (char *)KEYSTORE_EPOCH_SOURCE;
	st = keystore_put(e->ks, &r, (time_t)now, err);
out:
	free(der);
	free(blob);
	X509_free(pcert);
	X509_free(cert);
	EVP_PKEY_free(pkey);
	EVP_PKEY_free(key);
	return st;
}

/* Does r hold a local user's long-term S/MIME key, with its private key, valid at now? */
static bool
is_parent(const struct epochkeys_env *e, const struct key_record *r, long long now)
{
	return strcmp(r->format, "smime") == 0 && r->secret_data != NULL && !key_source_discovered(r->source) &&
	    r->not_before <= now && now < r->not_after &&
	    domain_list_match(e->local_domains, addr_domain(r->address));
}

/* A new epoch key for the address of parent when one is due. */
static void
make_due(const struct epochkeys_env *e, const struct key_record *parent, long long now,
    struct epochkeys_counts *n)
{
	struct key_list mine;
	struct epoch_plan p;
	struct cables_err err;
	char fpr[65];
	long long not_after;

	if (keystore_epoch_list(e->ks, parent->address, false, &mine, &err) != CABLES_OK) {
		report(e, EPOCHKEYS_FAILED, parent->address, "-", 0, err.msg);
		n->failed++;
		return;
	}
	/* Only the keys made here (a peer's are never on a local address anyway). */
	for (size_t i = mine.count; i-- > 0;)
		if (strcmp(mine.items[i].source, KEYSTORE_EPOCH_SOURCE) != 0) {
			key_record_release(&mine.items[i]);
			mine.items[i] = mine.items[--mine.count];
		}
	epoch_plan_make(&mine, "smime", now, &e->times, &p);
	key_list_release(&mine);
	if (p.make) {
		if (make_one(e, parent, &p, now, fpr, &not_after, &err) == CABLES_OK) {
			report(e, EPOCHKEYS_MADE, parent->address, fpr, not_after, NULL);
			n->made++;
		} else {
			report(e, EPOCHKEYS_FAILED, parent->address, parent->fingerprint, 0, err.msg);
			n->failed++;
		}
	}
	epoch_plan_release(&p);
}

cables_status
epochkeys_maintain(const struct epochkeys_env *e, long long now, struct epochkeys_counts *n,
    struct cables_err *err)
{
	struct key_list all;
	struct cables_err why;
	const char *done = NULL;

	memset(n, 0, sizeof(*n));
	if (delete_expired(e, now, n) && keystore_wal_truncate(e->ks, &why) != CABLES_OK) {
		report(e, EPOCHKEYS_FAILED, "-", "-", 0, why.msg);
		n->failed++;
	}
	/* EpochKeyLifetime 0: no new ones, but those made before still go on time. */
	if (e->times.lifetime <= 0)
		return CABLES_OK;
	if (keystore_list(e->ks, true, &all, err) != CABLES_OK)
		return CABLES_ERR_DB;
	/* Rows come by address, newest expiry first: the first usable one of an address is its parent. */
	for (size_t i = 0; i < all.count; i++) {
		const struct key_record *r = &all.items[i];

		if ((done != NULL && strcmp(done, r->address) == 0) || !is_parent(e, r, now))
			continue;
		make_due(e, r, now, n);
		done = r->address;
	}
	key_list_release(&all);
	return CABLES_OK;
}
