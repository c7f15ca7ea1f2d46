/* keys - certificates and private keys for the milter; see keys.h. */
#include "autoconfig.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "addr.h"
#include "keydclient.h"
#include "keys.h"
#include "khkey.h"
#include "mime.h"
#include "pgp.h"
#include "pins.h"
#include "seal.h"
#include "smime.h"
#include "util.h"

/* Has cables-keyd just answered with the key in row r (env->confirmed)? */
static bool
keyd_confirmed(const struct milter_env *env, const struct key_record *r)
{
	for (size_t i = 0; env->confirmed != NULL && i < env->confirmed->n; i++)
		if (strcmp(env->confirmed->fpr[i], r->fingerprint) == 0)
			return true;
	return false;
}

/*
 * May the key in row r be used?  One held locally (imported, generated)
 * always.  One from DNS, a key server or WKD only when keyd has just
 * confirmed it.  A harvested one ranks below discovery: only when keyd,
 * having looked for a key the recipient's domain publishes and found none,
 * answered with it, and while it is the address's pinned key (a key keyd
 * found since may have taken the pin; one stored before harvesting was
 * pinned has never been through the pin decision).  Otherwise anyone with a
 * certificate under TrustAnchors naming bob, writing to us before we ever
 * looked bob up, would decide the key of bob's mail.
 */
static bool
confirmed(const struct milter_env *env, const struct key_record *r)
{
	if (strcmp(r->source, "harvested") == 0) {
		struct key_pin p;
		bool pinned;

		if (!keyd_confirmed(env, r) ||
		    keystore_pin_get(env->ks, r->address, r->format, &p, NULL) != CABLES_OK)
			return false;
		pinned = strcmp(p.fingerprint, r->fingerprint) == 0;
		key_pin_release(&p);
		return pinned;
	}
	return !key_source_discovered(r->source) || keyd_confirmed(env, r);
}

/*
 * ForwardSecrecy for encrypting to addr: a remote recipient's policy
 * (a local address has no peer's epoch key; its own copies are not sent).
 */
static enum fs_policy
forward_secrecy(const struct milter_env *env, const char *addr)
{
	if (domain_list_match(&env->cfg->local_domains, addr_domain(addr)))
		return FS_OFF;
	return (enum fs_policy)policy_get(&env->cfg->policy, addr, PA_FORWARD_SECRECY, NULL);
}

/*
 * The epoch key of addr that cables-keyd has just confirmed (it came with
 * the long-term key from the recipient domain's signed key-exchange
 * answer, doc/key-exchange.md "Forward secrecy"), usable now; NULL when
 * there is none.
 */
static X509 *
peer_epoch_cert(const struct milter_env *env, const char *addr, cables_status *st, struct cables_err *err)
{
	struct key_list keys;
	X509 *found = NULL;

	if ((*st = keystore_epoch_list(env->ks, addr, true, &keys, err)) != CABLES_OK)
		return NULL;
	for (size_t i = 0; i < keys.count && found == NULL; i++) {
		const struct key_record *r = &keys.items[i];

		if (strcmp(r->source, KEYSTORE_PEER_EPOCH_SOURCE) != 0 || strcmp(r->format, "smime") != 0 ||
		    !keyd_confirmed(env, r))
			continue;
		found = smime_cache_cert(env->certs, r->public_data, r->public_len);
		if (found != NULL && smime_cert_check(found, addr, &env->cfg->addr, env->now, NULL) != CABLES_OK) {
			X509_free(found);
			found = NULL;
		}
	}
	key_list_release(&keys);
	return found;
}

