/*
 * keystore - the key store: public keys (X.509 certificates, OpenPGP
 * keys) per normalised address, sealed private keys of local users, pins.
 *
 * Two backends with the same schema and behaviour (keystore_backend.h):
 * SQLite, the default (KeyStore is a path: one file, WAL journal, schema
 * version in PRAGMA user_version), and PostgreSQL (KeyStore is a
 * postgresql:// URL, libpq: one store shared by several MTAs, the version
 * in table cables_schema).  Either is migrated forward on open.  Every write is one transaction, so a crash leaves either
 * the old or the new row, never half a key.  A key is identified by
 * (address, format, fingerprint); putting it again refreshes last_seen,
 * replaces the public data and validity (an OpenPGP key with the same
 * fingerprint gains revocations, subkeys and new expiry dates: callers
 * merge before they put) and fills in a private key that was missing.
 *
 * A keystore handle may be shared by threads: calls are serialised by an
 * internal mutex.  Records returned in a key_list belong to the caller
 * (key_list_release()).  Addresses passed in must be normalised already
 * (addr_normalize); the store does no folding of its own.
 */
#ifndef CABLES_KEYSTORE_H
#define CABLES_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "status.h"

#define KEYSTORE_SCHEMA_VERSION 5

/* not_after of a key that does not expire (9999-12-31T23:59:59Z). */
#define KEYSTORE_NEVER_EXPIRES 253402300799LL

struct keystore;

struct key_record {
	long long id;
	char *address;		/* normalised */
	char format[8];		/* "smime" or "pgp" */
	char fingerprint[65];	/* lowercase hex SHA-256 of the DER certificate */
	uint8_t *public_data;	/* DER certificate */
	size_t public_len;
	uint8_t *secret_data;	/* sealed private key (seal.h), or NULL */
	size_t secret_len;
	long long not_before;	/* Unix time */
	long long not_after;
	char *source;		/* "generated", "imported", ... */
	long long first_seen;
	long long last_seen;
};

struct key_list {
	struct key_record *items;
	size_t count;
};

void key_record_release(struct key_record *r);

/*
 * Was a key with this source discovered (DNS "dns-...", a peer "peer",
 * WKD "wkd") rather than held locally?  Discovered keys are used only
 * while cables-keyd confirms them.
 */
bool key_source_discovered(const char *source);
void key_list_release(struct key_list *l);
/* Move every record of from to the end of to; from is left empty. */
void key_list_take(struct key_list *to, struct key_list *from);

/*
 * Open (creating when create is true) the store named by spec: a
 * postgresql:// or postgres:// URL (the database must exist; create makes
 * the tables), else the path of a SQLite file.  A PostgreSQL store
 * reconnects by itself: an operation that finds the connection gone
 * reconnects once and fails (CABLES_ERR_DB) if the server is still away.
 */
cables_status keystore_open(struct keystore **ks, const char *spec, bool create,
    struct cables_err *err);
void keystore_close(struct keystore *ks);

/* Is spec a PostgreSQL URL rather than a path? */
bool keystore_spec_is_url(const char *spec);
/* spec for logs and messages: a URL's password replaced by "***" (truncated to fit out). */
void keystore_spec_redact(const char *spec, char *out, size_t outlen);
/* The backend: "sqlite" or "postgresql". */
const char *keystore_type(const struct keystore *ks);
/* The store's name for messages: the path, or the URL without its password. */
const char *keystore_name(const struct keystore *ks);

/*
 * Copy r in as it is (first_seen and last_seen kept; id new) unless the
 * store holds (address, format, fingerprint) already: then nothing changes
 * and *added is false.  For cables-keyctl migrate.
 */
cables_status keystore_restore(struct keystore *ks, const struct key_record *r, bool *added,
    struct cables_err *err);

/*
 * Changes made by other processes (PostgreSQL: LISTEN/NOTIFY; a key
 * deleted or a pin changed by any of the MTAs sharing the store).  The fd
 * becomes readable when one may be pending; -1 when the backend does not
 * tell (SQLite, or no connection right now: poll with a timeout and call
 * keystore_changes_take() anyway).  keystore_changes_take() calls fn once
 * per changed address (NULL: every address may have changed, as after a
 * reconnect) and never blocks.
 */
typedef void keystore_change_fn(void *arg, const char *address);
int keystore_changes_fd(struct keystore *ks);
cables_status keystore_changes_take(struct keystore *ks, keystore_change_fn *fn, void *arg,
    struct cables_err *err);

