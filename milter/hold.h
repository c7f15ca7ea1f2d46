/*
 * hold - On-KeyNotFound hold: a message whose require recipient has no
 * usable key is accepted and held until the key is found (doc/hold.md).
 *
 * hold_message() stores the message as it arrived, its envelope and the
 * recipients that wait (keystore.h, the held table), then makes the MTA's
 * copy harmless before it is quarantined: every recipient is removed and
 * HoldAddress (local) added, so that a release from the MTA's hold queue
 * that skips the milter (postsuper -H) can never send the plaintext to a
 * remote recipient.  The stored message is sealed (heldseal.h): cables-keyd
 * cannot read it.  When keyd has found the keys, the milter's release
 * thread (release.h) resubmits it with "X-Cables-Release: ID TOKEN" first;
 * a resubmitted
 * copy that still finds a recipient keyless is held again under its own
 * record (no second notice).  The token is in the key store only, so a
 * local user cannot make a message look resubmitted; and nothing but the
 * notices depends on it: policy applies to a resubmitted copy in full.
 *
 * Any failure (the store, the MTA refusing a change) temp-fails the
 * message and removes the record: the client keeps it, nothing is lost.
 */
#ifndef CABLES_HOLD_H
#define CABLES_HOLD_H

#include "keys.h"
#include "khkey.h"
#include "message.h"
#include "mta.h"
#include "outcome.h"

#define HOLD_RELEASE_FIELD "X-Cables-Release"

void hold_message(struct message *m, const struct milter_env *env, const struct mta *mta, struct outcome *out);

/*
 * Is m the resubmitted copy of a held message (its X-Cables-Release field
 * names a record, with the token only the milter makes)?  Sets
 * m->release_valid and m->release_id, and, when the original submission
 * was authenticated, m->auth_login to its login (the copy comes through
 * pickup without one), so that it is signed as the original would have
 * been.  Once per message; before the signature is planned.
 */
void hold_release_check(struct message *m, const struct milter_env *env);

/*
 * Where the milter gets a held message's key (heldseal.h): from
 * cables-keyholder (KH_OP_HELD_KEY), or, in unit tests without one, derived
 * from the in-process store key.
 */
struct hold_keysrc {
	const struct kh_transport *keyholder;
	const uint8_t *seal_key;
};

/* A held_key_fn; arg is a struct hold_keysrc. */
cables_status hold_message_key(void *arg, const char *id, const uint8_t *salt, uint8_t *key,
    struct cables_err *err);

#endif
