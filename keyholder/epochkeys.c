/* epochkeys - the keyholder's upkeep of epoch keys; see epochkeys.h. */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "epochkeys.h"
#include "pgp_epoch.h"
#include "pgp_key.h"
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

		if (now < epoch_delete_at(r->not_after, &e->times))
			continue;
		if (keystore_delete_epoch(e->ks, r->id, &err) != CABLES_OK) {
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

/*
 * Make, seal and store an OpenPGP epoch subkey for parent (the address's
 * long-term OpenPGP key), bound by its primary key, valid as p says.
 */
static cables_status
make_one_pgp(const struct epochkeys_env *e, const struct key_record *parent, const struct epoch_plan *p,
    long long now, char fpr[65], long long *not_after, struct cables_err *err)
{
	uint8_t *secret = NULL, *sub = NULL, *blob = NULL;
	size_t secret_len = 0, sub_len = 0, blob_len = 0;
	struct pgp_keypkt primary;
	struct pgp_epoch_info info;
	struct buf pub;
	struct key_record r;
	EVP_PKEY *key = NULL;
	cables_status st;

	/* An epoch key does not outlive the key that vouches for it (0: the primary never expires). */
	*not_after = parent->not_after > 0 && parent->not_after < p->not_after ? parent->not_after : p->not_after;
	if ((st = seal_open(e->store_key, parent->fingerprint, parent->secret_data, parent->secret_len, &secret,
	    &secret_len, err)) != CABLES_OK)
		return st;
	if ((st = pgp_key_find(secret, secret_len, NULL, &primary, err)) == CABLES_OK &&
	    (key = pgp_key_private(&primary, err)) == NULL)
		st = CABLES_ERR_CRYPTO;
	if (st == CABLES_OK)
		st = pgp_epoch_make(parent->public_data, parent->public_len, &primary, key, p->not_before, *not_after,
		    &pub, &sub, &sub_len, &info, err);
	EVP_PKEY_free(key);
	seal_free_secret(secret, secret_len);
	if (st != CABLES_OK)
		return st;
	strlcpy_c(fpr, info.fpr, 65);
	st = seal_close(e->store_key, fpr, sub, sub_len, &blob, &blob_len, err);
	pgp_epoch_secret_free(sub, sub_len);
	if (st == CABLES_OK) {
		memset(&r, 0, sizeof(r));
		r.address = parent->address;
		strlcpy_c(r.format, "pgp", sizeof(r.format));
		strlcpy_c(r.fingerprint, fpr, sizeof(r.fingerprint));
		r.public_data = (uint8_t *)pub.data;
		r.public_len = pub.len;
		r.secret_data = blob;
		r.secret_len = blob_len;
		r.not_before = p->not_before;
		r.not_after = *not_after;
		r.source = (char *)KEYSTORE_EPOCH_SOURCE;
		st = keystore_put(e->ks, &r, (time_t)now, err);
	}
	free(blob);
	buf_release(&pub);
	return st;
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

	if (strcmp(parent->format, "pgp") == 0)
		return make_one_pgp(e, parent, p, now, fpr, not_after, err);
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

/*
 * Does r's sealed private key belong to its certificate?  The store is
 * writable by the milter: a row it planted (its own certificate, a junk
 * seal, a later expiry) must not become the parent that every genuine
 * epoch key then fails against.
 */
static bool
holds_its_pgp_key(const struct epochkeys_env *e, const struct key_record *r, char *why, size_t whylen)
{
	uint8_t *secret = NULL, fpr[20];
	size_t secret_len = 0;
	struct pgp_keypkt sk, pk;
	struct cables_err err;
	EVP_PKEY *key = NULL;
	char hex[41];
	bool ok = false;

	if (seal_open(e->store_key, r->fingerprint, r->secret_data, r->secret_len, &secret, &secret_len, &err) !=
	    CABLES_OK) {
		snprintf(why, whylen, "its seal does not open with the store key");
		return false;
	}
	/* The secret's first key packet (an epoch row holds the subkey alone; a long-term one starts with the primary). */
	if (pgp_key_find(secret, secret_len, NULL, &sk, &err) != CABLES_OK || (key = pgp_key_private(&sk, &err)) == NULL) {
		snprintf(why, whylen, "its secret key cannot be read: %s", err.msg);
	} else if (pgp_key_find(r->public_data, r->public_len, sk.keyid, &pk, &err) != CABLES_OK ||
	    memcmp(pk.fpr, sk.fpr, sizeof(fpr)) != 0) {
		snprintf(why, whylen, "its secret key is not in its public key");
	} else {
		hex_encode(sk.fpr, 20, hex);
		hex[40] = '\0';
		/* The row's name is the key's: the primary's for a long-term key, the subkey's for an epoch key. */
		if (!(ok = strcasecmp(hex, r->fingerprint) == 0))
			snprintf(why, whylen, "its fingerprint is not its key's");
	}
	EVP_PKEY_free(key);
	seal_free_secret(secret, secret_len);
	return ok;
}

static bool
holds_its_key(const struct epochkeys_env *e, const struct key_record *r, char *why, size_t whylen)
{
	X509 *cert = smime_cert_from_der(r->public_data, r->public_len);
	EVP_PKEY *key = NULL;
	uint8_t *secret = NULL;
	size_t secret_len = 0;
	char fpr[65];
	struct cables_err err;
	bool ok = false;

	if (strcmp(r->format, "pgp") == 0) {
		X509_free(cert);
		return holds_its_pgp_key(e, r, why, whylen);
	}
	if (cert == NULL) {
		snprintf(why, whylen, "its certificate cannot be decoded");
		return false;
	}
	smime_cert_fingerprint(cert, fpr);
	if (strcmp(fpr, r->fingerprint) != 0) {
		snprintf(why, whylen, "its fingerprint is not its certificate's");
	} else if (seal_open(e->store_key, fpr, r->secret_data, r->secret_len, &secret, &secret_len, &err) !=
	    CABLES_OK) {
		snprintf(why, whylen, "its seal does not open with the store key");
	} else {
		key = smime_key_from_der(secret, secret_len);
		seal_free_secret(secret, secret_len);
		if (!(ok = key != NULL && X509_check_private_key(cert, key) == 1))
			snprintf(why, whylen, "its private key does not match its certificate");
	}
	EVP_PKEY_free(key);
	X509_free(cert);
	return ok;
}

/* Does r hold a local user's long-term S/MIME or OpenPGP key, with its own private key, valid at now? */
static bool
is_parent(const struct epochkeys_env *e, const struct key_record *r, long long now)
{
	char why[CABLES_ERR_MAX];

	return (strcmp(r->format, "smime") == 0 || strcmp(r->format, "pgp") == 0) && r->secret_data != NULL && !key_source_discovered(r->source) &&
	    r->not_before <= now && now < r->not_after &&
	    domain_list_match(e->local_domains, addr_domain(r->address)) && holds_its_key(e, r, why, sizeof(why));
}

/*
 * Is r an epoch key this keyholder made for parent's address from parent,
 * the address's current long-term certificate?  Its fingerprint is its
 * certificate's, its seal opens with the store key (under that
 * fingerprint), the private key inside matches the certificate, and
 * parent's key signed the certificate.  The store is writable by the
 * milter, so nothing else a row says is taken on trust.  On false, why
 * says what failed and *planted tells a row no keyholder made (a bad seal
 * or key) from one merely issued by another certificate.
 */
bool
epochkeys_genuine(const struct epochkeys_env *e, const struct key_record *parent, const struct key_record *r,
    bool *planted, char *why, size_t whylen)
{
	X509 *cert = NULL, *pcert = NULL;
	bool ok = false;

	*planted = true;
	if (strcmp(r->format, parent->format) != 0) {
		*planted = false;	/* the other format's: neither this parent's nor planted */
		snprintf(why, whylen, "an epoch key of another format");
		return false;
	}
	if (strcmp(r->source, KEYSTORE_EPOCH_SOURCE) != 0 || strcmp(r->address, parent->address) != 0 ||
	    r->secret_data == NULL) {
		snprintf(why, whylen, "not an epoch key of %s with a private key", parent->address);
		return false;
	}
	if (!holds_its_key(e, r, why, whylen))
		return false;
	*planted = false;
	if (strcmp(r->format, "pgp") == 0) {
		struct pgp_epoch_info info;
		struct cables_err err;

		/* Bound by the current long-term key's primary; its times are the row's (checked at its own start). */
		if (pgp_epoch_check(r->public_data, r->public_len, parent->public_data, parent->public_len, r->not_before,
		    r->not_after - r->not_before + 1, &info, &err) != CABLES_OK || info.not_after != r->not_after ||
		    strcasecmp(info.fpr, r->fingerprint) != 0) {
			snprintf(why, whylen, "not bound to the current long-term key %.16s", parent->fingerprint);
			return false;
		}
		return true;
	}
	if ((cert = smime_cert_from_der(r->public_data, r->public_len)) == NULL ||
	    (pcert = smime_cert_from_der(parent->public_data, parent->public_len)) == NULL ||
	    X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(pcert)) != 0 ||
	    X509_verify(cert, X509_get0_pubkey(pcert)) != 1)
		snprintf(why, whylen, "not issued by the current long-term certificate %.16s", parent->fingerprint);
	else
		ok = true;
	X509_free(cert);
	X509_free(pcert);
	return ok;
}

/*
 * Keep in epochs only the genuine epoch keys of parent (epochkeys_genuine),
 * reporting each planted one (EPOCHKEYS_IGNORED); those of an earlier
 * long-term certificate go quietly: they still decrypt until deleted, but
 * are neither served nor counted as current.
 */
static void
keep_genuine(const struct epochkeys_env *e, const struct key_record *parent, struct key_list *epochs)
{
	char why[CABLES_ERR_MAX];
	bool planted;

	for (size_t i = epochs->count; i-- > 0;) {
		if (epochkeys_genuine(e, parent, &epochs->items[i], &planted, why, sizeof(why)))
			continue;
		if (planted)
			report(e, EPOCHKEYS_IGNORED, epochs->items[i].address, epochs->items[i].fingerprint,
			    epochs->items[i].not_after, why);
		key_record_release(&epochs->items[i]);
		memmove(&epochs->items[i], &epochs->items[i + 1], (epochs->count - i - 1) * sizeof(epochs->items[0]));
		epochs->count--;
	}
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

	if (keystore_epoch_list(e->ks, parent->address, true, &mine, &err) != CABLES_OK) {
		report(e, EPOCHKEYS_FAILED, parent->address, "-", 0, err.msg);
		n->failed++;
		return;
	}
	/* Only the keys made here from this certificate: a planted row, or one of a replaced certificate, is no reason to wait. */
	keep_genuine(e, parent, &mine);
	epoch_plan_make(&mine, parent->format, now, &e->times, &p);
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
	const char *done[2] = { NULL, NULL };	/* the last address given an S/MIME, an OpenPGP epoch key */

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
	/* Rows come by address and format, newest expiry first: the first usable one of each is its parent. */
	for (size_t i = 0; i < all.count; i++) {
		const struct key_record *r = &all.items[i];
		size_t f = strcmp(r->format, "pgp") == 0;

		if ((done[f] != NULL && strcmp(done[f], r->address) == 0) || !is_parent(e, r, now))
			continue;
		make_due(e, r, now, n);
		done[f] = r->address;
	}
	key_list_release(&all);
	return CABLES_OK;
}

cables_status
epochkeys_current(const struct epochkeys_env *e, const char *address, long long now, uint8_t digest[32], bool *found,
    struct cables_err *err)
{
	return epochkeys_current_format(e, address, "smime", now, digest, found, err);
}

cables_status
epochkeys_current_format(const struct epochkeys_env *e, const char *address, const char *format, long long now,
    uint8_t digest[32], bool *found, struct cables_err *err)
{
	struct key_list lt, mine;
	const struct key_record *parent = NULL, *best = NULL;

	*found = false;
	if (keystore_lookup(e->ks, address, format, &lt, err) != CABLES_OK)
		return CABLES_ERR_DB;
	/* Newest expiry first, as epochkeys_maintain picks the parent. */
	for (size_t i = 0; i < lt.count && parent == NULL; i++)
		if (is_parent(e, &lt.items[i], now))
			parent = &lt.items[i];
	if (parent == NULL) {
		key_list_release(&lt);
		return CABLES_OK;
	}
	if (keystore_epoch_list(e->ks, address, true, &mine, err) != CABLES_OK) {
		key_list_release(&lt);
		return CABLES_ERR_DB;
	}
	keep_genuine(e, parent, &mine);
	for (size_t i = 0; i < mine.count; i++) {
		const struct key_record *r = &mine.items[i];

		if (r->not_before <= now && now < r->not_after && (best == NULL || r->not_after > best->not_after))
			best = r;
	}
	if (best != NULL) {
		SHA256(best->public_data, best->public_len, digest);	/* the certificate's DER, or the OpenPGP public form */
		*found = true;
	}
	key_list_release(&mine);
	key_list_release(&lt);
	return CABLES_OK;
}

bool
epochkeys_holds_key(const struct epochkeys_env *e, const struct key_record *r, char *why, size_t whylen)
{
	return holds_its_key(e, r, why, whylen);
}