/* Insert, or refresh (last_seen, source, missing secret) an existing key. */
cables_status keystore_put(struct keystore *ks, const struct key_record *r, time_t now,
    struct cables_err *err);

/*
 * Source of the epoch keys cables-keyholder makes for local users
 * (doc/key-exchange.md, "Forward secrecy").  They are no long-term keys:
 * keystore_lookup() and keystore_list() leave them out, and only code that
 * knows them asks keystore_epoch_list().
 */
#define KEYSTORE_EPOCH_SOURCE "epoch"
/* An epoch key of a remote address, from its domain's key exchange answer (public only). */
#define KEYSTORE_PEER_EPOCH_SOURCE "peer-epoch"

/* Keys of one address but epoch keys; format NULL means every format.  Newest first. */
cables_status keystore_lookup(struct keystore *ks, const char *address, const char *format,
    struct key_list *out, struct cables_err *err);

/* Every key but epoch keys, ordered by address; with_data false leaves the blobs out. */
cables_status keystore_list(struct keystore *ks, bool with_data, struct key_list *out,
    struct cables_err *err);

/*
 * The epoch keys, local and remote (either source above), of address (NULL:
 * of every address), by address, newest first.
 */
cables_status keystore_epoch_list(struct keystore *ks, const char *address, bool with_data,
    struct key_list *out, struct cables_err *err);

/*
 * Copy the write-ahead log into the file and truncate it, so that pages of
 * deleted rows do not survive in the -wal file; it fails when a
 * reader holds it (CABLES_ERR_DB; the next checkpoint will do).
 */
cables_status keystore_wal_truncate(struct keystore *ks, struct cables_err *err);

/*
 * Delete the keys of address whose fingerprint starts with fpr_prefix
 * (NULL: all of them).  *deleted tells how many; none is CABLES_ERR_NOTFOUND.
 */
cables_status keystore_delete(struct keystore *ks, const char *address, const char *fpr_prefix,
    size_t *deleted, struct cables_err *err);

/*
 * Delete the epoch key (source epoch or peer-epoch) in row id, that row
 * alone: a fingerprint (which rows a compromised milter may have written
 * could share, or be a prefix of) never decides which rows go.  None is
 * CABLES_ERR_NOTFOUND.
 */
cables_status keystore_delete_epoch(struct keystore *ks, long long id, struct cables_err *err);

/*
 * Pins (schema 2): per address and format, the first key discovered for it
 * (DNS, a key server), so that a later, different key is noticed
 * (doc/key-exchange.md, On-KeyChange).  offered is a different key held
 * back, and changes counts the times the pin moved.
 */
struct key_pin {
	char *address;
	char format[8];
	char fingerprint[65];
	char *source;
	long long first_seen;
	long long last_seen;
	char offered[65];	/* "" when none */
	char *offered_source;	/* NULL when none */
	long long offered_at;
	long long changes;
};

void key_pin_release(struct key_pin *p);
/* The pin of address/format; CABLES_ERR_NOTFOUND when there is none. */
cables_status keystore_pin_get(struct keystore *ks, const char *address, const char *format, struct key_pin *out,
    struct cables_err *err);
/* Insert or replace the pin of p->address/p->format. */
cables_status keystore_pin_set(struct keystore *ks, const struct key_pin *p, struct cables_err *err);
/* Every pin, by address. */
cables_status keystore_pin_list(struct keystore *ks, struct key_pin **out, size_t *n, struct cables_err *err);
/* Forget the pins of address; *deleted says how many (none is CABLES_ERR_NOTFOUND). */
cables_status keystore_pin_delete(struct keystore *ks, const char *address, size_t *deleted, struct cables_err *err);

/*
 * A number that changes whenever another connection (another process, or
 * another keystore handle) commits a change to the store; changes made
 * through ks itself leave it as it is.  A cache of what the store said may
 * be kept while it stays the same.  PostgreSQL has no cheap equivalent: there
 * it changes on every call, so such a cache never hits.
 */
cables_status keystore_data_version(struct keystore *ks, long long *version, struct cables_err *err);

