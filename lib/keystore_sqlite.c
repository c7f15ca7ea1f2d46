/* keystore_sqlite - the SQLite backend of the key store (keystore_backend.h); see keystore.h. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <sqlite3.h>

#include "keystore_backend.h"
#include "util.h"

struct sqlite_store {
	struct keystore ks;	/* first: the front end's handle */
	sqlite3 *db;
	pthread_mutex_t lock;
	sqlite3_stmt *lookup;	/* prepared once: lookups are per message */
	sqlite3_stmt *data_version;	/* prepared on first use (sqlite_data_version) */
};

/* Migrations from version i to i+1; index 0 creates the first schema. */
static const char *const migrations[] = {
	"CREATE TABLE keys ("
	"  id INTEGER PRIMARY KEY,"
	"  address TEXT NOT NULL,"
	"  format TEXT NOT NULL CHECK (format IN ('smime', 'pgp')),"
	"  fingerprint TEXT NOT NULL,"
	"  public_data BLOB NOT NULL,"
	"  secret_data BLOB,"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  UNIQUE (address, format, fingerprint));"
	"CREATE INDEX keys_by_address ON keys (address, format);",
	"CREATE TABLE pins ("
	"  address TEXT NOT NULL,"
	"  format TEXT NOT NULL CHECK (format IN ('smime', 'pgp')),"
	"  fingerprint TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  offered TEXT,"
	"  offered_source TEXT,"
	"  offered_at INTEGER,"
	"  changes INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (address, format));",
	/*
	 * Schema 3: messages held for keys (On-KeyNotFound hold, doc/hold.md);
	 * claimed_until: a look at a row (keystore_held_claim) runs until then.
	 */
	"CREATE TABLE IF NOT EXISTS held ("
	"  id TEXT PRIMARY KEY,"
	"  token TEXT NOT NULL,"
	"  queue_id TEXT NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  recipients TEXT NOT NULL,"
	"  waiting TEXT NOT NULL,"
	"  message BLOB NOT NULL,"
	"  notify INTEGER NOT NULL,"
	"  state TEXT NOT NULL CHECK (state IN ('held', 'released')),"
	"  held_at INTEGER NOT NULL,"
	"  next_try INTEGER NOT NULL,"
	"  tries INTEGER NOT NULL DEFAULT 0,"
	"  notified INTEGER NOT NULL DEFAULT 0,"
	"  last_error TEXT,"
	"  claimed_until INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS held_by_next_try ON held (state, next_try);",
	/*
	 * Schema 4, downgrade protection (doc/key-exchange.md, "No downgrade"):
	 * domains remembered as encrypting, and the key changes the
	 * administrator was told about.
	 */
	"CREATE TABLE IF NOT EXISTS encrypting_domains ("
	"  domain TEXT PRIMARY KEY,"
	"  source TEXT NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  told INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS key_change_alerts ("
	"  address TEXT NOT NULL,"
	"  format TEXT NOT NULL,"
	"  old TEXT NOT NULL,"
	"  new TEXT NOT NULL,"
	"  told INTEGER NOT NULL,"
	"  PRIMARY KEY (address, format, old, new));",
	/*
	 * Schema 5 (doc/hold.md, "Who reads a held message"): what cables-keyd
	 * asks the milter to do with a held message (release, return), whether
	 * the message is sealed for the milter, and the SASL login it came with.
	 */
	"ALTER TABLE held ADD COLUMN action TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE held ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE held ADD COLUMN auth_login TEXT NOT NULL DEFAULT '';"
	/* Renamed so that a program of schema 4 still running on the store fails loudly, not sends a sealed blob. */
	"ALTER TABLE held RENAME COLUMN message TO content;",
};

static cables_status
db_fail(struct sqlite_store *ks, struct cables_err *err, const char *what)
{
	return cables_fail(err, CABLES_ERR_DB, "key store %s: %s: %s", ks->ks.name, what,
	    sqlite3_errmsg(ks->db));
}

static void sqlite_close(struct keystore *base);

