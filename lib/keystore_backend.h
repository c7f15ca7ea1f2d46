/*
 * keystore_backend - what a key store backend provides (lib/keystore.c
 * dispatches, lib/keystore_sqlite.c and lib/keystore_pg.c implement), the
 * way Postfix's dict types do: a backend's handle starts with a struct
 * keystore and its functions cast it back to their own type.
 *
 * The contract of every operation is the one keystore.h states for the
 * public function of the same name; a backend never logs and reports
 * errors as CABLES_ERR_DB with a detail that names the store by
 * ks->name, which holds no password.
 *
 * Adding an operation: a member here, the public function in keystore.h and
 * its one-line wrapper in keystore.c, and the SQL in each backend's file
 * with a line in its ops table (keystore_sqlite_ops, keystore_pg_ops).
 */
#ifndef CABLES_KEYSTORE_BACKEND_H
#define CABLES_KEYSTORE_BACKEND_H

#include "keystore.h"

struct keystore {
	const struct keystore_ops *ops;
	char *name;		/* the path, or the URL without its password */
};

struct keystore_ops {
	const char *type;	/* "sqlite", "postgresql" */
	void (*close)(struct keystore *);
	cables_status (*put)(struct keystore *, const struct key_record *, time_t, struct cables_err *);
	cables_status (*restore)(struct keystore *, const struct key_record *, bool *, struct cables_err *);
	cables_status (*lookup)(struct keystore *, const char *, const char *, struct key_list *,
	    struct cables_err *);
	cables_status (*list)(struct keystore *, bool, struct key_list *, struct cables_err *);
	cables_status (*epoch_list)(struct keystore *, const char *, bool, struct key_list *,
	    struct cables_err *);
	cables_status (*wal_truncate)(struct keystore *, struct cables_err *);
	cables_status (*delete)(struct keystore *, const char *, const char *, size_t *, struct cables_err *);
	cables_status (*delete_epoch)(struct keystore *, long long, struct cables_err *);
	cables_status (*pin_get)(struct keystore *, const char *, const char *, struct key_pin *,
	    struct cables_err *);
	cables_status (*pin_set)(struct keystore *, const struct key_pin *, struct cables_err *);
	cables_status (*pin_list)(struct keystore *, struct key_pin **, size_t *, struct cables_err *);
	cables_status (*pin_delete)(struct keystore *, const char *, size_t *, struct cables_err *);
	int (*changes_fd)(struct keystore *);
	cables_status (*changes_take)(struct keystore *, keystore_change_fn *, void *, struct cables_err *);
	cables_status (*data_version)(struct keystore *, long long *, struct cables_err *);
	cables_status (*held_add)(struct keystore *, const struct held_record *, struct cables_err *);
	cables_status (*held_get)(struct keystore *, const char *, bool, size_t, struct held_record *,
	    struct cables_err *);
	cables_status (*held_list)(struct keystore *, int, time_t, struct held_record **, size_t *,
	    struct cables_err *);
	cables_status (*held_claim)(struct keystore *, const char *, time_t, int, time_t, bool *,
	    struct cables_err *);
	cables_status (*held_update)(struct keystore *, const struct held_record *, time_t, struct cables_err *);
	cables_status (*held_delete)(struct keystore *, const char *, struct cables_err *);
	cables_status (*held_prune)(struct keystore *, time_t, struct cables_err *);
	cables_status (*held_usage)(struct keystore *, const char *, struct held_usage *, struct cables_err *);
	cables_status (*encrypting_note)(struct keystore *, const char *, const char *, time_t, struct cables_err *);
	cables_status (*encrypting_list)(struct keystore *, const char *, struct encrypting_domain **, size_t *,
	    struct cables_err *);
	cables_status (*encrypting_restore)(struct keystore *, const struct encrypting_domain *, bool *,
	    struct cables_err *);
	cables_status (*encrypting_forget)(struct keystore *, const char *, struct cables_err *);
	cables_status (*encrypting_tell)(struct keystore *, const char *, time_t, time_t, bool *, struct cables_err *);
	cables_status (*key_change_tell)(struct keystore *, const char *, const char *, const char *, const char *,
	    time_t, bool *, struct cables_err *);
	cables_status (*key_change_list)(struct keystore *, struct key_change_alert **, size_t *, struct cables_err *);
	cables_status (*key_change_prune)(struct keystore *, time_t, struct cables_err *);
	cables_status (*encrypting_untell)(struct keystore *, const char *, time_t, time_t, struct cables_err *);
	cables_status (*key_change_untell)(struct keystore *, const char *, const char *, const char *, const char *,
	    struct cables_err *);
};

extern const struct keystore_ops keystore_sqlite_ops, keystore_pg_ops;

cables_status keystore_sqlite_open(struct keystore **ks, const char *path, bool create,
    struct cables_err *err);
cables_status keystore_pg_open(struct keystore **ks, const char *url, bool create,
    struct cables_err *err);
/*
 * url for logs: rebuilt from what libpq parses (user, host, port, dbname,
 * "***" for a password), never libpq's own text, which may quote it.
 */
void keystore_pg_redact(const char *url, char *out, size_t outlen);

/*
 * Shared by the backends: the SQL names of the epoch sources, and the
 * columns of a key, a held message, an encrypting domain and a pin.
 */
#define KEYSTORE_EPOCH_SOURCES "('" KEYSTORE_EPOCH_SOURCE "', '" KEYSTORE_PEER_EPOCH_SOURCE "')"
#define KEYSTORE_COLUMNS "id, address, format, fingerprint, public_data, secret_data, " \
	"not_before, not_after, source, first_seen, last_seen"
#define KEYSTORE_HELD_COLUMNS "id, token, queue_id, sender, recipients, waiting, notify, state, held_at, " \
	"next_try, tries, notified, last_error, action, sealed, auth_login"
#define KEYSTORE_ENCRYPTING_COLUMNS "domain, source, first_seen, last_seen, told"
/*
 * keystore_encrypting_note() writes last_seen only when it moved by this
 * much, so that a domain's every lookup is not a write; the memory lasts
 * months.
 */
#define KEYSTORE_ENCRYPTING_REFRESH_S 60
#define KEYSTORE_PIN_COLUMNS "address, format, fingerprint, source, first_seen, last_seen, offered, " \
	"offered_source, offered_at, changes"

#endif
