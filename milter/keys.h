/*
 * keys - the milter's view of the key store: usable certificates of an
 * address (for encryption or signing), the private keys of local users,
 * whether a certificate is one the store holds, and harvesting
 * certificates from valid signatures.
 *
 * struct milter_env is everything a message decision needs besides the
 * message: configuration, key store, caches, the keyholder that performs
 * local users' private-key operations (doc/privsep.md), trust anchors, and
 * the time.  The milter never reads the store key: only tests set seal_key,
 * to unseal S/MIME keys in process when there is no keyholder (OpenPGP
 * secrets are never unsealed here, not even then).  Returned certificates
 * and keys are new references owned by the caller.  Key store failures are returned; "no key" is not a failure.
 */
#ifndef CABLES_KEYS_H
#define CABLES_KEYS_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config.h"
#include "keystore.h"
#include "status.h"

struct smime_cache;
struct keyd_found;
struct kh_transport;

struct milter_env {
	const struct config *cfg;
	struct keystore *ks;
	struct smime_cache *certs;	/* may be NULL: decode every time */
	const uint8_t *seal_key;	/* in-process unsealing (tests), or NULL */
	X509_STORE *anchors;		/* TrustAnchors, or NULL */
	time_t now;
	const uint8_t *reinject_key;	/* split delivery is possible (ReinjectTo, key, MTA), or NULL */
	const uint8_t *marker_key;	/* the key markers are checked with, or NULL */
	/*
	 * Keys the store holds from DNS, a key server or WKD, and harvested
	 * ones, are used only when cables-keyd has just confirmed them (a
	 * harvested one also only while pinned): their fingerprints, or NULL.
	 */
	const struct keyd_found *confirmed;
	/* Private keys (S/MIME and OpenPGP) stay in cables-keyholder: their operations go here (NULL: none). */
	const struct kh_transport *keyholder;
};

/* KEY_ENCRYPT_LONG_TERM: to encrypt, ForwardSecrecy aside (a copy that must hold long-term keys only). */
enum key_use { KEY_ENCRYPT, KEY_SIGN, KEY_ENCRYPT_LONG_TERM };

/*
 * The newest certificate of addr usable for use, or NULL with *why set (a
 * malloc'd reason) when there is none.  *st is the key store status;
 * *epoch tells a peer's epoch key (ForwardSecrecy) from a long-term one.
 */
X509 *keys_cert(const struct milter_env *env, const char *addr, enum key_use use, bool *epoch, char **why,
    cables_status *st, struct cables_err *err);

/*
 * The OpenPGP counterpart of keys_cert(): the fingerprint of the newest key
 * of addr usable for use, or false with *why set.  For KEY_SIGN the store
 * must hold the secret key and there must be a keyholder to sign with it
 * (the secret never comes into the milter or its GnuPG home).  For
 * KEY_ENCRYPT, ForwardSecrecy first: a peer's OpenPGP epoch subkey that
 * keyd just confirmed, as its fingerprint followed by "!" (gpg encrypts to
 * that subkey alone), *epoch true.  A long-term key to encrypt to is named
 * the same way, by the store row's own newest encryption subkey (gpg's home
 * may list an epoch subkey under the same primary).
 */
bool keys_pgp(const struct milter_env *env, const char *addr, enum key_use use, char fpr[42], bool *epoch, char **why,
    cables_status *st, struct cables_err *err);

/*
 * Append to keys addr's own OpenPGP epoch keys (source epoch: the
 * keyholder made them and holds their secrets; public form pgp_epoch.h),
 * for inbound decryption.  The store's status.
 */
cables_status keys_pgp_epochs(const struct milter_env *env, const char *addr, struct key_list *keys,
    struct cables_err *err);

struct key_pair {
	X509 *cert;
	EVP_PKEY *key;
	char fingerprint[65];
};

/*
 * The certificates of addr whose private key the store holds, newest first.
 * With a keyholder each key is a khkey (its private half stays there);
 * without one, the key is unsealed here with seal_key (tests only).
 */
cables_status keys_private(const struct milter_env *env, const char *addr, struct key_pair **pairs,
    size_t *n, struct cables_err *err);
void key_pairs_free(struct key_pair *pairs, size_t n);

/*
 * Does the store hold this very certificate for the (normalised) first
 * address of from_field (mime_first_address: group members count)?  arg is
 * a struct keys_known_arg; held_for gets that address when it does.  Only
 * for that address: a certificate held for one address vouches for no
 * other it names.
 */
struct keys_known_arg {
	const struct milter_env *env;
	const char *from_field;		/* the From field the signature is judged for; may be NULL */
	char held_for[256];		/* out: the address the store holds the certificate for, or "" */
};
bool keys_known(void *arg, X509 *cert);

enum harvest_outcome {
	HARVEST_STORED,		/* stored and pinned (first key, the pinned key, or a change On-KeyChange accepted) */
	HARVEST_UNCHANGED,	/* the store holds this certificate for the address already */
	HARVEST_REFUSED,	/* address mismatch, or a key change held back (On-KeyChange, an imported key) */
	HARVEST_SKIPPED,	/* not for harvesting: a local address, or not usable for encryption */
	HARVEST_FAILED,		/* the key store failed */
};

/*
 * Harvest cert, the signer's certificate of a valid signature on a message
 * whose From address is from (as written; NULL if none): only when cert
 * names it (normalised, sub-addresses not folded: a From that is a
 * sub-address is refused), and only for it (a remote address), as a key of
 * source "harvested"; never a certificate issued before a harvested one
 * held for the address (a replayed old message).  The
 * key goes through pin_check (pins.h) like a discovered key, and never
 * replaces a key the administrator imported.  why gets what happened, for
 * the log.
 */
enum harvest_outcome keys_harvest(const struct milter_env *env, X509 *cert, const char *from, char *why,
    size_t why_len);
const char *harvest_outcome_name(enum harvest_outcome o);

#endif
