/*
 * epochkeys - cables-keyholder's upkeep of local users' epoch keys
 * (doc/key-exchange.md, "Forward secrecy: epoch keys"): makes a new S/MIME
 * epoch key when one is due (lib/epoch.h), issued by the user's long-term
 * certificate, and an OpenPGP epoch subkey bound by the user's primary key
 * (pgp_epoch.h), sealed with the store key and stored with source
 * KEYSTORE_EPOCH_SOURCE; deletes those past expiry and grace and then
 * truncates the store's write-ahead log.
 *
 * Runs in the keyholder only: it unseals long-term keys and makes private
 * keys.  It never logs: each key made, deleted or failed is reported to
 * the caller's callback (which logs, and forgets a deleted key's unsealed
 * copy).  The caller passes now, so tests move time without waiting.
 */
#ifndef CABLES_EPOCHKEYS_H
#define CABLES_EPOCHKEYS_H

#include <stdint.h>

#include "addr.h"
#include "epoch.h"
#include "keystore.h"
#include "seal.h"
#include "status.h"

enum epochkeys_event {
	EPOCHKEYS_MADE,		/* when: its expiry */
	EPOCHKEYS_DELETED,	/* when: its expiry */
	EPOCHKEYS_FAILED,	/* why says what; the others go on */
	EPOCHKEYS_IGNORED,	/* an epoch row no keyholder made (written by someone else): why says what is wrong */
};

struct epochkeys_env {
	struct keystore *ks;
	const uint8_t *store_key;	/* SEAL_KEY_LEN bytes */
	const struct domain_list *local_domains;
	struct epoch_times times;
	void (*report)(void *arg, enum epochkeys_event ev, const char *address, const char *fingerprint,
	    long long when, const char *why);
	void *arg;
};

struct epochkeys_counts {
	size_t made, deleted, failed;
};

/*
 * One round at now (with times.lifetime 0, deletions only).  Fails only
 * when the store cannot be read; a user
 * whose key cannot be made is reported (EPOCHKEYS_FAILED) and counted.
 */
cables_status epochkeys_maintain(const struct epochkeys_env *e, long long now, struct epochkeys_counts *n,
    struct cables_err *err);

/*
 * Is r a genuine epoch key of parent (an address's current long-term
 * certificate): its seal opens with the store key under its certificate's
 * fingerprint, its private key matches, and parent issued it?  The store
 * may be written by the milter, so serving or counting an epoch key needs
 * this.  On false, why says what and *planted is true when no keyholder
 * made the row (false: merely issued by another certificate).
 */
bool epochkeys_genuine(const struct epochkeys_env *e, const struct key_record *parent, const struct key_record *r,
    bool *planted, char *why, size_t whylen);

/*
 * The current epoch key of address at now, for keyd to serve
 * (KH_OP_EPOCH_CURRENT): of the genuine ones issued by the address's
 * current long-term certificate and valid at now, the one that expires
 * last; digest is the SHA-256 of its certificate's DER and *found says
 * whether there is one.  Planted rows met are reported (EPOCHKEYS_IGNORED).
 * Fails only when the store cannot be read.
 */
cables_status epochkeys_current(const struct epochkeys_env *e, const char *address, long long now, uint8_t digest[32],
    bool *found, struct cables_err *err);

/*
 * The same for format "smime" or "pgp" (epochkeys_current() is "smime"):
 * for OpenPGP, digest is the SHA-256 of the epoch key's public form
 * (pgp_epoch.h), bound by the primary key of the address's current
 * long-term OpenPGP key.
 */
cables_status epochkeys_current_format(const struct epochkeys_env *e, const char *address, const char *format,
    long long now, uint8_t digest[32], bool *found, struct cables_err *err);

/*
 * Does S/MIME row r hold its own key: its fingerprint is its certificate's,
 * its seal opens with e->store_key under that fingerprint and the private
 * key inside matches the certificate?  On false, why says which failed.
 */
bool epochkeys_holds_key(const struct epochkeys_env *e, const struct key_record *r, char *why, size_t whylen);

#endif