X509 *
keys_cert(const struct milter_env *env, const char *addr, enum key_use use, bool *epoch, char **why,
    cables_status *st, struct cables_err *err)
{
	struct key_list keys;
	struct cables_err reason;
	X509 *found = NULL;
	size_t considered;
	enum fs_policy fs = use == KEY_ENCRYPT ? forward_secrecy(env, addr) : FS_OFF;

	*why = NULL;
	*epoch = false;
	/* The epoch key alone: adding the long-term key would give the forward secrecy away. */
	if (fs != FS_OFF && ((found = peer_epoch_cert(env, addr, st, err)) != NULL || *st != CABLES_OK)) {
		*epoch = found != NULL;
		return found;
	}
	if (fs == FS_REQUIRE) {
		*why = xstrdup("no epoch key from the recipient's Cables server (ForwardSecrecy require)");
		return NULL;
	}
	*st = keystore_lookup(env->ks, addr, "smime", &keys, err);
	if (*st != CABLES_OK)
		return NULL;
	considered = keys.count;
	reason.msg[0] = '\0';
	for (size_t i = 0; i < keys.count && found == NULL; i++) {
		X509 *c;
		cables_status usable;

		if (!confirmed(env, &keys.items[i])) {
			considered--;
			continue;
		}
		c = smime_cache_cert(env->certs, keys.items[i].public_data, keys.items[i].public_len);
		if (c == NULL) {
			cables_fail(&reason, CABLES_ERR_SYNTAX, "stored certificate %.16s cannot be decoded",
			    keys.items[i].fingerprint);
			continue;
		}
		usable = use == KEY_SIGN ?
		    smime_cert_check_signing(c, addr, &env->cfg->addr, env->now, &reason) :
		    smime_cert_check(c, addr, &env->cfg->addr, env->now, &reason);
		if (usable == CABLES_OK && (use != KEY_SIGN || keys.items[i].secret_data != NULL))
			found = c;
		else
			X509_free(c);
	}
	if (found == NULL)
		*why = considered == 0 ? xstrdup("no certificate") :
		    reason.msg[0] == '\0' ? xstrdup("no private key") :
		    xasprintf("certificate %.16s: %s", keys.items[0].fingerprint, reason.msg);
	key_list_release(&keys);
	return found;
}

/*
 * The OpenPGP epoch subkey of addr that cables-keyd has just confirmed
 * (checked by keyd against the long-term key of the same signed answer),
 * valid now, and readable by gpg as a key of addr that can encrypt: its
 * subkey fingerprint with "!" (gpg encrypts to that subkey alone) into
 * fpr.  False when there is none (*st says whether the store failed).
 */
static bool
peer_epoch_pgp(const struct milter_env *env, const char *addr, char fpr[PGP_FPR_LEN + 2], cables_status *st,
    struct cables_err *err)
{
	struct key_list keys;
	char primary[PGP_FPR_LEN + 1];
	bool found = false;

	if ((*st = keystore_epoch_list(env->ks, addr, true, &keys, err)) != CABLES_OK)
		return false;
	for (size_t i = 0; i < keys.count && !found; i++) {
		const struct key_record *r = &keys.items[i];

		if (strcmp(r->source, KEYSTORE_PEER_EPOCH_SOURCE) != 0 || strcmp(r->format, "pgp") != 0 ||
		    strlen(r->fingerprint) != PGP_FPR_LEN || !keyd_confirmed(env, r) || r->not_before > (long long)env->now ||
		    (long long)env->now >= r->not_after ||
		    pgp_check(env->cfg->gnupg_home, r->public_data, r->public_len, addr, &env->cfg->addr, PGP_USE_ENCRYPT,
		    env->now, primary, NULL) != CABLES_OK)
			continue;
		snprintf(fpr, PGP_FPR_LEN + 2, "%s!", r->fingerprint);
		found = true;
	}
	key_list_release(&keys);
	return found;
}

/*
 * gpg encrypts to the newest encryption subkey of a key in its home, where
 * an epoch key's public form merges into the long-term key (same primary):
 * name the store row's own encryption subkey instead, with "!", so that no
 * copy goes to an epoch subkey the long-term row does not hold.
 */
static cables_status
own_encryption_subkey(const struct milter_env *env, const struct key_record *r, char fpr[PGP_FPR_LEN + 2],
    struct cables_err *err)
{
	struct pgp_key_info info;
	cables_status st;

	if ((st = pgp_inspect(env->cfg->gnupg_home, r->public_data, r->public_len, &info, err)) != CABLES_OK)
		return st;
	if (info.encrypt_fpr[0] == '\0')
		st = cables_fail(err, CABLES_ERR_UNUSABLE, "OpenPGP key %s has no valid encryption key", info.fpr);
	else
		snprintf(fpr, PGP_FPR_LEN + 2, "%s!", info.encrypt_fpr);
	pgp_key_info_release(&info);
	return st;
}

