/* keystore - the SQLite key store; see keystore.h. */
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

#include "keystore.h"
#include "util.h"

struct keystore {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
	sqlite3_stmt *lookup;	/* prepared once: lookups are per message */
};

/*
 * Schema 3, downgrade protection (see the block at the end): domains
 * remembered as encrypting, and the key changes the administrator was
 * told about.  IF NOT EXISTS: other tables join schema 3 beside these.
 */
#define ENCRYPTING_SCHEMA \
	"CREATE TABLE IF NOT EXISTS encrypting_domains (" \
	"  domain TEXT PRIMARY KEY," \
	"  source TEXT NOT NULL," \
	"  first_seen INTEGER NOT NULL," \
	"  last_seen INTEGER NOT NULL," \
	"  told INTEGER NOT NULL DEFAULT 0);" \
	"CREATE TABLE IF NOT EXISTS key_change_alerts (" \
	"  address TEXT NOT NULL," \
	"  format TEXT NOT NULL," \
	"  old TEXT NOT NULL," \
	"  new TEXT NOT NULL," \
	"  told INTEGER NOT NULL," \
	"  PRIMARY KEY (address, format, old, new));"

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
	ENCRYPTING_SCHEMA,
};

#define EPOCH_SOURCES "('" KEYSTORE_EPOCH_SOURCE "', '" KEYSTORE_PEER_EPOCH_SOURCE "')"

#define COLUMNS "id, address, format, fingerprint, public_data, secret_data, " \
	"not_before, not_after, source, first_seen, last_seen"

static cables_status
db_fail(struct keystore *ks, struct cables_err *err, const char *what)
{
	return cables_fail(err, CABLES_ERR_DB, "key store %s: %s: %s", ks->path, what,
	    sqlite3_errmsg(ks->db));
}