/*
 * Held messages (schema 3; doc/hold.md): a message On-KeyNotFound hold took
 * in, as it arrived, with its envelope and the recipients still waiting
 * for a key.  The milter adds a row before it answers the MTA; cables-keyd
 * (or cables-keyctl held) resubmits the message when the keys are there
 * and marks it released, or returns it to its sender and deletes it.  A
 * released row stays a while (keystore_held_prune) so that the
 * resubmitted copy's "X-Cables-Release: ID TOKEN" field still names it.
 */
#define KEYSTORE_HELD_ID_LEN 16		/* hex digits */
#define KEYSTORE_HELD_TOKEN_LEN 32

struct held_record {
	char id[KEYSTORE_HELD_ID_LEN + 1];
	char token[KEYSTORE_HELD_TOKEN_LEN + 1];
	char queue_id[64];	/* the MTA's queue ID of the held copy */
	char *sender;		/* "" for the null sender */
	char *recipients;	/* every original recipient, one per line */
	char *waiting;		/* "ADDRESS<TAB>why" lines: recipients without a usable key */
	uint8_t *message;	/* as received (header fields, empty line, body); NULL when not asked for */
	size_t message_len;
	size_t stored_len;	/* what the stored message takes, as the store counts it (asked for or not) */
	int notify;		/* tell the sender (HoldNotice) */
	char state[12];		/* "held" or "released" */
	char action[8];		/* "" (cables-keyd looks for keys), or what the milter is asked: "release",
				 * "expire" (return: HoldTime passed), "return" (the administrator's) */
	int sealed;		/* message is sealed for the milter (heldseal.h); 0: a record of schema 4, in the clear */
	char *auth_login;	/* the SASL login the message came with, "" (or NULL) for none; sealed with it */
	long long held_at;
	long long next_try;	/* when to look for the keys again */
	int tries;
	int notified;		/* HELD_NOTIFIED_*: what the sender was told */
	char *last_error;	/* NULL when none */
};

/* Bits of held_record.notified: one notice of each kind per record. */
#define HELD_NOTIFIED_HELD 1
#define HELD_NOTIFIED_RELEASED 2

void held_record_release(struct held_record *h);
void held_list_release(struct held_record *list, size_t n);
cables_status keystore_held_add(struct keystore *ks, const struct held_record *h, struct cables_err *err);
/* The row of id (with the message when with_message); CABLES_ERR_NOTFOUND when there is none. */
cables_status keystore_held_get(struct keystore *ks, const char *id, bool with_message, struct held_record *out,
    struct cables_err *err);
/*
 * The same with the message only when the store says it takes at most max
 * bytes (0: any), in one statement: a row cables-keyd made huge is never
 * read into memory (out->message NULL, out->stored_len what it takes).
 */
cables_status keystore_held_get_bounded(struct keystore *ks, const char *id, size_t max, struct held_record *out,
    struct cables_err *err);
/*
 * Which held rows a list or a claim takes: every row in state "held"
 * (cables-keyctl; a claim then takes one without an action, not checking
 * next_try); those due at now without an action (cables-keyd looks for
 * their keys); those due at now with one (the milter releases or returns
 * them); for a claim only, HELD_ANY: one with or without an action, due or
 * not (cables-keyctl held return takes back a release the milter could not
 * make).
 */
enum held_which { HELD_ALL = 0, HELD_DUE = 1, HELD_DUE_ACTIONS = 2, HELD_ANY = 3 };

/* Rows in state "held" (which), without their messages. */
cables_status keystore_held_list(struct keystore *ks, int which, time_t now, struct held_record **out, size_t *n,
    struct cables_err *err);
/*
 * Take the held row id for one look (held_try, held_return) until until,
 * atomically, so that of several cables-keyd (one per MTA on a shared
 * store, or two on one host) and cables-keyctl held only one releases or
 * returns it: only while it is held, no one else's claim runs (claimed
 * until now or earlier) and, when due, its next_try has come.  *claimed is
 * false when it was not taken (another process has it, or it is not held
 * or not due).  keystore_held_update() and keystore_held_delete() end the
 * claim; a claimant that dies leaves it to expire at until.
 */
cables_status keystore_held_claim(struct keystore *ks, const char *id, time_t now, int which, time_t until,
    bool *claimed, struct cables_err *err);
/*
 * Write back the fields that change: queue_id, waiting, state, action, next_try, tries, notified, last_error;
 * and end a claim.
 */