bool
keys_pgp(const struct milter_env *env, const char *addr, enum key_use use, char fpr[PGP_FPR_LEN + 2], bool *epoch,
    char **why, cables_status *st, struct cables_err *err)
{
	struct key_list keys;
	struct cables_err reason;
	bool found = false;
	size_t considered;
	enum fs_policy fs = use == KEY_ENCRYPT ? forward_secrecy(env, addr) : FS_OFF;

	*why = NULL;
	*st = CABLES_OK;
	*epoch = false;
	/* The epoch subkey alone: adding the long-term key would give the forward secrecy away. */
	if (fs != FS_OFF && (peer_epoch_pgp(env, addr, fpr, st, err) || *st != CABLES_OK)) {
		*epoch = *st == CABLES_OK;
		return *epoch;
	}
	if (fs == FS_REQUIRE) {
		*why = xstrdup("no OpenPGP epoch key from the recipient's Cables server (ForwardSecrecy require)");
		return false;
	}
	*st = keystore_lookup(env->ks, addr, "pgp", &keys, err);
	if (*st != CABLES_OK)
		return false;
	considered = keys.count;
	reason.msg[0] = '\0';
	for (size_t i = 0; i < keys.count && !found; i++) {
		const struct key_record *r = &keys.items[i];
		cables_status usable;

		if (!confirmed(env, r)) {
			considered--;
			continue;
		}
		if (use == KEY_SIGN && r->secret_data == NULL)
			continue;
		usable = pgp_check(env->cfg->gnupg_home, r->public_data, r->public_len, addr, &env->cfg->addr,
		    use == KEY_SIGN ? PGP_USE_SIGN : PGP_USE_ENCRYPT, env->now, fpr, &reason);
		if (usable == CABLES_OK && use != KEY_SIGN)
			usable = own_encryption_subkey(env, r, fpr, &reason);
		if (usable == CABLES_ERR_UNUSABLE || usable == CABLES_ERR_SYNTAX)
			continue;
		if (usable == CABLES_OK && use == KEY_SIGN && env->keyholder == NULL) {
			/* The secret stays in the keyholder: without one, no OpenPGP signing. */
			cables_fail(&reason, CABLES_ERR_UNUSABLE, "OpenPGP signing needs cables-keyholder "
			    "(KeyholderSocket is none)");
			continue;
		}
		if (usable != CABLES_OK) {
			/* gpg itself failed: not a property of the key. */
			*st = usable;
			if (err != NULL)
				*err = reason;
			break;
		}
		found = true;
	}
	if (!found && *st == CABLES_OK)
		*why = considered == 0 ? xstrdup("no OpenPGP key") :
		    reason.msg[0] == '\0' ? xstrdup("no OpenPGP secret key") : xstrdup(reason.msg);
	key_list_release(&keys);
	return found;
}

cables_status
keys_pgp_epochs(const struct milter_env *env, const char *addr, struct key_list *keys, struct cables_err *err)
{
	struct key_list epochs;
	cables_status st;

	if ((st = keystore_epoch_list(env->ks, addr, true, &epochs, err)) != CABLES_OK)
		return st;
	for (size_t i = epochs.count; i-- > 0;) {
		if (strcmp(epochs.items[i].format, "pgp") == 0 && strcmp(epochs.items[i].source, KEYSTORE_EPOCH_SOURCE) == 0)
			continue;
		key_record_release(&epochs.items[i]);
		memmove(&epochs.items[i], &epochs.items[i + 1], (epochs.count - i - 1) * sizeof(epochs.items[0]));
		epochs.count--;
	}
	key_list_take(keys, &epochs);
	return CABLES_OK;
}

/* The unsealed private key of record r (cached by fingerprint). */
static EVP_PKEY *
open_key(const struct milter_env *env, const struct key_record *r, struct cables_err *err)
{
	EVP_PKEY *key = smime_cache_key_get(env->certs, r->fingerprint);
	uint8_t *der;
	size_t len;

	if (key != NULL)
		return key;
	if (seal_open(env->seal_key, r->fingerprint, r->secret_data, r->secret_len, &der, &len, err) != CABLES_OK)
		return NULL;
	key = smime_key_from_der(der, len);
	seal_free_secret(der, len);
	if (key == NULL) {
		cables_fail(err, CABLES_ERR_CRYPTO, "private key of %.16s cannot be decoded", r->fingerprint);
		return NULL;
	}
	smime_cache_key_put(env->certs, r->fingerprint, key);
	return key;
}

cables_status
keys_private(const struct milter_env *env, const char *addr, struct key_pair **pairs, size_t *n,
    struct cables_err *err)
{
	struct key_list keys, epochs;
	cables_status st;

