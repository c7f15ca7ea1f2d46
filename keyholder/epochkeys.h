/*
 * epochkeys - cables-keyholder's upkeep of local users' epoch keys
 * (doc/key-exchange.md, "Forward secrecy: epoch keys"): makes a new S/MIME
 * epoch key when one is due (lib/epoch.h), issued by the user's long-term
 * certificate, sealed with the store key and stored with source
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

#endif
