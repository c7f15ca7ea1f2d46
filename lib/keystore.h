/*
 * keystore - the SQLite key store: public keys (X.509 certificates now,
 * OpenPGP keys later) per normalised address, and sealed private keys of
 * local users.
 *
 * One file, WAL journal, schema version in PRAGMA user_version and migrated
 * forward on open.  Every write is one transaction, so a crash leaves either
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

#define KEYSTORE_SCHEMA_VERSION 3

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

/* Open (creating when create is true) the store at path. */
cables_status keystore_open(struct keystore **ks, const char *path, bool create,
    struct cables_err *err);
void keystore_close(struct keystore *ks);

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
 * Downgrade protection (schema 3; doc/key-exchange.md, "No downgrade"): a
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
/* Forget domain; CABLES_ERR_NOTFOUND when it was not remembered. */
cables_status keystore_encrypting_forget(struct keystore *ks, const char *domain, struct cables_err *err);
/*
 * Mark domain's administrator notice as sent at now unless it was sent at
 * told_before or later; *first: this call marked it (tell now).  One
 * writer wins when lookups race.
 */
cables_status keystore_encrypting_tell(struct keystore *ks, const char *domain, time_t now, time_t told_before,
    bool *first, struct cables_err *err);
/*
 * Record that the change of address's format key from old to new was told
 * at now; *first: it had not been told before (tell now).
 */
cables_status keystore_key_change_tell(struct keystore *ks, const char *address, const char *format, const char *old,
    const char *new, time_t now, bool *first, struct cables_err *err);

#endif