	*pairs = NULL;
	*n = 0;
	if ((st = keystore_lookup(env->ks, addr, "smime", &keys, err)) != CABLES_OK)
		return st;
	/* Epoch keys decrypt what senders encrypted to them (doc/key-exchange.md, "Forward secrecy"). */
	if ((st = keystore_epoch_list(env->ks, addr, true, &epochs, err)) != CABLES_OK) {
		key_list_release(&keys);
		return st;
	}
	key_list_take(&keys, &epochs);
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *r = &keys.items[i];
		X509 *cert;
		EVP_PKEY *key;

		if (r->secret_data == NULL || strcmp(r->format, "smime") != 0)
			continue;
		if (env->keyholder == NULL && env->seal_key == NULL) {
			st = cables_fail(err, CABLES_ERR_UNUSABLE, "private keys unavailable: KeyholderSocket is none");
			break;
		}
		cert = smime_cache_cert(env->certs, r->public_data, r->public_len);
		if (cert == NULL)
			continue;
		key = env->keyholder != NULL ? khkey_new(env->keyholder, cert, addr, r->fingerprint, err) :
		    open_key(env, r, err);
		if (key == NULL) {
			X509_free(cert);
			st = CABLES_ERR_CRYPTO;
			break;
		}
		*pairs = xreallocarray(*pairs, *n + 1, sizeof(**pairs));
		(*pairs)[*n].cert = cert;
		(*pairs)[*n].key = key;
		strlcpy_c((*pairs)[*n].fingerprint, r->fingerprint, sizeof((*pairs)[*n].fingerprint));
		(*n)++;
	}
	key_list_release(&keys);
	if (st != CABLES_OK) {
		key_pairs_free(*pairs, *n);
		*pairs = NULL;
		*n = 0;
	}
	return st;
}

void
key_pairs_free(struct key_pair *pairs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		X509_free(pairs[i].cert);
		EVP_PKEY_free(pairs[i].key);
	}
	free(pairs);
}

bool
keys_known(void *arg, X509 *cert)
{
	struct keys_known_arg *a = arg;
	char *from = a->from_field != NULL ? mime_first_address(a->from_field) : NULL, fpr[65];
	char *norm = from != NULL && addr_valid(from) ? addr_normalize(from, &a->env->cfg->addr) : NULL;
	struct key_list keys;
	bool known = false;

	/*
	 * Held for the From address only: a certificate stored for one address
	 * (say found by DNSSEC for mallory@evil.example) vouches for nothing
	 * else it names, or its owner could sign as anyone it lists.
	 */
	smime_cert_fingerprint(cert, fpr);
	if (norm != NULL && keystore_lookup(a->env->ks, norm, "smime", &keys, NULL) == CABLES_OK) {
		for (size_t k = 0; k < keys.count && !known; k++)
			known = strcmp(keys.items[k].fingerprint, fpr) == 0;
		key_list_release(&keys);
	}
	if (known)
		strlcpy_c(a->held_for, norm, sizeof(a->held_for));
	free(from);
	free(norm);
	return known;
}

/*
 * Does cert name addr (normalised without folding sub-addresses) among its
 * e-mail addresses?  Our RecipientDelimiter says nothing about another
 * domain's mailboxes: bob-x@example.net may be someone else's than bob's.
 */
static bool
cert_names(const struct addr_opts *exact, X509 *cert, const char *addr)
{
	char **emails;
	size_t n = smime_cert_emails(cert, &emails);
	bool names = false;

	for (size_t i = 0; i < n && !names; i++) {
		char *norm = addr_valid(emails[i]) ? addr_normalize(emails[i], exact) : NULL;

		names = norm != NULL && strcmp(norm, addr) == 0;
		free(norm);
	}
	smime_free_emails(emails, n);
	return names;
}

/* One harvest at a time in this process: a pin's read, decision and write, with the key's store. */
static pthread_mutex_t harvest_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * Is r->address pinned to a key from a source more trusted than mail (DNSSEC,
 * a signed key-server answer, WKD)?  Then a harvested certificate never
 * replaces it, whatever On-KeyChange says: anyone holding a certificate that
 * chains to TrustAnchors could otherwise displace a key the recipient's own
 * domain published, just by sending one signed message.
 */
