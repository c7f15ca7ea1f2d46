/*
 * held - what happens to a message On-KeyNotFound hold took in (doc/hold.md):
 * its keys are looked for again, and it is released (resubmitted through
 * MailCommand, so that it passes the milter again and leaves encrypted),
 * kept waiting, or returned to its sender when HoldTime has passed.  Nothing
 * here logs: the caller gets a held_result.
 *
 * Two sides, so that the process that faces the network never reads a held
 * message (heldseal.h):
 *   - looking: cables-keyd (every due record, with backoff) and
 *     cables-keyctl held (one record, at once) check the waiting
 *     recipients' keys and, when each has one or HoldTime has passed, set
 *     the record's action ("release", "return"); they read the envelope
 *     only, never the message;
 *   - acting: the milter (milter/release.c) takes the records with an
 *     action, opens the sealed message with the keyholder's key for it and
 *     resubmits or returns it.
 *
 * Never plaintext: releasing only resubmits the message to the MTA, whose
 * milter decides again with the keys it finds then; a copy that still
 * finds a recipient keyless is held again.  The record is marked released
 * only after MailCommand accepted the resubmission (a crash between the
 * two may send the message twice, never lose it); a return deletes the
 * record only after the DSN was accepted.
 *
 * Once: held_try() and held_return() claim the record in the store first
 * (keystore_held_claim), so that of several cables-keyd on one store (one
 * per MTA) and cables-keyctl held only one looks at it at a time, and a
 * message is never released or returned twice; the others get HELD_TAKEN.
 * The claim lasts HELD_CLAIM_TIME at most (a claimant that died).
 */
#ifndef CABLES_HELD_H
#define CABLES_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "heldseal.h"
#include "keydproto.h"
#include "keystore.h"
#include "policy.h"
#include "status.h"

/*
 * Is key one the milter would encrypt to with Format want (any under
 * auto), not expired at now?  A lookup's FOUND is not enough: a message
 * released to a recipient whose Format has no key is only held again.
 */
bool held_key_usable(const struct keyd_key *key, enum key_format want, time_t now);
/*
 * The key check of cables-keyd and cables-keyctl held on keyd's reply to a
 * lookup of one address: FOUND with a key held_key_usable() takes; else
 * false with why (keyd's outcome and reason, or the keys' shortcoming).
 */
bool held_reply_has_key(const struct keyd_lookup_reply *reply, enum key_format want, time_t now, char *why,
    size_t why_len);

/* Does addr have a usable key now?  why gets the reason when not. */
typedef bool held_has_key_fn(void *arg, const char *addr, char *why, size_t why_len);

struct held_env {
	struct keystore *ks;
	const char *mail_command;	/* MailCommand */
	const char *reporting_host;	/* for DSNs */
	long long hold_time;		/* HoldTime, seconds */
	held_has_key_fn *has_key;	/* looking side */
	void *arg;
	held_key_fn *open_key;	/* acting side: the key of a sealed message; NULL elsewhere */
	void *open_arg;
	size_t max_len;		/* acting side: a stored message larger than this is not read (0: no limit) */
};

/* How long a look at a record may take before another process may take it over. */
#define HELD_CLAIM_TIME (30 * 60)

enum held_outcome {
	HELD_WAITING,		/* a recipient is still without a key: next try later */
	HELD_RELEASED,		/* resubmitted */
	HELD_RETURNED,		/* HoldTime passed (or the admin said so): returned to the sender, deleted */
	HELD_FAILED,		/* MailCommand failed, or the message did not open: next try later */
	HELD_TAKEN,		/* another process looks at it now (or it is no longer due): left alone */
	HELD_TO_RELEASE,	/* every key is there: the milter is asked to resubmit it */
	HELD_TO_RETURN,		/* HoldTime passed (or the admin said so): the milter is asked to return it */
};

struct held_result {
	enum held_outcome outcome;
	char detail[CABLES_ERR_MAX * 2];	/* for the log: who waits and why, or what failed */
	bool notice_failed;		/* a notice to the sender could not be sent (detail says why) */
};

const char *held_outcome_name(enum held_outcome o);

/* Seconds from a try to the next one after tries tries: 5 s doubling up to 10 min. */
long long held_backoff(int tries);

/*
 * One look at the record id (looking side): HELD_TO_RETURN when its
 * HoldTime has passed, else its held notice sent when due, its keys
 * checked and, when each waiting recipient has one, HELD_TO_RELEASE.  The
 * record is updated (next try, reasons, notified, action).  A record not
 * held (or already handed to the milter) is CABLES_ERR_NOTFOUND; one
 * another process has claimed is HELD_TAKEN.
 */
cables_status held_try(const struct held_env *env, const char *id, time_t now, struct held_result *res,
    struct cables_err *err);
/* held_try() for cables-keyd's loop: a record whose next try has not come (any more) is HELD_TAKEN too. */
cables_status held_try_due(const struct held_env *env, const char *id, time_t now, struct held_result *res,
    struct cables_err *err);

/*
 * Have the milter return the record id to its sender now (cables-keyctl
 * held return; the DSN says the administrator returned it).
 */
cables_status held_return(const struct held_env *env, const char *id, struct held_result *res,
    struct cables_err *err);

/*
 * The acting side (the milter): do what the due record id's action asks:
 * open its message (env->open_key) and resubmit it (HELD_RELEASED) or send
 * it back (HELD_RETURNED).  HELD_FAILED keeps the action for a later try.
 */
cables_status held_act_due(const struct held_env *env, const char *id, time_t now, struct held_result *res,
    struct cables_err *err);

#endif