cables_status keystore_held_update(struct keystore *ks, const struct held_record *h, struct cables_err *err);
/*
 * The same, only while the row is still under the claim that runs until
 * claimed_until (compare and set: keyd's release and the milter's re-hold
 * of the resubmitted copy race, and the re-hold, a plain update, ends the
 * claim); CABLES_ERR_NOTFOUND when there is no such row or the claim ended.
 */
cables_status keystore_held_update_claimed(struct keystore *ks, const struct held_record *h, time_t claimed_until,
    struct cables_err *err);
/* Delete the row of id; CABLES_ERR_NOTFOUND when there is none. */
cables_status keystore_held_delete(struct keystore *ks, const char *id, struct cables_err *err);
/* What the rows in state "held" take: all of them, and sender's (for HoldMax*). */
struct held_usage {
	long long messages, bytes;
	long long sender_messages, sender_bytes;
};
cables_status keystore_held_usage(struct keystore *ks, const char *sender, struct held_usage *out,
    struct cables_err *err);
/* Delete released rows whose next_try (the time of release) is before before. */
cables_status keystore_held_prune(struct keystore *ks, time_t before, struct cables_err *err);

/*
 * Downgrade protection (schema 4; doc/key-exchange.md, "No downgrade"): a
 * domain that offered a usable key through DNSSEC-validated DNS or the
 * key exchange is remembered as encrypting, with the source that last
 * proved it; told is when the administrator was last told that its
 * recipients went without keys (0: never).
 */
struct encrypting_domain {
	char domain[256];
	char source[16];
	long long first_seen;
	long long last_seen;
	long long told;
};

/*
 * Remember domain as encrypting (seen at now through source), or refresh
 * it: last_seen moves (at most once a minute, so that lookups are not
 * writes).
 */
cables_status keystore_encrypting_note(struct keystore *ks, const char *domain, const char *source, time_t now,
    struct cables_err *err);
/* The memory of domain; CABLES_ERR_NOTFOUND when there is none. */
cables_status keystore_encrypting_get(struct keystore *ks, const char *domain, struct encrypting_domain *out,
    struct cables_err *err);
/* Every remembered domain (domain NULL) or that one, by name; *out is the caller's (free()). */
cables_status keystore_encrypting_list(struct keystore *ks, const char *domain, struct encrypting_domain **out,
    size_t *n, struct cables_err *err);
/* Copy d as it is (cables-keyctl migrate); *added false: the domain was remembered already, and stays so. */
cables_status keystore_encrypting_restore(struct keystore *ks, const struct encrypting_domain *d, bool *added,
    struct cables_err *err);
/* Forget domain; CABLES_ERR_NOTFOUND when it was not remembered. */
cables_status keystore_encrypting_forget(struct keystore *ks, const char *domain, struct cables_err *err);
/*
 * Mark domain's administrator notice as sent at now unless it was sent at
 * told_before or later; *first: this call marked it (tell now).  One
 * writer wins when lookups race.
 */
cables_status keystore_encrypting_tell(struct keystore *ks, const char *domain, time_t now, time_t told_before,
    bool *first, struct cables_err *err);
/* Undo keystore_encrypting_tell at now (the notice could not be sent): told is was again. */
cables_status keystore_encrypting_untell(struct keystore *ks, const char *domain, time_t now, time_t was,
    struct cables_err *err);
/*
 * Record that the change of address's format key from old to new was told
 * at now; *first: it had not been told before (tell now).
 */
cables_status keystore_key_change_tell(struct keystore *ks, const char *address, const char *format, const char *old,
    const char *new, time_t now, bool *first, struct cables_err *err);

/* Undo keystore_key_change_tell (the alert could not be sent): the pair is told of next time. */
cables_status keystore_key_change_untell(struct keystore *ks, const char *address, const char *format,
    const char *old, const char *new, struct cables_err *err);
/* Forget the key change alerts told before before (DowngradeMemory): the table does not grow for ever. */
cables_status keystore_key_change_prune(struct keystore *ks, time_t before, struct cables_err *err);

/* A key change the administrator was told of (key_change_alerts). */
struct key_change_alert {
	char address[321];	/* 320 octets at most (RFC 5321) */
	char format[8];
	char old[65];
	char new[65];
	long long told;
};

/* Every alert told, by address (cables-keyctl migrate copies them with keystore_key_change_tell). */
cables_status keystore_key_change_list(struct keystore *ks, struct key_change_alert **out, size_t *n,
    struct cables_err *err);

#endif