static cables_status
migrate(struct sqlite_store *ks, struct cables_err *err)
{
	sqlite3_stmt *stmt;
	int version;
	char *errmsg = NULL;
	cables_status st = CABLES_OK;

	if (sqlite3_exec(ks->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(ks, err, "locking for schema check");
	if (sqlite3_prepare_v2(ks->db, "PRAGMA user_version", -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "reading schema version");
		goto out;
	}
	version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
	sqlite3_finalize(stmt);
	if (version < 0 || version > KEYSTORE_SCHEMA_VERSION) {
		st = cables_fail(err, CABLES_ERR_DB,
		    "key store %s: schema version %d is newer than this program (%d)",
		    ks->ks.name, version, KEYSTORE_SCHEMA_VERSION);
		goto out;
	}
	for (; version < KEYSTORE_SCHEMA_VERSION; version++) {
		char pragma[64];

		if (sqlite3_exec(ks->db, migrations[version], NULL, NULL, &errmsg) != SQLITE_OK) {
			st = cables_fail(err, CABLES_ERR_DB, "key store %s: migrating to version %d: %s",
			    ks->ks.name, version + 1, errmsg != NULL ? errmsg : "?");
			sqlite3_free(errmsg);
			goto out;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version + 1);
		if (sqlite3_exec(ks->db, pragma, NULL, NULL, NULL) != SQLITE_OK) {
			st = db_fail(ks, err, "setting schema version");
			goto out;
		}
	}
out:
	sqlite3_exec(ks->db, st == CABLES_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	return st;
}

cables_status
keystore_sqlite_open(struct keystore **out, const char *path, bool create, struct cables_err *err)
{
	struct sqlite_store *ks;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	cables_status st;
	struct stat sb;

	*out = NULL;
	if (stat(path, &sb) != 0) {
		int fd;

		if (!create || errno != ENOENT)
			return cables_fail(err, CABLES_ERR_IO, "key store %s: %s", path, strerror(errno));
		/* A new store is private to its owner (SQLite would use the umask). */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			return cables_fail(err, CABLES_ERR_IO, "creating key store %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (create)
		flags |= SQLITE_OPEN_CREATE;
	ks = xcalloc(1, sizeof(*ks));
	ks->ks.ops = &keystore_sqlite_ops;
	ks->ks.name = xstrdup(path);
	pthread_mutex_init(&ks->lock, NULL);
	if (sqlite3_open_v2(path, &ks->db, flags, NULL) != SQLITE_OK) {
		st = cables_fail(err, CABLES_ERR_DB, "key store %s: %s", path,
		    ks->db != NULL ? sqlite3_errmsg(ks->db) : "cannot open");
		sqlite_close(&ks->ks);
		return st;
	}
	sqlite3_busy_timeout(ks->db, 5000);
	/*
	 * secure_delete: a deleted row (an expired epoch key, a key deleted by
	 * the administrator) is overwritten with zeros in the file rather than
	 * left in a free cell or page for whoever takes the file later.
	 */
	if (sqlite3_exec(ks->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	    "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;", NULL, NULL, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "setting up");
		sqlite_close(&ks->ks);
		return st;
	}
	st = migrate(ks, err);
	if (st != CABLES_OK) {
		sqlite_close(&ks->ks);
		return st;
	}
	*out = &ks->ks;
	return CABLES_OK;
}

static void
sqlite_close(struct keystore *base)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;

	sqlite3_finalize(ks->lookup);
	sqlite3_finalize(ks->data_version);
	sqlite3_close(ks->db);
	pthread_mutex_destroy(&ks->lock);
	free(ks->ks.name);
	free(ks);
}

static uint8_t *
blob_dup(sqlite3_stmt *stmt, int col, size_t *len)
{
	const void *p = sqlite3_column_blob(stmt, col);
	int n = sqlite3_column_bytes(stmt, col);
	uint8_t *d;

	*len = 0;
	if (p == NULL || n <= 0)
		return NULL;
	d = xmalloc((size_t)n);
	memcpy(d, p, (size_t)n);
	*len = (size_t)n;
	return d;
}

static const char *
text_col(sqlite3_stmt *stmt, int col)
{
	const unsigned char *t = sqlite3_column_text(stmt, col);

	return t != NULL ? (const char *)t : "";
}

static void
row_to_record(sqlite3_stmt *stmt, bool with_data, struct key_record *r)
{
	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(stmt, 0);
	r->address = xstrdup(text_col(stmt, 1));
	strlcpy_c(r->format, text_col(stmt, 2), sizeof(r->format));
	strlcpy_c(r->fingerprint, text_col(stmt, 3), sizeof(r->fingerprint));
	if (with_data) {
		r->public_data = blob_dup(stmt, 4, &r->public_len);
		r->secret_data = blob_dup(stmt, 5, &r->secret_len);
	} else {
		/* Tell "has a private key" without copying it. */
		r->secret_len = (size_t)sqlite3_column_bytes(stmt, 5);
	}
	r->not_before = sqlite3_column_int64(stmt, 6);
	r->not_after = sqlite3_column_int64(stmt, 7);
	r->source = xstrdup(text_col(stmt, 8));
	r->first_seen = sqlite3_column_int64(stmt, 9);
	r->last_seen = sqlite3_column_int64(stmt, 10);
}

static cables_status
collect(struct sqlite_store *ks, sqlite3_stmt *stmt, bool with_data, struct key_list *out,
    struct cables_err *err)
{
	int rc;

	out->items = NULL;
	out->count = 0;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		out->items = xreallocarray(out->items, out->count + 1, sizeof(*out->items));
		row_to_record(stmt, with_data, &out->items[out->count++]);
	}
	if (rc != SQLITE_DONE) {
		key_list_release(out);
		return db_fail(ks, err, "reading keys");
	}
	return CABLES_OK;
}

static cables_status
sqlite_put(struct keystore *base, const struct key_record *r, time_t now, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] =
	    "INSERT INTO keys (address, format, fingerprint, public_data, secret_data,"
	    " not_before, not_after, source, first_seen, last_seen)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)"
	    " ON CONFLICT (address, format, fingerprint) DO UPDATE SET"
	    "  last_seen = excluded.last_seen,"
	    "  source = excluded.source,"
	    "  public_data = excluded.public_data,"
	    "  not_before = excluded.not_before,"
	    "  not_after = excluded.not_after,"
	    "  secret_data = coalesce(keys.secret_data, excluded.secret_data)";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing insert");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, r->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->format, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, r->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 4, r->public_data, (int)r->public_len, SQLITE_STATIC);
	if (r->secret_data != NULL)
		sqlite3_bind_blob(stmt, 5, r->secret_data, (int)r->secret_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 5);
	sqlite3_bind_int64(stmt, 6, r->not_before);
	sqlite3_bind_int64(stmt, 7, r->not_after);
	sqlite3_bind_text(stmt, 8, r->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 9, (sqlite3_int64)now);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		st = db_fail(ks, err, "storing a key");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_restore(struct keystore *base, const struct key_record *r, bool *added, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] =
	    "INSERT INTO keys (address, format, fingerprint, public_data, secret_data,"
	    " not_before, not_after, source, first_seen, last_seen)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
	    " ON CONFLICT (address, format, fingerprint) DO NOTHING";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	*added = false;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing insert");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, r->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, r->format, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, r->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_blob(stmt, 4, r->public_data, (int)r->public_len, SQLITE_STATIC);
	if (r->secret_data != NULL)
		sqlite3_bind_blob(stmt, 5, r->secret_data, (int)r->secret_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(stmt, 5);
	sqlite3_bind_int64(stmt, 6, r->not_before);
	sqlite3_bind_int64(stmt, 7, r->not_after);
	sqlite3_bind_text(stmt, 8, r->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 9, r->first_seen);
	sqlite3_bind_int64(stmt, 10, r->last_seen);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		st = db_fail(ks, err, "copying a key");
	else
		*added = sqlite3_changes(ks->db) > 0;
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_lookup(struct keystore *base, const char *address, const char *format,
    struct key_list *out, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT " KEYSTORE_COLUMNS " FROM keys WHERE address = ?1"
	    " AND (?2 IS NULL OR format = ?2) AND source NOT IN " KEYSTORE_EPOCH_SOURCES
	    " ORDER BY not_after DESC, id DESC";
	cables_status st;

	out->items = NULL;
	out->count = 0;
	pthread_mutex_lock(&ks->lock);
	if (ks->lookup == NULL &&
	    sqlite3_prepare_v3(ks->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &ks->lookup, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing lookup");
		pthread_mutex_unlock(&ks->lock);
		return st;
	}
	sqlite3_bind_text(ks->lookup, 1, address, -1, SQLITE_STATIC);
	if (format != NULL)
		sqlite3_bind_text(ks->lookup, 2, format, -1, SQLITE_STATIC);
	st = collect(ks, ks->lookup, true, out, err);
	sqlite3_reset(ks->lookup);
	sqlite3_clear_bindings(ks->lookup);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* The rows sql selects (?1 bound to address when there is one) into out; what names it in an error. */
static cables_status
list_rows(struct sqlite_store *ks, const char *sql, const char *address, bool with_data, const char *what,
    struct key_list *out, struct cables_err *err)
{
	sqlite3_stmt *stmt = NULL;
	cables_status st;

	out->items = NULL;
	out->count = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		st = db_fail(ks, err, what);
	else {
		if (address != NULL)
			sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
		st = collect(ks, stmt, with_data, out, err);
	}
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_list(struct keystore *base, bool with_data, struct key_list *out, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT " KEYSTORE_COLUMNS " FROM keys WHERE source NOT IN " KEYSTORE_EPOCH_SOURCES
	    " ORDER BY address, format, not_after DESC";

	return list_rows(ks, sql, NULL, with_data, "preparing list", out, err);
}

static cables_status
sqlite_delete(struct keystore *base, const char *address, const char *fpr_prefix,
    size_t *deleted, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "DELETE FROM keys WHERE address = ?1"
	    " AND (?2 IS NULL OR substr(fingerprint, 1, length(?2)) = lower(?2))";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	*deleted = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing delete");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (fpr_prefix != NULL)
		sqlite3_bind_text(stmt, 2, fpr_prefix, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		st = db_fail(ks, err, "deleting");
		goto out;
	}
	*deleted = (size_t)sqlite3_changes(ks->db);
	if (*deleted == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no key for %s%s%s", address,
		    fpr_prefix != NULL ? " with fingerprint " : "", fpr_prefix != NULL ? fpr_prefix : "");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_delete_epoch(struct keystore *base, long long id, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "DELETE FROM keys WHERE id = ?1 AND source IN " KEYSTORE_EPOCH_SOURCES;
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing delete");
		goto out;
	}
	sqlite3_bind_int64(stmt, 1, id);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		st = db_fail(ks, err, "deleting");
		goto out;
	}
	if (sqlite3_changes(ks->db) == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no epoch key in row %lld", id);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_epoch_list(struct keystore *base, const char *address, bool with_data, struct key_list *out,
    struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT " KEYSTORE_COLUMNS " FROM keys WHERE source IN " KEYSTORE_EPOCH_SOURCES
	    " AND (?1 IS NULL OR address = ?1) ORDER BY address, format, not_after DESC, id DESC";

	return list_rows(ks, sql, address, with_data, "preparing epoch key list", out, err);
}

static cables_status
sqlite_wal_truncate(struct keystore *base, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	int logged, done, rc;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	rc = sqlite3_wal_checkpoint_v2(ks->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged, &done);
	if (rc == SQLITE_BUSY)
		st = cables_fail(err, CABLES_ERR_DB, "key store %s: the write-ahead log is in use by a reader",
		    ks->ks.name);
	else if (rc != SQLITE_OK)
		st = db_fail(ks, err, "checkpointing the write-ahead log");
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* ---- pins ---- */

static void
pin_from_row(sqlite3_stmt *stmt, struct key_pin *p)
{
	const char *t;

	memset(p, 0, sizeof(*p));
	p->address = xstrdup((const char *)sqlite3_column_text(stmt, 0));
	strlcpy_c(p->format, (const char *)sqlite3_column_text(stmt, 1), sizeof(p->format));
	strlcpy_c(p->fingerprint, (const char *)sqlite3_column_text(stmt, 2), sizeof(p->fingerprint));
	p->source = xstrdup((const char *)sqlite3_column_text(stmt, 3));
	p->first_seen = sqlite3_column_int64(stmt, 4);
	p->last_seen = sqlite3_column_int64(stmt, 5);
	if ((t = (const char *)sqlite3_column_text(stmt, 6)) != NULL)
		strlcpy_c(p->offered, t, sizeof(p->offered));
	if ((t = (const char *)sqlite3_column_text(stmt, 7)) != NULL)
		p->offered_source = xstrdup(t);
	p->offered_at = sqlite3_column_int64(stmt, 8);
	p->changes = sqlite3_column_int64(stmt, 9);
}

static cables_status
sqlite_pin_get(struct keystore *base, const char *address, const char *format, struct key_pin *out,
    struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT " KEYSTORE_PIN_COLUMNS " FROM pins WHERE address = ?1 AND format = ?2";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing pin lookup");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, format, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		pin_from_row(stmt, out);
	else if (rc == SQLITE_DONE)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no pin for %s (%s)", address, format);
	else
		st = db_fail(ks, err, "looking up a pin");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_pin_set(struct keystore *base, const struct key_pin *p, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "INSERT OR REPLACE INTO pins (" KEYSTORE_PIN_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing pin update");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, p->address, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, p->format, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 3, p->fingerprint, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 4, p->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 5, p->first_seen);
	sqlite3_bind_int64(stmt, 6, p->last_seen);
	if (p->offered[0] != '\0') {
		sqlite3_bind_text(stmt, 7, p->offered, -1, SQLITE_STATIC);
		sqlite3_bind_text(stmt, 8, p->offered_source != NULL ? p->offered_source : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(stmt, 9, p->offered_at);
	}
	sqlite3_bind_int64(stmt, 10, p->changes);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		st = db_fail(ks, err, "writing a pin");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_pin_list(struct keystore *base, struct key_pin **out, size_t *n, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT " KEYSTORE_PIN_COLUMNS " FROM pins ORDER BY address, format";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing pin list");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		pin_from_row(stmt, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE)
		st = db_fail(ks, err, "listing pins");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_pin_delete(struct keystore *base, const char *address, size_t *deleted, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "DELETE FROM pins WHERE address = ?1";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	*deleted = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing pin delete");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, address, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		st = db_fail(ks, err, "deleting pins");
		goto out;
	}
	*deleted = (size_t)sqlite3_changes(ks->db);
	if (*deleted == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no pin for %s", address);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* One process's file: other writers are seen at the next read, and nothing tells of them. */
static int
sqlite_changes_fd(struct keystore *base)
{
	return -1;
}

static cables_status
sqlite_changes_take(struct keystore *base, keystore_change_fn *fn, void *arg, struct cables_err *err)
{
	return CABLES_OK;
}

/* ---- change detection ---- */

static cables_status
sqlite_data_version(struct keystore *base, long long *version, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	if (ks->data_version == NULL &&
	    sqlite3_prepare_v2(ks->db, "PRAGMA data_version", -1, &ks->data_version, NULL) != SQLITE_OK)
		st = db_fail(ks, err, "preparing the data version");
	else if (sqlite3_step(ks->data_version) != SQLITE_ROW)
		st = db_fail(ks, err, "reading the data version");
	else
		*version = sqlite3_column_int64(ks->data_version, 0);
	if (ks->data_version != NULL)
		sqlite3_reset(ks->data_version);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* ---- held messages (schema 3; doc/hold.md) ---- */

/* The columns, and what the stored message takes (the store's count, not a column anyone writes). */
#define HELD_SELECT "SELECT " KEYSTORE_HELD_COLUMNS ", length(content)"

static void
held_from_row(sqlite3_stmt *stmt, struct held_record *h)
{
	memset(h, 0, sizeof(*h));
	strlcpy_c(h->id, text_col(stmt, 0), sizeof(h->id));
	strlcpy_c(h->token, text_col(stmt, 1), sizeof(h->token));
	strlcpy_c(h->queue_id, text_col(stmt, 2), sizeof(h->queue_id));
	h->sender = xstrdup(text_col(stmt, 3));
	h->recipients = xstrdup(text_col(stmt, 4));
	h->waiting = xstrdup(text_col(stmt, 5));
	h->notify = sqlite3_column_int(stmt, 6);
	strlcpy_c(h->state, text_col(stmt, 7), sizeof(h->state));
	h->held_at = sqlite3_column_int64(stmt, 8);
	h->next_try = sqlite3_column_int64(stmt, 9);
	h->tries = sqlite3_column_int(stmt, 10);
	h->notified = sqlite3_column_int(stmt, 11);
	h->last_error = sqlite3_column_type(stmt, 12) == SQLITE_NULL ? NULL : xstrdup(text_col(stmt, 12));
	strlcpy_c(h->action, text_col(stmt, 13), sizeof(h->action));
	h->sealed = sqlite3_column_int(stmt, 14);
	h->auth_login = xstrdup(text_col(stmt, 15));
	h->stored_len = (size_t)sqlite3_column_int64(stmt, 16);
	if (sqlite3_column_count(stmt) > 17)
		h->message = blob_dup(stmt, 17, &h->message_len);
}

/* Run one statement with bound text/integer parameters; changes in *changed when not NULL. */
static cables_status
held_exec(struct sqlite_store *ks, const char *sql, const char *what, const char *const *texts, size_t ntexts,
    const long long *ints, size_t nints, const struct held_record *blob, int *changed, struct cables_err *err)
{
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	int i = 1;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, what);
		goto out;
	}
	for (size_t k = 0; k < ntexts; k++, i++)
		if (texts[k] != NULL)
			sqlite3_bind_text(stmt, i, texts[k], -1, SQLITE_STATIC);
	for (size_t k = 0; k < nints; k++, i++)
		sqlite3_bind_int64(stmt, i, ints[k]);
	if (blob != NULL)
		sqlite3_bind_blob(stmt, i, blob->message, (int)blob->message_len, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_DONE)
		st = db_fail(ks, err, what);
	else if (changed != NULL)
		*changed = sqlite3_changes(ks->db);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_held_add(struct keystore *base, const struct held_record *h, struct cables_err *err)
{
	static const char sql[] = "INSERT INTO held (id, token, queue_id, sender, recipients, waiting, state, "
	    "last_error, action, auth_login, notify, held_at, next_try, tries, notified, sealed, content) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
	const char *texts[] = { h->id, h->token, h->queue_id, h->sender, h->recipients, h->waiting, h->state,
	    h->last_error, h->action, h->auth_login != NULL ? h->auth_login : "" };
	long long ints[] = { h->notify, h->held_at, h->next_try, h->tries, h->notified, h->sealed };

	if (h->message == NULL || h->message_len > INT32_MAX)
		return cables_fail(err, CABLES_ERR_TOOBIG, "key store %s: a held message must have 1 to 2 GB",
		    base->name);
	return held_exec((struct sqlite_store *)base, sql, "adding a held message", texts, 10, ints, 6, h, NULL,
	    err);
}

static cables_status
sqlite_held_get(struct keystore *base, const char *id, bool with_message, size_t max, struct held_record *out,
    struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	const char *sql = with_message ? HELD_SELECT ", CASE WHEN ?2 = 0 OR length(content) <= ?2 THEN content END "
	    "FROM held WHERE id = ?1" : HELD_SELECT " FROM held WHERE id = ?1";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing held message lookup");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, id, -1, SQLITE_STATIC);
	if (with_message)
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)max);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		held_from_row(stmt, out);
	else if (rc == SQLITE_DONE)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no held message %s", id);
	else
		st = db_fail(ks, err, "reading a held message");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_held_list(struct keystore *base, int which, time_t now, struct held_record **out, size_t *n,
    struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	const char *sql = which != HELD_ALL ? HELD_SELECT " FROM held WHERE state = 'held' "
	    "AND next_try <= ?1 AND (?2 = 2) = (action <> '') ORDER BY next_try LIMIT 1000" :
	    HELD_SELECT " FROM held WHERE state = 'held' ORDER BY held_at";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing held message list");
		goto out;
	}
	if (which != HELD_ALL) {
		sqlite3_bind_int64(stmt, 1, (long long)now);
		sqlite3_bind_int(stmt, 2, which);
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		held_from_row(stmt, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE)
		st = db_fail(ks, err, "listing held messages");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* One UPDATE: of two keyds (two connections to one file) only one changes the row. */
static cables_status
sqlite_held_claim(struct keystore *base, const char *id, time_t now, int which, time_t until, bool *claimed,
    struct cables_err *err)
{
	static const char sql[] = "UPDATE held SET claimed_until = ?2 WHERE id = ?1 AND state = 'held' "
	    "AND claimed_until <= ?3 AND (?4 IN (0, 3) OR next_try <= ?3) AND (?4 = 3 OR (?4 = 2) = (action <> ''))";
	const char *texts[] = { id };
	long long ints[] = { (long long)until, (long long)now, which };
	int changed = 0;
	cables_status st;

	st = held_exec((struct sqlite_store *)base, sql, "claiming a held message", texts, 1, ints, 3, NULL,
	    &changed, err);
	*claimed = st == CABLES_OK && changed == 1;
	return st;
}

static cables_status
sqlite_held_update(struct keystore *base, const struct held_record *h, time_t claimed_until, struct cables_err *err)
{
	static const char sql[] = "UPDATE held SET queue_id = ?1, waiting = ?2, state = ?3, last_error = ?4, "
	    "action = ?6, next_try = ?8, tries = ?9, notified = ?10, claimed_until = 0 "
	    "WHERE id = ?5 AND (?7 = 0 OR claimed_until = ?7)";
	const char *texts[] = { h->queue_id, h->waiting, h->state, h->last_error, h->id, h->action };
	long long ints[] = { (long long)claimed_until, h->next_try, h->tries, h->notified };
	int changed = 0;
	cables_status st;

	st = held_exec((struct sqlite_store *)base, sql, "updating a held message", texts, 6, ints, 4, NULL,
	    &changed, err);
	if (st == CABLES_OK && changed == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no held message %s%s", h->id,
		    claimed_until != 0 ? " under this claim" : "");
	return st;
}

static cables_status
sqlite_held_delete(struct keystore *base, const char *id, struct cables_err *err)
{
	const char *texts[] = { id };
	int changed = 0;
	cables_status st;

	st = held_exec((struct sqlite_store *)base, "DELETE FROM held WHERE id = ?1", "deleting a held message",
	    texts, 1, NULL, 0, NULL, &changed, err);
	if (st == CABLES_OK && changed == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "no held message %s", id);
	return st;
}

static cables_status
sqlite_held_usage(struct keystore *base, const char *sender, struct held_usage *out, struct cables_err *err)
{
	static const char sql[] = "SELECT COUNT(*), COALESCE(SUM(length(content)), 0), "
	    "COALESCE(SUM(sender = ?1), 0), COALESCE(SUM(CASE WHEN sender = ?1 THEN length(content) ELSE 0 END), 0) "
	    "FROM held WHERE state = 'held'";
	struct sqlite_store *ks = (struct sqlite_store *)base;
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing the held messages' usage");
		goto out;
	}
	sqlite3_bind_text(stmt, 1, sender, -1, SQLITE_STATIC);
	if (sqlite3_step(stmt) != SQLITE_ROW) {
		st = db_fail(ks, err, "reading the held messages' usage");
		goto out;
	}
	out->messages = sqlite3_column_int64(stmt, 0);
	out->bytes = sqlite3_column_int64(stmt, 1);
	out->sender_messages = sqlite3_column_int64(stmt, 2);
	out->sender_bytes = sqlite3_column_int64(stmt, 3);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_held_prune(struct keystore *base, time_t before, struct cables_err *err)
{
	long long ints[] = { (long long)before };

	return held_exec((struct sqlite_store *)base, "DELETE FROM held WHERE state = 'released' AND next_try < ?1",
	    "pruning held messages", NULL, 0, ints, 1, NULL, NULL, err);
}

/* ---- downgrade protection (schema 4) ---- */

/* Run one statement with text and integer parameters (NULL ends texts); *changed: rows changed. */
static cables_status
encrypting_exec(struct sqlite_store *ks, const char *sql, const char *const *texts, const long long *ints,
    size_t nints, const char *what, size_t *changed, struct cables_err *err)
{
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	int i = 1;

	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, what);
		goto out;
	}
	for (; texts[i - 1] != NULL; i++)
		sqlite3_bind_text(stmt, i, texts[i - 1], -1, SQLITE_STATIC);
	for (size_t k = 0; k < nints; k++)
		sqlite3_bind_int64(stmt, i + (int)k, ints[k]);
	if (sqlite3_step(stmt) != SQLITE_DONE) {
		st = db_fail(ks, err, what);
		goto out;
	}
	if (changed != NULL)
		*changed = (size_t)sqlite3_changes(ks->db);
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_encrypting_note(struct keystore *base, const char *domain, const char *source, time_t now,
    struct cables_err *err)
{
	static const char sql[] = "INSERT INTO encrypting_domains (" KEYSTORE_ENCRYPTING_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?3, 0) "
	    "ON CONFLICT (domain) DO UPDATE SET last_seen = excluded.last_seen, source = excluded.source "
	    "WHERE last_seen <= excluded.last_seen - ?4";
	const char *texts[] = { domain, source, NULL };
	const long long ints[] = { (long long)now, KEYSTORE_ENCRYPTING_REFRESH_S };

	return encrypting_exec((struct sqlite_store *)base, sql, texts, ints, 2, "remembering an encrypting domain",
	    NULL, err);
}

static void
encrypting_from_row(sqlite3_stmt *stmt, struct encrypting_domain *d)
{
	memset(d, 0, sizeof(*d));
	strlcpy_c(d->domain, text_col(stmt, 0), sizeof(d->domain));
	strlcpy_c(d->source, text_col(stmt, 1), sizeof(d->source));
	d->first_seen = sqlite3_column_int64(stmt, 2);
	d->last_seen = sqlite3_column_int64(stmt, 3);
	d->told = sqlite3_column_int64(stmt, 4);
}

static cables_status
sqlite_encrypting_list(struct keystore *base, const char *domain, struct encrypting_domain **out, size_t *n,
    struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char all[] = "SELECT " KEYSTORE_ENCRYPTING_COLUMNS " FROM encrypting_domains ORDER BY domain";
	static const char one[] = "SELECT " KEYSTORE_ENCRYPTING_COLUMNS " FROM encrypting_domains WHERE domain = ?1";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, domain != NULL ? one : all, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing the encrypting domains' list");
		goto out;
	}
	if (domain != NULL)
		sqlite3_bind_text(stmt, 1, domain, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		encrypting_from_row(stmt, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE)
		st = db_fail(ks, err, "listing encrypting domains");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

static cables_status
sqlite_encrypting_restore(struct keystore *base, const struct encrypting_domain *d, bool *added,
    struct cables_err *err)
{
	static const char sql[] = "INSERT OR IGNORE INTO encrypting_domains (" KEYSTORE_ENCRYPTING_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5)";
	const char *texts[] = { d->domain, d->source, NULL };
	const long long ints[] = { d->first_seen, d->last_seen, d->told };
	size_t changed = 0;
	cables_status st;

	st = encrypting_exec((struct sqlite_store *)base, sql, texts, ints, 3, "copying an encrypting domain",
	    &changed, err);
	*added = st == CABLES_OK && changed == 1;
	return st;
}

static cables_status
sqlite_encrypting_forget(struct keystore *base, const char *domain, struct cables_err *err)
{
	static const char sql[] = "DELETE FROM encrypting_domains WHERE domain = ?1";
	const char *texts[] = { domain, NULL };
	size_t changed = 0;
	cables_status st;

	if ((st = encrypting_exec((struct sqlite_store *)base, sql, texts, NULL, 0, "forgetting an encrypting domain",
	    &changed, err)) != CABLES_OK)
		return st;
	if (changed == 0)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "%s is not remembered as encrypting", domain);
	return CABLES_OK;
}

static cables_status
sqlite_encrypting_tell(struct keystore *base, const char *domain, time_t now, time_t told_before, bool *first,
    struct cables_err *err)
{
	static const char sql[] = "UPDATE encrypting_domains SET told = ?2 WHERE domain = ?1 AND told < ?3";
	const char *texts[] = { domain, NULL };
	const long long ints[] = { (long long)now, (long long)told_before };
	size_t changed = 0;
	cables_status st;

	*first = false;
	st = encrypting_exec((struct sqlite_store *)base, sql, texts, ints, 2,
	    "noting that the administrator was told", &changed, err);
	*first = st == CABLES_OK && changed == 1;
	return st;
}

static cables_status
sqlite_key_change_tell(struct keystore *base, const char *address, const char *format, const char *old,
    const char *new, time_t now, bool *first, struct cables_err *err)
{
	static const char sql[] = "INSERT OR IGNORE INTO key_change_alerts (address, format, old, new, told) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)";
	const char *texts[] = { address, format, old, new, NULL };
	const long long ints[] = { (long long)now };
	size_t changed = 0;
	cables_status st;

	*first = false;
	st = encrypting_exec((struct sqlite_store *)base, sql, texts, ints, 1, "noting a key change alert", &changed,
	    err);
	*first = st == CABLES_OK && changed == 1;
	return st;
}

static cables_status
sqlite_encrypting_untell(struct keystore *base, const char *domain, time_t now, time_t was, struct cables_err *err)
{
	const char *texts[] = { domain, NULL };
	const long long ints[] = { (long long)now, (long long)was };

	return encrypting_exec((struct sqlite_store *)base,
	    "UPDATE encrypting_domains SET told = ?3 WHERE domain = ?1 AND told = ?2", texts, ints, 2,
	    "undoing that the administrator was told", NULL, err);
}

static cables_status
sqlite_key_change_untell(struct keystore *base, const char *address, const char *format, const char *old,
    const char *new, struct cables_err *err)
{
	const char *texts[] = { address, format, old, new, NULL };

	return encrypting_exec((struct sqlite_store *)base, "DELETE FROM key_change_alerts "
	    "WHERE address = ?1 AND format = ?2 AND old = ?3 AND new = ?4", texts, NULL, 0,
	    "undoing a key change alert", NULL, err);
}

static cables_status
sqlite_key_change_prune(struct keystore *base, time_t before, struct cables_err *err)
{
	const char *texts[] = { NULL };
	const long long ints[] = { (long long)before };

	return encrypting_exec((struct sqlite_store *)base, "DELETE FROM key_change_alerts WHERE told < ?1", texts,
	    ints, 1, "pruning key change alerts", NULL, err);
}

static cables_status
sqlite_key_change_list(struct keystore *base, struct key_change_alert **out, size_t *n, struct cables_err *err)
{
	struct sqlite_store *ks = (struct sqlite_store *)base;
	static const char sql[] = "SELECT address, format, old, new, told FROM key_change_alerts "
	    "ORDER BY address, format, told";
	sqlite3_stmt *stmt = NULL;
	cables_status st = CABLES_OK;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&ks->lock);
	if (sqlite3_prepare_v2(ks->db, sql, -1, &stmt, NULL) != SQLITE_OK) {
		st = db_fail(ks, err, "preparing the key change alerts' list");
		goto out;
	}
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		struct key_change_alert *a;

		if (*n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			*out = xreallocarray(*out, cap, sizeof(**out));
		}
		a = &(*out)[(*n)++];
		memset(a, 0, sizeof(*a));
		strlcpy_c(a->address, text_col(stmt, 0), sizeof(a->address));
		strlcpy_c(a->format, text_col(stmt, 1), sizeof(a->format));
		strlcpy_c(a->old, text_col(stmt, 2), sizeof(a->old));
		strlcpy_c(a->new, text_col(stmt, 3), sizeof(a->new));
		a->told = sqlite3_column_int64(stmt, 4);
	}
	if (rc != SQLITE_DONE)
		st = db_fail(ks, err, "listing key change alerts");
out:
	sqlite3_finalize(stmt);
	pthread_mutex_unlock(&ks->lock);
	return st;
}

const struct keystore_ops keystore_sqlite_ops = {
	.type = "sqlite",
	.close = sqlite_close,
	.put = sqlite_put,
	.restore = sqlite_restore,
	.lookup = sqlite_lookup,
	.list = sqlite_list,
	.epoch_list = sqlite_epoch_list,
	.wal_truncate = sqlite_wal_truncate,
	.delete = sqlite_delete,
	.delete_epoch = sqlite_delete_epoch,
	.pin_get = sqlite_pin_get,
	.pin_set = sqlite_pin_set,
	.pin_list = sqlite_pin_list,
	.pin_delete = sqlite_pin_delete,
	.changes_fd = sqlite_changes_fd,
	.changes_take = sqlite_changes_take,
	.data_version = sqlite_data_version,
	.held_add = sqlite_held_add,
	.held_get = sqlite_held_get,
	.held_list = sqlite_held_list,
	.held_claim = sqlite_held_claim,
	.held_update = sqlite_held_update,
	.held_delete = sqlite_held_delete,
	.held_prune = sqlite_held_prune,
	.held_usage = sqlite_held_usage,
	.encrypting_note = sqlite_encrypting_note,
	.encrypting_list = sqlite_encrypting_list,
	.encrypting_restore = sqlite_encrypting_restore,
	.encrypting_forget = sqlite_encrypting_forget,
	.encrypting_tell = sqlite_encrypting_tell,
	.key_change_tell = sqlite_key_change_tell,
	.key_change_list = sqlite_key_change_list,
	.key_change_prune = sqlite_key_change_prune,
	.encrypting_untell = sqlite_encrypting_untell,
	.key_change_untell = sqlite_key_change_untell,
};