static cables_status
migrate(struct keystore *ks, struct cables_err *err)
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
		    ks->path, version, KEYSTORE_SCHEMA_VERSION);
		goto out;
	}
	for (; version < KEYSTORE_SCHEMA_VERSION; version++) {
		char pragma[64];

		if (sqlite3_exec(ks->db, migrations[version], NULL, NULL, &errmsg) != SQLITE_OK) {
			st = cables_fail(err, CABLES_ERR_DB, "key store %s: migrating to version %d: %s",
			    ks->path, version + 1, errmsg != NULL ? errmsg : "?");
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
keystore_open(struct keystore **out, const char *path, bool create, struct cables_err *err)
{
	struct keystore *ks;
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
	ks->path = xstrdup(path);
	pthread_mutex_init(&ks->lock, NULL);
	if (sqlite3_open_v2(path, &ks->db, flags, NULL) != SQLITE_OK) {
		st = cables_fail(err, CABLES_ERR_DB, "key store %s: %s", path,
		    ks->db != NULL ? sqlite3_errmsg(ks->db) : "cannot open");
		keystore_close(ks);
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
		keystore_close(ks);
		return st;
	}
	st = migrate(ks, err);
	if (st != CABLES_OK) {
		keystore_close(ks);
		return st;
	}
	*out = ks;
	return CABLES_OK;
}

void
keystore_close(struct keystore *ks)
{
	if (ks == NULL)
		return;
	sqlite3_finalize(ks->lookup);
	sqlite3_close(ks->db);
	pthread_mutex_destroy(&ks->lock);
	free(ks->path);
	free(ks);
}

bool
key_source_discovered(const char *source)
{
	return source != NULL && (strncmp(source, "dns-", 4) == 0 || strcmp(source, "peer") == 0 ||
	    strcmp(source, "wkd") == 0);
}

void
key_record_release(struct key_record *r)
{
	free(r->address);
	free(r->public_data);
	if (r->secret_data != NULL)
		OPENSSL_clear_free(r->secret_data, r->secret_len);
	free(r->source);
	memset(r, 0, sizeof(*r));
}

void
key_list_release(struct key_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		key_record_release(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->count = 0;
}

void
key_list_take(struct key_list *to, struct key_list *from)
{
	if (from->count == 0)
		return;
	to->items = xreallocarray(to->items, to->count + from->count, sizeof(*to->items));
	memcpy(to->items + to->count, from->items, from->count * sizeof(*from->items));
	to->count += from->count;
	free(from->items);
	from->items = NULL;
	from->count = 0;
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
collect(struct keystore *ks, sqlite3_stmt *stmt, bool with_data, struct key_list *out,
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

cables_status
keystore_put(struct keystore *ks, const struct key_record *r, time_t now, struct cables_err *err)
{
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

cables_status
keystore_lookup(struct keystore *ks, const char *address, const char *format,
    struct key_list *out, struct cables_err *err)
{
	static const char sql[] = "SELECT " COLUMNS " FROM keys WHERE address = ?1"
	    " AND (?2 IS NULL OR format = ?2) AND source NOT IN " EPOCH_SOURCES
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
list_rows(struct keystore *ks, const char *sql, const char *address, bool with_data, const char *what,
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

cables_status
keystore_list(struct keystore *ks, bool with_data, struct key_list *out, struct cables_err *err)
{
	static const char sql[] = "SELECT " COLUMNS " FROM keys WHERE source NOT IN " EPOCH_SOURCES
	    " ORDER BY address, format, not_after DESC";

	return list_rows(ks, sql, NULL, with_data, "preparing list", out, err);
}

cables_status
keystore_delete(struct keystore *ks, const char *address, const char *fpr_prefix,
    size_t *deleted, struct cables_err *err)
{
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

cables_status
keystore_delete_epoch(struct keystore *ks, long long id, struct cables_err *err)
{
	static const char sql[] = "DELETE FROM keys WHERE id = ?1 AND source IN " EPOCH_SOURCES;
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

cables_status
keystore_epoch_list(struct keystore *ks, const char *address, bool with_data, struct key_list *out,
    struct cables_err *err)
{
	static const char sql[] = "SELECT " COLUMNS " FROM keys WHERE source IN " EPOCH_SOURCES
	    " AND (?1 IS NULL OR address = ?1) ORDER BY address, format, not_after DESC, id DESC";

	return list_rows(ks, sql, address, with_data, "preparing epoch key list", out, err);
}

cables_status
keystore_wal_truncate(struct keystore *ks, struct cables_err *err)
{
	int logged, done, rc;
	cables_status st = CABLES_OK;

	pthread_mutex_lock(&ks->lock);
	rc = sqlite3_wal_checkpoint_v2(ks->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &logged, &done);
	if (rc == SQLITE_BUSY)
		st = cables_fail(err, CABLES_ERR_DB, "key store %s: the write-ahead log is in use by a reader",
		    ks->path);
	else if (rc != SQLITE_OK)
		st = db_fail(ks, err, "checkpointing the write-ahead log");
	pthread_mutex_unlock(&ks->lock);
	return st;
}

/* ---- pins ---- */

#define PIN_COLUMNS "address, format, fingerprint, source, first_seen, last_seen, offered, offered_source, " \
	"offered_at, changes"

void
key_pin_release(struct key_pin *p)
{
	free(p->address);
	free(p->source);
	free(p->offered_source);
	memset(p, 0, sizeof(*p));
}

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

cables_status
keystore_pin_get(struct keystore *ks, const char *address, const char *format, struct key_pin *out,
    struct cables_err *err)
{
	static const char sql[] = "SELECT " PIN_COLUMNS " FROM pins WHERE address = ?1 AND format = ?2";
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

cables_status
keystore_pin_set(struct keystore *ks, const struct key_pin *p, struct cables_err *err)
{
	static const char sql[] = "INSERT OR REPLACE INTO pins (" PIN_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
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

cables_status
keystore_pin_list(struct keystore *ks, struct key_pin **out, size_t *n, struct cables_err *err)
{
	static const char sql[] = "SELECT " PIN_COLUMNS " FROM pins ORDER BY address, format";
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

cables_status
keystore_pin_delete(struct keystore *ks, const char *address, size_t *deleted, struct cables_err *err)
{
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

/* ---- downgrade protection (schema 3) ---- */

/*
 * A refresh writes last_seen only when it moved by this much, so that a
 * domain's every lookup is not a write; the memory lasts months.
 */
#define ENCRYPTING_REFRESH_S 60

#define ENCRYPTING_COLUMNS "domain, source, first_seen, last_seen, told"

/* Run one statement with text and integer parameters (NULL ends texts); *changed: rows changed. */
static cables_status
encrypting_exec(struct keystore *ks, const char *sql, const char *const *texts, const long long *ints, size_t nints,
    const char *what, size_t *changed, struct cables_err *err)
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

cables_status
keystore_encrypting_note(struct keystore *ks, const char *domain, const char *source, time_t now,
    struct cables_err *err)
{
	static const char sql[] = "INSERT INTO encrypting_domains (" ENCRYPTING_COLUMNS ") VALUES (?1, ?2, ?3, ?3, 0) "
	    "ON CONFLICT (domain) DO UPDATE SET last_seen = excluded.last_seen, source = excluded.source "
	    "WHERE last_seen <= excluded.last_seen - ?4";
	const char *texts[] = { domain, source, NULL };
	const long long ints[] = { (long long)now, ENCRYPTING_REFRESH_S };

	return encrypting_exec(ks, sql, texts, ints, 2, "remembering an encrypting domain", NULL, err);
}

static void
encrypting_from_row(sqlite3_stmt *stmt, struct encrypting_domain *d)
{
	memset(d, 0, sizeof(*d));
	strlcpy_c(d->domain, (const char *)sqlite3_column_text(stmt, 0), sizeof(d->domain));
	strlcpy_c(d->source, (const char *)sqlite3_column_text(stmt, 1), sizeof(d->source));
	d->first_seen = sqlite3_column_int64(stmt, 2);
	d->last_seen = sqlite3_column_int64(stmt, 3);
	d->told = sqlite3_column_int64(stmt, 4);
}

cables_status
keystore_encrypting_list(struct keystore *ks, const char *domain, struct encrypting_domain **out, size_t *n,
    struct cables_err *err)
{
	static const char all[] = "SELECT " ENCRYPTING_COLUMNS " FROM encrypting_domains ORDER BY domain";
	static const char one[] = "SELECT " ENCRYPTING_COLUMNS " FROM encrypting_domains WHERE domain = ?1";
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

cables_status
keystore_encrypting_get(struct keystore *ks, const char *domain, struct encrypting_domain *out, struct cables_err *err)
{
	struct encrypting_domain *rows;
	size_t n;
	cables_status st;

	memset(out, 0, sizeof(*out));
	if ((st = keystore_encrypting_list(ks, domain, &rows, &n, err)) != CABLES_OK)
		return st;
	if (n == 0)
		st = cables_fail(err, CABLES_ERR_NOTFOUND, "%s is not remembered as encrypting", domain);
	else
		*out = rows[0];
	free(rows);
	return st;
}

cables_status
keystore_encrypting_forget(struct keystore *ks, const char *domain, struct cables_err *err)
{
	static const char sql[] = "DELETE FROM encrypting_domains WHERE domain = ?1";
	const char *texts[] = { domain, NULL };
	size_t changed = 0;
	cables_status st;

	if ((st = encrypting_exec(ks, sql, texts, NULL, 0, "forgetting an encrypting domain", &changed, err)) != CABLES_OK)
		return st;
	if (changed == 0)
		return cables_fail(err, CABLES_ERR_NOTFOUND, "%s is not remembered as encrypting", domain);
	return CABLES_OK;
}

cables_status
keystore_encrypting_tell(struct keystore *ks, const char *domain, time_t now, time_t told_before, bool *first,
    struct cables_err *err)
{
	static const char sql[] = "UPDATE encrypting_domains SET told = ?2 WHERE domain = ?1 AND told < ?3";
	const char *texts[] = { domain, NULL };
	const long long ints[] = { (long long)now, (long long)told_before };
	size_t changed = 0;
	cables_status st;

	*first = false;
	st = encrypting_exec(ks, sql, texts, ints, 2, "noting that the administrator was told", &changed, err);
	*first = st == CABLES_OK && changed == 1;
	return st;
}

cables_status
keystore_key_change_tell(struct keystore *ks, const char *address, const char *format, const char *old,
    const char *new, time_t now, bool *first, struct cables_err *err)
{
	static const char sql[] = "INSERT OR IGNORE INTO key_change_alerts (address, format, old, new, told) "
	    "VALUES (?1, ?2, ?3, ?4, ?5)";
	const char *texts[] = { address, format, old, new, NULL };
	const long long ints[] = { (long long)now };
	size_t changed = 0;
	cables_status st;

	*first = false;
	st = encrypting_exec(ks, sql, texts, ints, 1, "noting a key change alert", &changed, err);
	*first = st == CABLES_OK && changed == 1;
	return st;
}