static bool
pinned_higher(const struct milter_env *env, const struct key_record *r, char *why, size_t why_len)
{
	struct cables_err err;
	struct key_pin p;
	bool higher;

	if (keystore_pin_get(env->ks, r->address, r->format, &p, &err) != CABLES_OK)
		return false;	/* no pin (or unreadable: pin_check() reports it) */
	higher = strcmp(p.fingerprint, r->fingerprint) != 0 &&
	    pin_trust_rank(p.source) > pin_trust_rank(r->source);
	if (higher)
		snprintf(why, why_len, "key change: certificate %.16s offered, but %s is pinned to %.16s (%s), "
		    "which a harvested certificate never replaces", r->fingerprint, r->address, p.fingerprint,
		    p.source != NULL ? p.source : "?");
	key_pin_release(&p);
	return higher;
}

/* Harvest r (the certificate, for r->address) under harvest_lock: see keys_harvest(). */
static enum harvest_outcome
harvest_locked(const struct milter_env *env, const struct key_record *r, char *why, size_t why_len)
{
	struct cables_err err;
	struct key_list keys;
	struct pin_result res;
	struct key_pin p;
	size_t deleted;
	bool was_harvested = false;

	if (keystore_lookup(env->ks, r->address, "smime", &keys, &err) != CABLES_OK) {
		snprintf(why, why_len, "the key store cannot be read: %s", err.msg);
		return HARVEST_FAILED;
	}
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *k = &keys.items[i];

		if (strcmp(k->fingerprint, r->fingerprint) == 0) {
			bool pin_now = false;

			/* Harvested but never pinned (stored by an older version): it is not used until pinned. */
			if (strcmp(k->source, "harvested") == 0) {
				cables_status pst = keystore_pin_get(env->ks, r->address, r->format, &p, NULL);

				if (pst == CABLES_OK)
					key_pin_release(&p);
				else if (pst == CABLES_ERR_NOTFOUND)
					pin_now = pin_check(env->ks, &env->cfg->policy, r, env->now, &res, NULL) ==
					    CABLES_OK && res.verdict == PIN_NEW;
			}
			snprintf(why, why_len, "certificate %.16s is held for %s already (%s)%s", r->fingerprint,
			    r->address, k->source, pin_now ? ", pinned now" : "");
			key_list_release(&keys);
			return HARVEST_UNCHANGED;
		}
	}
	for (size_t i = 0; i < keys.count; i++) {
		const struct key_record *k = &keys.items[i];

		/* A key the administrator put here (imported) is trusted over anything learnt from mail. */
		if (!key_source_discovered(k->source) && strcmp(k->source, "harvested") != 0) {
			snprintf(why, why_len, "key change: certificate %.16s offered, but %.16s (%s) is held for %s, "
			    "which a harvested certificate never replaces", r->fingerprint, k->fingerprint, k->source,
			    r->address);
			key_list_release(&keys);
			return HARVEST_REFUSED;
		}
		/*
		 * Never back to an older certificate: anyone can replay an old signed
		 * message (a list archive has plenty), and the certificate it carries
		 * may be one its owner replaced, or lost the key of.
		 */
		if (strcmp(k->source, "harvested") == 0 && k->not_before > r->not_before) {
			snprintf(why, why_len, "key change: certificate %.16s offered, but %.16s held for %s is newer "
			    "(issued later): an older certificate never replaces it", r->fingerprint, k->fingerprint,
			    r->address);
			key_list_release(&keys);
			return HARVEST_REFUSED;
		}
	}
	if (pinned_higher(env, r, why, why_len)) {
		key_list_release(&keys);
		return HARVEST_REFUSED;
	}
	if (pin_check(env->ks, &env->cfg->policy, r, env->now, &res, &err) != CABLES_OK) {
		snprintf(why, why_len, "the pin of %s cannot be read: %s", r->address, err.msg);
		key_list_release(&keys);
		return HARVEST_FAILED;
	}
	/* Is the key the pin pointed to stored as harvested (not, say, found by DNSSEC since)? */
	for (size_t i = 0; i < keys.count; i++)
		if (strcmp(keys.items[i].fingerprint, res.was) == 0 && strcmp(keys.items[i].source, "harvested") == 0)
			was_harvested = true;
	key_list_release(&keys);
	if (res.verdict == PIN_HELD) {
		snprintf(why, why_len, "key change: certificate %.16s offered, %.16s (%s) pinned for %s: On-KeyChange %s "
		    "(cables-keyctl pins clear %s accepts the new key)", r->fingerprint, res.was, res.was_source,
		    r->address, fail_action_name(res.action), r->address);
		return HARVEST_REFUSED;
	}
	if (keystore_put(env->ks, r, env->now, &err) != CABLES_OK) {
		snprintf(why, why_len, "certificate %.16s for %s cannot be stored: %s", r->fingerprint, r->address,
		    err.msg);
		return HARVEST_FAILED;
	}
	if (res.verdict == PIN_CHANGED) {
		/* The pin moved: the harvested key it pointed to must not be chosen any more. */
		if (strcmp(res.was_source, "harvested") == 0 && was_harvested)
			(void)keystore_delete(env->ks, r->address, res.was, &deleted, NULL);
		snprintf(why, why_len, "certificate %.16s for %s, pinned: key change from %.16s (%s) accepted "
		    "(On-KeyChange accept)", r->fingerprint, r->address, res.was, res.was_source);
	} else {
		snprintf(why, why_len, "certificate %.16s for %s, %s", r->fingerprint, r->address,
		    res.verdict == PIN_NEW ? "pinned (first key seen)" : "the pinned key");
	}
	return HARVEST_STORED;
}

static enum harvest_outcome harvest_for(const struct milter_env *env, X509 *cert, const char *from,
    struct key_record *rp, char *why, size_t why_len);

enum harvest_outcome
keys_harvest(const struct milter_env *env, X509 *cert, const char *from_addr, char *why, size_t why_len)
{
	struct key_record r;
	struct addr_opts exact = env->cfg->addr;
	enum harvest_outcome o;
	char *from, *from_exact;

	memset(&r, 0, sizeof(r));
	strlcpy_c(r.format, "smime", sizeof(r.format));
	smime_cert_fingerprint(cert, r.fingerprint);
	exact.delimiters[0] = '\0';
	from = from_addr != NULL && addr_valid(from_addr) ? addr_normalize(from_addr, &env->cfg->addr) : NULL;
	from_exact = from != NULL ? addr_normalize(from_addr, &exact) : NULL;
	if (from == NULL || from_exact == NULL) {
		snprintf(why, why_len, "address mismatch: the message has no From address to match certificate %.16s",
		    r.fingerprint);
		o = HARVEST_REFUSED;
		goto out;
	}
	if (strcmp(from, from_exact) != 0) {
		/* Stored for from, it would be the key of a mailbox the certificate does not name. */
		snprintf(why, why_len, "address mismatch: the From address %s is a sub-address (RecipientDelimiter); "
		    "certificate %.16s is not harvested for %s", from_exact, r.fingerprint, from);
		o = HARVEST_REFUSED;
		goto out;
	}
	if (!cert_names(&exact, cert, from)) {
		snprintf(why, why_len, "address mismatch: certificate %.16s does not name the From address %s",
		    r.fingerprint, from);
		o = HARVEST_REFUSED;
		goto out;
	}
	o = harvest_for(env, cert, from, &r, why, why_len);
out:
	free(from);
	free(from_exact);
	return o;
}

/* Harvest cert for from (normalised, named by cert): see keys_harvest(). */
static enum harvest_outcome
harvest_for(const struct milter_env *env, X509 *cert, const char *from, struct key_record *rp, char *why,
    size_t why_len)
{
	struct cables_err err;
	struct key_record r = *rp;
	enum harvest_outcome o;

	/* Local users' keys are managed here, never learnt from mail. */
	if (domain_list_match(&env->cfg->local_domains, addr_domain(from))) {
		snprintf(why, why_len, "%s is a local address: its keys are managed here", from);
		return HARVEST_SKIPPED;
	}
	if (smime_cert_check(cert, from, &env->cfg->addr, env->now, &err) != CABLES_OK) {
		snprintf(why, why_len, "certificate %.16s cannot be used for %s: %s", r.fingerprint, from, err.msg);
		return HARVEST_SKIPPED;
	}
	if ((r.public_data = smime_cert_to_der(cert, &r.public_len)) == NULL) {
		snprintf(why, why_len, "certificate %.16s cannot be encoded", r.fingerprint);
		return HARVEST_FAILED;
	}
	smime_cert_validity(cert, &r.not_before, &r.not_after);
	r.address = (char *)from;
	r.source = "harvested";
	pthread_mutex_lock(&harvest_lock);
	o = harvest_locked(env, &r, why, why_len);
	pthread_mutex_unlock(&harvest_lock);
	free(r.public_data);
	return o;
}

const char *
harvest_outcome_name(enum harvest_outcome o)
{
	static const char *const names[] = { "harvested", "unchanged", "refused", "skipped", "failed" };

	return (size_t)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}
