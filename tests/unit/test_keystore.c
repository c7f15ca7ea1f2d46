/*
 * test_keystore - the key store: schema, round trips, refresh rules, threads;
 * against SQLite always, and against PostgreSQL too when CABLES_TEST_PG_URL
 * names an empty database (tests/integration/keystore_pg.sh starts one and
 * runs this program; the database is wiped before each test).
 */
#include "autoconfig.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "helpers.h"
#include "keystore.h"
#include "util.h"

#define NOW ((time_t)1790000000)	/* a fixed clock */

struct fixture {
	char *dir;
	char *path;
};

static int
setup_store_dir(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	fx->dir = test_tempdir();
	fx->path = xasprintf("%s/keys.db", fx->dir);
	*state = fx;
	return 0;
}

static const char *pg_url;	/* CABLES_TEST_PG_URL */

/* Run sql on the test database; NULL result unless it is a single value (then its text, to free). */
static char *
pg_exec(const char *sql)
{
	PGconn *conn = PQconnectdb(pg_url);
	PGresult *res;
	char *v = NULL;

	if (PQstatus(conn) != CONNECTION_OK)
		fail_msg("connecting to %s: %s", pg_url, PQerrorMessage(conn));
	res = PQexec(conn, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQresultErrorMessage(res));
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) == 1)
		v = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	PQfinish(conn);
	return v;
}

/* The same tests on an empty PostgreSQL database: fx->path is its URL. */
static int
setup_pg(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	pg_exec("SET client_min_messages = warning;"
	    "DROP TABLE IF EXISTS keys, pins, held, encrypting_domains, key_change_alerts, cables_schema CASCADE;"
	    " DROP FUNCTION IF EXISTS cables_notify() CASCADE");
	fx->path = xstrdup(pg_url);
	*state = fx;
	return 0;
}

static int
teardown_store_dir(void **state)
{
	struct fixture *fx = *state;

	if (fx->dir != NULL)
		test_rmdir(fx->dir);
	free(fx->dir);
	free(fx->path);
	free(fx);
	return 0;
}

static struct keystore *
open_store(const char *path, bool create)
{
	struct keystore *ks = NULL;
	struct cables_err err = { "" };

	if (keystore_open(&ks, path, create, &err) != CABLES_OK)
		fail_msg("keystore_open %s: %s", path, err.msg);
	assert_non_null(ks);
	return ks;
}

/* A record with blobs that hold NUL and 8-bit bytes; seed makes the fingerprint unique. */
static void
make_record(struct key_record *r, const char *address, const char *format, unsigned seed,
    long long not_after, bool with_secret)
{
	uint8_t digest[32];

	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	strlcpy_c(r->format, format, sizeof(r->format));
	for (size_t i = 0; i < sizeof(digest); i++)
		digest[i] = (uint8_t)(seed * 37 + i * 11 + (seed >> 8));
	digest[0] = (uint8_t)(seed >> 8);
	digest[1] = (uint8_t)seed;
	hex_encode(digest, sizeof(digest), r->fingerprint);
	r->public_len = 40 + seed % 17;
	r->public_data = xmalloc(r->public_len);
	for (size_t i = 0; i < r->public_len; i++)
		r->public_data[i] = (uint8_t)(i == 3 ? 0 : 0xff - i - seed);
	if (with_secret) {
		r->secret_len = 31 + seed % 5;
		r->secret_data = xmalloc(r->secret_len);
		for (size_t i = 0; i < r->secret_len; i++)
			r->secret_data[i] = (uint8_t)(i == 0 ? 0 : 0x80 + i + seed);
	}
	r->not_before = not_after - 365 * 86400;
	r->not_after = not_after;
	r->source = xstrdup("imported");
}

static void
put(struct keystore *ks, const struct key_record *r, time_t now)
{
	struct cables_err err = { "" };

	if (keystore_put(ks, r, now, &err) != CABLES_OK)
		fail_msg("keystore_put %s %s: %s", r->address, r->fingerprint, err.msg);
}

static void
assert_blob(const uint8_t *got, size_t got_len, const uint8_t *want, size_t want_len)
{
	assert_int_equal(got_len, want_len);
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_memory_equal(got, want, want_len);
}

/* Every stored field of got equals r. */
static void
assert_same_key(const struct key_record *got, const struct key_record *r)
{
	assert_string_equal(got->address, r->address);
	assert_string_equal(got->format, r->format);
	assert_string_equal(got->fingerprint, r->fingerprint);
	assert_blob(got->public_data, got->public_len, r->public_data, r->public_len);
	assert_blob(got->secret_data, got->secret_len, r->secret_data, r->secret_len);
	assert_int_equal(got->not_before, r->not_before);
	assert_int_equal(got->not_after, r->not_after);
	assert_string_equal(got->source, r->source);
}

static long long
pragma_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *stmt;
	long long v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		v = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return v;
}

static void
exec_sql(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* The store's schema version, whichever backend. */
static long long
schema_version(const struct fixture *fx)
{
	char *v;
	long long n;

	if (fx->dir != NULL)
		return pragma_int(fx->path, "PRAGMA user_version");
	v = pg_exec("SELECT version FROM cables_schema");
	assert_non_null(v);
	n = atoll(v);
	free(v);
	return n;
}

static void
test_create_sets_wal_and_schema_version(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	sqlite3 *db;
	sqlite3_stmt *stmt;

	assert_int_equal(pragma_int(fx->path, "PRAGMA user_version"), KEYSTORE_SCHEMA_VERSION);
	assert_int_equal(pragma_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = 'keys'"), 1);
	assert_int_equal(sqlite3_open_v2(fx->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "wal");
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	keystore_close(ks);
	keystore_close(NULL);
}

static void
test_open_without_create_needs_the_file(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = (struct keystore *)fx;	/* must be reset to NULL */
	struct cables_err err = { "" };
	struct stat sb;

	assert_int_equal(keystore_open(&ks, fx->path, false, &err), CABLES_ERR_IO);
	assert_null(ks);
	assert_non_null(strstr(err.msg, fx->path));
	assert_int_not_equal(stat(fx->path, &sb), 0);
}

static void
test_create_in_missing_directory_fails(void **state)
{
	struct fixture *fx = *state;
	char *path = xasprintf("%s/no-such-dir/keys.db", fx->dir);
	struct keystore *ks = NULL;
	struct cables_err err = { "" };

	assert_int_equal(keystore_open(&ks, path, true, &err), CABLES_ERR_IO);
	assert_null(ks);
	assert_non_null(strstr(err.msg, path));
	free(path);
}

static void
test_new_store_is_private_whatever_the_umask(void **state)
{
	struct fixture *fx = *state;
	char *wal = xasprintf("%s-wal", fx->path);
	mode_t old = umask(0);
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r;
	struct stat sb;

	umask(old);
	make_record(&r, "kim@example.org", "smime", 70, NOW + 10, true);
	put(ks, &r, NOW);
	assert_int_equal(stat(fx->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* The write-ahead log holds key material too. */
	if (stat(wal, &sb) == 0)
		assert_int_equal(sb.st_mode & 07777, 0600);
	keystore_close(ks);
	key_record_release(&r);
	free(wal);
}

static void
test_put_and_lookup_round_trip_every_field(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record a, b;
	struct key_list l;
	struct cables_err err;

	make_record(&a, "alice@example.org", "smime", 1, NOW + 86400, true);
	make_record(&b, "alice@example.org", "smime", 2, NOW + 2 * 86400, false);
	free(b.source);
	b.source = xstrdup("generated");
	put(ks, &a, NOW);
	put(ks, &b, NOW + 5);
	assert_int_equal(keystore_lookup(ks, "alice@example.org", "smime", &l, &err), CABLES_OK);
	assert_int_equal(l.count, 2);
	assert_same_key(&l.items[0], &b);
	assert_same_key(&l.items[1], &a);
	assert_int_equal(l.items[0].first_seen, NOW + 5);
	assert_int_equal(l.items[0].last_seen, NOW + 5);
	assert_int_equal(l.items[1].first_seen, NOW);
	assert_int_equal(l.items[1].last_seen, NOW);
	assert_true(l.items[0].id > 0 && l.items[1].id > 0);
	assert_int_not_equal(l.items[0].id, l.items[1].id);
	key_list_release(&l);
	assert_null(l.items);
	assert_int_equal(l.count, 0);

	/* The store does no folding: another spelling is another address. */
	assert_int_equal(keystore_lookup(ks, "Alice@example.org", NULL, &l, &err), CABLES_OK);
	assert_int_equal(l.count, 0);
	assert_int_equal(keystore_lookup(ks, "nobody@example.org", NULL, &l, &err), CABLES_OK);
	assert_int_equal(l.count, 0);
	assert_null(l.items);
	key_record_release(&a);
	key_record_release(&b);
	keystore_close(ks);
}

static void
test_lookup_filters_by_format(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record smime, pgp, other;
	struct key_list l;

	make_record(&smime, "bob@example.org", "smime", 10, NOW + 100, false);
	make_record(&pgp, "bob@example.org", "pgp", 11, NOW + 200, false);
	make_record(&other, "carol@example.org", "smime", 12, NOW + 300, false);
	put(ks, &smime, NOW);
	put(ks, &pgp, NOW);
	put(ks, &other, NOW);

	assert_int_equal(keystore_lookup(ks, "bob@example.org", "smime", &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_same_key(&l.items[0], &smime);
	key_list_release(&l);

	assert_int_equal(keystore_lookup(ks, "bob@example.org", "pgp", &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_same_key(&l.items[0], &pgp);
	key_list_release(&l);

	assert_int_equal(keystore_lookup(ks, "bob@example.org", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 2);
	assert_same_key(&l.items[0], &pgp);	/* newer not_after first */
	assert_same_key(&l.items[1], &smime);
	key_list_release(&l);

	assert_int_equal(keystore_lookup(ks, "carol@example.org", "pgp", &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 0);
	key_list_release(&l);
	key_record_release(&smime);
	key_record_release(&pgp);
	key_record_release(&other);
	keystore_close(ks);
}

static void
test_lookup_orders_newest_not_after_first(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	const long long not_after[] = { 2000, 3000, 1000, 3000, 2500 };
	/* Equal not_after: the one stored later comes first. */
	const size_t order[] = { 3, 1, 4, 0, 2 };
	struct key_record r[5];
	struct key_list l;

	for (size_t i = 0; i < 5; i++) {
		make_record(&r[i], "dave@example.org", "smime", (unsigned)(20 + i), NOW + not_after[i], false);
		put(ks, &r[i], NOW);
	}
	assert_int_equal(keystore_lookup(ks, "dave@example.org", "smime", &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(l.items[i].fingerprint, r[order[i]].fingerprint);
	key_list_release(&l);
	for (size_t i = 0; i < 5; i++)
		key_record_release(&r[i]);
	keystore_close(ks);
}

static void
test_put_again_refreshes_but_keeps_first_seen_and_secret(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record bare, with_secret;
	struct key_list l;

	make_record(&bare, "erin@example.org", "smime", 30, NOW + 1000, false);
	make_record(&with_secret, "erin@example.org", "smime", 30, NOW + 1000, true);
	put(ks, &bare, NOW);

	/* Again with a secret: fills it in, refreshes last_seen and source. */
	free(with_secret.source);
	with_secret.source = xstrdup("generated");
	put(ks, &with_secret, NOW + 100);
	assert_int_equal(keystore_lookup(ks, "erin@example.org", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_same_key(&l.items[0], &with_secret);
	assert_int_equal(l.items[0].first_seen, NOW);
	assert_int_equal(l.items[0].last_seen, NOW + 100);
	key_list_release(&l);

	/* Again without a secret: the stored secret stays. */
	free(bare.source);
	bare.source = xstrdup("ldap");
	put(ks, &bare, NOW + 200);
	assert_int_equal(keystore_lookup(ks, "erin@example.org", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_blob(l.items[0].secret_data, l.items[0].secret_len, with_secret.secret_data,
	    with_secret.secret_len);
	assert_string_equal(l.items[0].source, "ldap");
	assert_int_equal(l.items[0].first_seen, NOW);
	assert_int_equal(l.items[0].last_seen, NOW + 200);
	key_list_release(&l);

	key_record_release(&bare);
	key_record_release(&with_secret);
	keystore_close(ks);
}

static void
test_list_with_and_without_data(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r[4];
	struct key_list l;
	/* Ordered by address, format, then newest not_after. */
	const size_t order[] = { 2, 3, 1, 0 };

	make_record(&r[0], "zed@example.org", "smime", 40, NOW + 10, true);
	make_record(&r[1], "amy@example.org", "smime", 41, NOW + 10, false);
	make_record(&r[2], "amy@example.org", "pgp", 42, NOW + 10, true);
	make_record(&r[3], "amy@example.org", "smime", 43, NOW + 20, true);
	for (size_t i = 0; i < 4; i++)
		put(ks, &r[i], NOW);

	assert_int_equal(keystore_list(ks, true, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 4);
	for (size_t i = 0; i < 4; i++)
		assert_same_key(&l.items[i], &r[order[i]]);
	key_list_release(&l);

	assert_int_equal(keystore_list(ks, false, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 4);
	for (size_t i = 0; i < 4; i++) {
		const struct key_record *got = &l.items[i], *want = &r[order[i]];

		assert_string_equal(got->address, want->address);
		assert_string_equal(got->format, want->format);
		assert_string_equal(got->fingerprint, want->fingerprint);
		assert_null(got->public_data);
		assert_null(got->secret_data);
		/* secret_len tells whether there is a private key. */
		assert_int_equal(got->secret_len, want->secret_len);
		assert_int_equal(got->not_after, want->not_after);
		assert_string_equal(got->source, want->source);
		assert_int_equal(got->first_seen, NOW);
	}
	key_list_release(&l);
	for (size_t i = 0; i < 4; i++)
		key_record_release(&r[i]);
	keystore_close(ks);
}

static void
test_list_of_empty_store(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_list l;

	assert_int_equal(keystore_list(ks, true, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 0);
	assert_null(l.items);
	key_list_release(&l);
	keystore_close(ks);
}

static size_t
count_keys(struct keystore *ks, const char *address)
{
	struct key_list l;
	size_t n;

	assert_int_equal(keystore_lookup(ks, address, NULL, &l, NULL), CABLES_OK);
	n = l.count;
	key_list_release(&l);
	return n;
}

static void
test_delete_all_by_prefix_and_not_found(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r[4];
	struct cables_err err = { "" };
	char prefix[16];
	size_t deleted = 99;

	make_record(&r[0], "fay@example.org", "smime", 0x100, NOW + 10, false);
	make_record(&r[1], "fay@example.org", "smime", 0x1ab, NOW + 20, false);
	make_record(&r[2], "fay@example.org", "pgp", 0x200, NOW + 30, false);
	make_record(&r[3], "gus@example.org", "smime", 0x101, NOW + 10, false);
	for (size_t i = 0; i < 4; i++)
		put(ks, &r[i], NOW);
	/* r[0] and r[1] share the first two hex digits, "01". */
	assert_memory_equal(r[0].fingerprint, "01", 2);
	assert_memory_equal(r[1].fingerprint, "01", 2);
	assert_memory_equal(r[2].fingerprint, "02", 2);

	/* A prefix of one key, given in upper case. */
	strlcpy_c(prefix, r[1].fingerprint, 9);
	for (char *c = prefix; *c != '\0'; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	assert_int_equal(keystore_delete(ks, "fay@example.org", prefix, &deleted, &err), CABLES_OK);
	assert_int_equal(deleted, 1);
	assert_int_equal(count_keys(ks, "fay@example.org"), 2);

	/* No match: not found, with a message naming address and prefix. */
	assert_int_equal(keystore_delete(ks, "fay@example.org", "ffff", &deleted, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(deleted, 0);
	assert_non_null(strstr(err.msg, "no key for fay@example.org"));
	assert_non_null(strstr(err.msg, "ffff"));
	/* Another address's key does not match either. */
	assert_int_equal(keystore_delete(ks, "fay@example.org", r[3].fingerprint, &deleted, &err),
	    CABLES_ERR_NOTFOUND);
	assert_int_equal(count_keys(ks, "fay@example.org"), 2);

	/* The full fingerprint works too. */
	assert_int_equal(keystore_delete(ks, "fay@example.org", r[2].fingerprint, &deleted, &err), CABLES_OK);
	assert_int_equal(deleted, 1);

	put(ks, &r[1], NOW);
	assert_int_equal(keystore_delete(ks, "fay@example.org", "01", &deleted, &err), CABLES_OK);
	assert_int_equal(deleted, 2);

	put(ks, &r[0], NOW);
	put(ks, &r[2], NOW);
	assert_int_equal(keystore_delete(ks, "fay@example.org", NULL, &deleted, &err), CABLES_OK);
	assert_int_equal(deleted, 2);
	assert_int_equal(count_keys(ks, "fay@example.org"), 0);
	err.msg[0] = '\0';
	assert_int_equal(keystore_delete(ks, "fay@example.org", NULL, &deleted, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(deleted, 0);
	assert_non_null(strstr(err.msg, "no key for fay@example.org"));
	assert_int_equal(count_keys(ks, "gus@example.org"), 1);

	for (size_t i = 0; i < 4; i++)
		key_record_release(&r[i]);
	keystore_close(ks);
}

static void
test_newer_schema_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct cables_err err = { "" };
	char *sql = xasprintf("PRAGMA user_version = %d", KEYSTORE_SCHEMA_VERSION + 1);
	char *want = xasprintf("schema version %d is newer", KEYSTORE_SCHEMA_VERSION + 1);

	keystore_close(ks);
	exec_sql(fx->path, sql);
	ks = (struct keystore *)fx;
	assert_int_equal(keystore_open(&ks, fx->path, false, &err), CABLES_ERR_DB);
	assert_null(ks);
	assert_non_null(strstr(err.msg, want));
	assert_non_null(strstr(err.msg, fx->path));
	err.msg[0] = '\0';
	assert_int_equal(keystore_open(&ks, fx->path, true, &err), CABLES_ERR_DB);
	assert_non_null(strstr(err.msg, "newer"));
	/* The refused store was left as it was. */
	assert_int_equal(pragma_int(fx->path, "PRAGMA user_version"), KEYSTORE_SCHEMA_VERSION + 1);
	free(sql);
	free(want);
}

static void
test_file_that_is_not_a_database_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = NULL;
	struct cables_err err = { "" };
	FILE *f = fopen(fx->path, "w");

	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite database, just some text\n", f);
	fclose(f);
	assert_int_equal(keystore_open(&ks, fx->path, false, &err), CABLES_ERR_DB);
	assert_null(ks);
	assert_non_null(strstr(err.msg, fx->path));
	assert_int_equal(keystore_open(&ks, fx->path, true, &err), CABLES_ERR_DB);
	assert_null(ks);
}

static void
test_reopen_keeps_keys(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r;
	struct key_list l;

	make_record(&r, "hal@example.org", "smime", 50, NOW + 10, true);
	put(ks, &r, NOW);
	keystore_close(ks);

	ks = open_store(fx->path, false);
	assert_int_equal(keystore_lookup(ks, "hal@example.org", "smime", &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_same_key(&l.items[0], &r);
	assert_int_equal(l.items[0].first_seen, NOW);
	key_list_release(&l);
	keystore_close(ks);

	/* Opening with create on an existing store neither wipes nor duplicates. */
	ks = open_store(fx->path, true);
	assert_int_equal(count_keys(ks, "hal@example.org"), 1);
	assert_int_equal(schema_version(fx), KEYSTORE_SCHEMA_VERSION);
	keystore_close(ks);
	key_record_release(&r);
}

static void
test_put_rejects_unknown_format(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r;
	struct cables_err err = { "" };

	make_record(&r, "ivy@example.org", "x509", 60, NOW + 10, false);
	assert_int_equal(keystore_put(ks, &r, NOW, &err), CABLES_ERR_DB);
	assert_non_null(strstr(err.msg, "storing a key"));
	assert_int_equal(count_keys(ks, "ivy@example.org"), 0);
	key_record_release(&r);
	keystore_close(ks);
}

/* ---- threads ---- */

#define THREADS 4
#define ROUNDS 200

struct worker {
	pthread_t tid;
	struct keystore *ks;
	int index;
	int failures;
	char first_failure[CABLES_ERR_MAX + 64];
};

static void
worker_fail(struct worker *w, const char *what, size_t round, const char *detail)
{
	if (w->failures++ == 0)
		snprintf(w->first_failure, sizeof(w->first_failure), "thread %d round %zu: %s: %s",
		    w->index, round, what, detail);
}

/* No cmocka asserts here: they are not thread-safe; failures are counted. */
static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	char address[64];

	snprintf(address, sizeof(address), "thread%d@example.org", w->index);
	for (size_t i = 0; i < ROUNDS; i++) {
		struct key_record r;
		struct key_list l;
		struct cables_err err = { "" };

		memset(&r, 0, sizeof(r));
		r.address = address;
		strlcpy_c(r.format, "smime", sizeof(r.format));
		snprintf(r.fingerprint, sizeof(r.fingerprint), "%02x%062zx", w->index, i);
		r.public_data = (uint8_t *)r.fingerprint;
		r.public_len = 64;
		r.not_before = 0;
		r.not_after = NOW + (long long)i;	/* each new key is the newest */
		r.source = "thread";
		if (keystore_put(w->ks, &r, NOW + (time_t)i, &err) != CABLES_OK) {
			worker_fail(w, "put", i, err.msg);
			continue;
		}
		if (keystore_lookup(w->ks, address, "smime", &l, &err) != CABLES_OK) {
			worker_fail(w, "lookup", i, err.msg);
			continue;
		}
		if (l.count != i + 1)
			worker_fail(w, "lookup", i, "wrong count");
		else if (strcmp(l.items[0].fingerprint, r.fingerprint) != 0 ||
		    l.items[0].public_len != 64 || memcmp(l.items[0].public_data, r.fingerprint, 64) != 0 ||
		    strcmp(l.items[0].address, address) != 0)
			worker_fail(w, "lookup", i, "newest key is not the one just stored");
		key_list_release(&l);
	}
	return NULL;
}

static void
test_threads_share_one_handle(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct worker w[THREADS];
	struct key_list l;

	for (int i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].ks = ks;
		w[i].index = i;
		assert_int_equal(pthread_create(&w[i].tid, NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		if (w[i].failures != 0)
			fail_msg("%d failures, first: %s", w[i].failures, w[i].first_failure);
	assert_int_equal(keystore_list(ks, false, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, THREADS * ROUNDS);
	key_list_release(&l);
	keystore_close(ks);
}

/* ---- both backends: held messages (schema 3, On-KeyNotFound hold) ---- */

static void
make_held(struct held_record *h, const char *id, long long next_try)
{
	static const uint8_t message[] = "Subject: x\r\n\r\n\0body\xff";

	memset(h, 0, sizeof(*h));
	strlcpy_c(h->id, id, sizeof(h->id));
	strlcpy_c(h->token, "0123456789abcdef0123456789abcdef", sizeof(h->token));
	strlcpy_c(h->queue_id, "4AbCdE", sizeof(h->queue_id));
	h->sender = xstrdup("alice@a.test");
	h->recipients = xstrdup("carol@c.test\ndan@c.test\n");
	h->waiting = xstrdup("carol@c.test\tno key\n");
	h->message = xmalloc(sizeof(message));
	memcpy(h->message, message, sizeof(message));
	h->message_len = sizeof(message);
	h->notify = 1;
	strlcpy_c(h->state, "held", sizeof(h->state));
	h->held_at = NOW;
	h->next_try = next_try;
}

static void
test_held_round_trip_list_update_prune(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct held_record h, got, *list;
	size_t n;

	make_held(&h, "00000000000000a1", NOW + 5);
	assert_int_equal(keystore_held_add(ks, &h, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(ks, h.id, true, &got, NULL), CABLES_OK);
	assert_string_equal(got.token, h.token);
	assert_string_equal(got.queue_id, "4AbCdE");
	assert_string_equal(got.sender, "alice@a.test");
	assert_string_equal(got.recipients, h.recipients);
	assert_string_equal(got.waiting, h.waiting);
	assert_int_equal(got.message_len, h.message_len);
	assert_memory_equal(got.message, h.message, h.message_len);
	assert_int_equal(got.notify, 1);
	assert_string_equal(got.state, "held");
	assert_int_equal(got.held_at, NOW);
	assert_int_equal(got.next_try, NOW + 5);
	assert_null(got.last_error);
	held_record_release(&got);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_OK);
	assert_null(got.message);
	held_record_release(&got);
	/* Due only from next_try on. */
	assert_int_equal(keystore_held_list(ks, true, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 0);
	held_list_release(list, n);
	assert_int_equal(keystore_held_list(ks, true, NOW + 5, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 1);
	held_list_release(list, n);
	/* Released: no longer listed, pruned once its time of release is older than asked. */
	strlcpy_c(h.state, "released", sizeof(h.state));
	h.next_try = NOW + 10;
	h.tries = 2;
	h.last_error = xstrdup("resubmission failed");
	assert_int_equal(keystore_held_update(ks, &h, NULL), CABLES_OK);
	assert_int_equal(keystore_held_list(ks, false, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 0);
	held_list_release(list, n);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_OK);
	assert_int_equal(got.tries, 2);
	assert_string_equal(got.last_error, "resubmission failed");
	held_record_release(&got);
	assert_int_equal(keystore_held_prune(ks, NOW + 10, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_OK);
	held_record_release(&got);
	assert_int_equal(keystore_held_prune(ks, NOW + 11, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_ERR_NOTFOUND);
	assert_int_equal(keystore_held_delete(ks, h.id, NULL), CABLES_ERR_NOTFOUND);
	held_record_release(&h);
	keystore_close(ks);
}

/* HoldMax*'s count: held rows only, all and one sender's, messages and bytes. */
static void
test_held_usage_counts_held_rows(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct held_record a, b, c;
	struct held_usage u;

	assert_int_equal(keystore_held_usage(ks, "alice@a.test", &u, NULL), CABLES_OK);
	assert_int_equal(u.messages + u.bytes + u.sender_messages + u.sender_bytes, 0);
	make_held(&a, "00000000000000c1", NOW);
	make_held(&b, "00000000000000c2", NOW);
	make_held(&c, "00000000000000c3", NOW);
	free(b.sender);
	b.sender = xstrdup("bob@a.test");
	strlcpy_c(c.state, "released", sizeof(c.state));
	assert_int_equal(keystore_held_add(ks, &a, NULL), CABLES_OK);
	assert_int_equal(keystore_held_add(ks, &b, NULL), CABLES_OK);
	assert_int_equal(keystore_held_add(ks, &c, NULL), CABLES_OK);
	assert_int_equal(keystore_held_usage(ks, "alice@a.test", &u, NULL), CABLES_OK);
	assert_int_equal(u.messages, 2);
	assert_int_equal(u.bytes, (long long)(a.message_len + b.message_len));
	assert_int_equal(u.sender_messages, 1);
	assert_int_equal(u.sender_bytes, (long long)a.message_len);
	held_record_release(&a);
	held_record_release(&b);
	held_record_release(&c);
	keystore_close(ks);
}

/*
 * Schema 5: records keyd looks at (no action) and those it handed to the
 * milter (an action) are listed and claimed apart; sealed is kept.
 */
static void
test_held_actions_split_keyd_and_milter(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct held_record h, got, *list;
	bool claimed = true;
	size_t n;

	make_held(&h, "00000000000000d1", NOW);
	h.sealed = 1;
	assert_int_equal(keystore_held_add(ks, &h, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_OK);
	assert_int_equal(got.sealed, 1);
	assert_string_equal(got.action, "");
	held_record_release(&got);
	assert_int_equal(keystore_held_list(ks, HELD_DUE, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 1);
	held_list_release(list, n);
	assert_int_equal(keystore_held_list(ks, HELD_DUE_ACTIONS, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 0);
	held_list_release(list, n);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, HELD_DUE_ACTIONS, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	/* Handed over: the milter's now, keyd's and keyctl's no longer. */
	strlcpy_c(h.action, "release", sizeof(h.action));
	assert_int_equal(keystore_held_update(ks, &h, NULL), CABLES_OK);
	assert_int_equal(keystore_held_get(ks, h.id, false, &got, NULL), CABLES_OK);
	assert_string_equal(got.action, "release");
	held_record_release(&got);
	assert_int_equal(keystore_held_list(ks, HELD_DUE, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 0);
	held_list_release(list, n);
	assert_int_equal(keystore_held_list(ks, HELD_DUE_ACTIONS, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 1);
	held_list_release(list, n);
	assert_int_equal(keystore_held_list(ks, HELD_ALL, NOW, &list, &n, NULL), CABLES_OK);
	assert_int_equal(n, 1);
	held_list_release(list, n);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, HELD_DUE, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, HELD_ALL, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW - 1, HELD_DUE_ACTIONS, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_false(claimed);	/* not due */
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, HELD_DUE_ACTIONS, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	held_record_release(&h);
	keystore_close(ks);
}

static void
test_held_claim_rules(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true), *other = open_store(fx->path, false);
	struct held_record h;
	bool claimed = true;

	make_held(&h, "00000000000000b2", NOW + 5);
	assert_int_equal(keystore_held_add(ks, &h, NULL), CABLES_OK);
	/* Not due yet: keyd's loop leaves it; cables-keyctl held may take it. */
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, true, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW, false, NOW + 60, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	/* Claimed: nobody else, through any handle, until it ends or runs out. */
	assert_int_equal(keystore_held_claim(other, h.id, NOW + 5, true, NOW + 65, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW + 59, false, NOW + 120, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(other, h.id, NOW + 60, true, NOW + 120, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	/* An update ends it; an update under a claim that ended (the milter's re-hold came first) changes nothing. */
	h.tries = 1;
	assert_int_equal(keystore_held_update(other, &h, NULL), CABLES_OK);
	strlcpy_c(h.state, "released", sizeof(h.state));
	assert_int_equal(keystore_held_update_claimed(ks, &h, NOW + 120, NULL), CABLES_ERR_NOTFOUND);
	strlcpy_c(h.state, "held", sizeof(h.state));
	assert_int_equal(keystore_held_claim(ks, h.id, NOW + 61, true, NOW + 120, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	assert_int_equal(keystore_held_update_claimed(ks, &h, NOW + 121, NULL), CABLES_ERR_NOTFOUND);
	assert_int_equal(keystore_held_update_claimed(ks, &h, NOW + 120, NULL), CABLES_OK);
	assert_int_equal(keystore_held_claim(ks, h.id, NOW + 61, true, NOW + 120, &claimed, NULL), CABLES_OK);
	assert_true(claimed);
	/* A released (or missing) record is never claimed. */
	strlcpy_c(h.state, "released", sizeof(h.state));
	assert_int_equal(keystore_held_update(ks, &h, NULL), CABLES_OK);
	assert_int_equal(keystore_held_claim(other, h.id, NOW + 62, false, NOW + 120, &claimed, NULL), CABLES_OK);
	assert_false(claimed);
	assert_int_equal(keystore_held_claim(other, "00000000000000ff", NOW, false, NOW + 60, &claimed, NULL),
	    CABLES_OK);
	assert_false(claimed);
	held_record_release(&h);
	keystore_close(other);
	keystore_close(ks);
}

#define CLAIMERS 6

struct claimer {
	pthread_t tid;
	const char *path;
	pthread_barrier_t *start;
	int claimed;		/* how many of the records it took */
	cables_status st;
};

/* One process's keyd: its own handle, every record due at once. */
static void *
claimer_run(void *arg)
{
	struct claimer *c = arg;
	struct keystore *ks = NULL;
	struct cables_err err;
	char id[KEYSTORE_HELD_ID_LEN + 1];
	bool claimed;

	c->st = keystore_open(&ks, c->path, false, &err);
	pthread_barrier_wait(c->start);
	for (int i = 0; i < 20 && c->st == CABLES_OK; i++) {
		snprintf(id, sizeof(id), "%016x", (unsigned)i);
		c->st = keystore_held_claim(ks, id, NOW, true, NOW + 600, &claimed, &err);
		c->claimed += claimed;
	}
	keystore_close(ks);
	return NULL;
}

static void
test_held_claim_is_won_once_among_stores(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct claimer c[CLAIMERS];
	pthread_barrier_t start;
	struct held_record h;
	char id[KEYSTORE_HELD_ID_LEN + 1];
	int total = 0;

	for (int i = 0; i < 20; i++) {
		snprintf(id, sizeof(id), "%016x", (unsigned)i);
		make_held(&h, id, NOW);
		assert_int_equal(keystore_held_add(ks, &h, NULL), CABLES_OK);
		held_record_release(&h);
	}
	pthread_barrier_init(&start, NULL, CLAIMERS);
	for (int i = 0; i < CLAIMERS; i++) {
		c[i] = (struct claimer){ .path = fx->path, .start = &start };
		assert_int_equal(pthread_create(&c[i].tid, NULL, claimer_run, &c[i]), 0);
	}
	for (int i = 0; i < CLAIMERS; i++) {
		assert_int_equal(pthread_join(c[i].tid, NULL), 0);
		assert_int_equal(c[i].st, CABLES_OK);
		total += c[i].claimed;
	}
	pthread_barrier_destroy(&start);
	assert_int_equal(total, 20);	/* each record by exactly one */
	keystore_close(ks);
}

/* ---- both backends: copies, names ---- */

static void
test_restore_keeps_times_and_is_idempotent(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r, other;
	struct key_list l;
	bool added = false;

	make_record(&r, "jo@example.org", "pgp", 70, NOW + 10, true);
	r.first_seen = NOW - 1000;
	r.last_seen = NOW - 10;
	assert_int_equal(keystore_restore(ks, &r, &added, NULL), CABLES_OK);
	assert_true(added);
	assert_int_equal(keystore_restore(ks, &r, &added, NULL), CABLES_OK);
	assert_false(added);
	/* A row it holds is never overwritten by a copy. */
	make_record(&other, "jo@example.org", "pgp", 70, NOW + 99, false);
	assert_int_equal(keystore_restore(ks, &other, &added, NULL), CABLES_OK);
	assert_false(added);
	assert_int_equal(keystore_lookup(ks, "jo@example.org", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	assert_same_key(&l.items[0], &r);
	assert_int_equal(l.items[0].first_seen, NOW - 1000);
	assert_int_equal(l.items[0].last_seen, NOW - 10);
	key_list_release(&l);
	key_record_release(&r);
	key_record_release(&other);
	keystore_close(ks);
}

static void
test_spec_redaction_hides_passwords(void **state)
{
	static const struct { const char *spec, *want; } cases[] = {
		{ "/var/lib/cables/keys.db", "/var/lib/cables/keys.db" },
		{ "postgresql://cables@db.example/cables", "postgresql://cables@db.example/cables" },
		{ "postgresql://cables:s3cret@db.example:5432/cables", "postgresql://cables:***@db.example:5432/cables" },
		{ "postgres://u:p%40ss@h/d?sslmode=require", "postgresql://u:***@h/d" },
		{ "postgresql://h/d?user=u&password=s3cret", "postgresql://u:***@h/d" },
		/* libpq's errors would quote these whole (bad percent-encoding; a '/' in the password). */
		{ "postgresql://cables:50%off@h/db", "postgresql://(a URL libpq cannot parse)" },
		{ "postgresql://cables:Ab/cd+ef@h/db", "postgresql://(a URL libpq cannot parse)" },
	};
	static const char *const unparsable[] = {
		"postgresql://cables:50%off@h/db",
		"postgresql://cables:Ab/cd+ef@h/db",
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		keystore_spec_redact(cases[i].spec, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
	/* Opening one fails without quoting it. */
	for (size_t i = 0; i < sizeof(unparsable) / sizeof(unparsable[0]); i++) {
		struct keystore *ks = NULL;
		struct cables_err err = { "" };

		assert_int_equal(keystore_open(&ks, unparsable[i], true, &err), CABLES_ERR_DB);
		assert_null(ks);
		assert_null(strstr(err.msg, "off"));
		assert_null(strstr(err.msg, "cd+ef"));
	}
	assert_true(keystore_spec_is_url("postgres://h/d"));
	assert_false(keystore_spec_is_url("/postgresql://h/d"));
}

struct heard {
	char addr[64][64];
	size_t n;
	bool all;
};

static void
hear(void *arg, const char *address)
{
	struct heard *h = arg;

	if (address == NULL)
		h->all = true;
	else if (h->n < 64)
		strlcpy_c(h->addr[h->n++], address, sizeof(h->addr[0]));
}

static bool
heard_of(const struct heard *h, const char *address)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->addr[i], address) == 0)
			return true;
	return false;
}

/* SQLite tells of no changes, and says so: keyd then relies on reading the store per lookup. */
static void
test_sqlite_tells_no_changes(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct heard h = { .n = 0 };
	size_t deleted;
	struct key_record r;

	make_record(&r, "mo@example.org", "smime", 95, NOW + 10, false);
	put(ks, &r, NOW);
	assert_int_equal(keystore_delete(ks, "mo@example.org", NULL, &deleted, NULL), CABLES_OK);
	assert_int_equal(keystore_changes_fd(ks), -1);
	assert_int_equal(keystore_changes_take(ks, hear, &h, NULL), CABLES_OK);
	assert_int_equal(h.n, 0);
	assert_string_equal(keystore_type(ks), "sqlite");
	key_record_release(&r);
	keystore_close(ks);
}

/* ---- PostgreSQL only ---- */

static void
test_pg_newer_schema_is_refused(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct cables_err err = { "" };
	char sql[96];

	keystore_close(ks);
	snprintf(sql, sizeof(sql), "UPDATE cables_schema SET version = %d", KEYSTORE_SCHEMA_VERSION + 1);
	free(pg_exec(sql));
	ks = NULL;
	assert_int_equal(keystore_open(&ks, fx->path, true, &err), CABLES_ERR_DB);
	assert_null(ks);
	assert_non_null(strstr(err.msg, "newer than this program"));
	assert_int_equal(keystore_open(&ks, fx->path, false, &err), CABLES_ERR_DB);
	assert_int_equal(schema_version(fx), KEYSTORE_SCHEMA_VERSION + 1);
}

static void
test_pg_open_without_create_needs_the_schema(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = NULL;
	struct cables_err err = { "" };

	assert_int_equal(keystore_open(&ks, fx->path, false, &err), CABLES_ERR_DB);
	assert_null(ks);
	assert_non_null(strstr(err.msg, "cables_schema"));
}

static void
test_pg_password_never_in_a_message(void **state)
{
	const char *at = strchr(pg_url, '@');
	const char *slash = strrchr(pg_url, '/');
	struct keystore *ks = NULL;
	struct cables_err err = { "" };
	char *url;

	assert_non_null(at);
	url = xasprintf("%.*s:hunter2%.*s/no_such_db", (int)(at - pg_url), pg_url, (int)(slash - at), at);
	assert_int_equal(keystore_open(&ks, url, true, &err), CABLES_ERR_DB);
	assert_null(ks);
	assert_null(strstr(err.msg, "hunter2"));
	assert_non_null(strstr(err.msg, ":***@"));
	assert_non_null(strstr(err.msg, "no_such_db"));
	free(url);
}

/* Take b's notifications until addr is heard of: up to 2 s of 20 ms polls (NOTIFY is delivered at commit). */
static void
hear_of(struct keystore *b, struct heard *h, const char *addr)
{
	for (int i = 0; i < 100 && !heard_of(h, addr); i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		assert_int_equal(keystore_changes_take(b, hear, h, NULL), CABLES_OK);
		nanosleep(&ts, NULL);
	}
	assert_true(heard_of(h, addr));
}

/*
 * What one handle deletes, or a pin that moves to another key, another that
 * listens hears of (keyd's caches follow it); a new pin, or one whose
 * last_seen a discovery refreshes, is not told (each NOTIFY drops cached
 * answers, and any discovery refreshes a pin).
 */
static void
test_pg_deletes_and_pins_are_told_to_other_handles(void **state)
{
	struct fixture *fx = *state;
	struct keystore *a = open_store(fx->path, true), *b = open_store(fx->path, true);
	struct heard h = { .n = 0 };
	struct key_pin pin = { .address = "pat@example.org", .format = "smime", .source = "dns-smimea" };
	struct key_record r, other;
	size_t deleted;

	assert_int_equal(keystore_changes_take(b, hear, &h, NULL), CABLES_OK);
	assert_true(keystore_changes_fd(b) >= 0);
	assert_int_equal(h.n, 0);
	make_record(&r, "kim@example.org", "smime", 80, NOW + 10, false);
	make_record(&other, "pat@example.org", "smime", 81, NOW + 10, false);
	put(a, &r, NOW);
	strlcpy_c(pin.fingerprint, r.fingerprint, sizeof(pin.fingerprint));
	assert_int_equal(keystore_pin_set(a, &pin, NULL), CABLES_OK);
	pin.last_seen = NOW + 5;
	assert_int_equal(keystore_pin_set(a, &pin, NULL), CABLES_OK);
	assert_int_equal(keystore_delete(a, "kim@example.org", NULL, &deleted, NULL), CABLES_OK);
	/* Notifications come in commit order: by the delete's, the pin's would have come. */
	hear_of(b, &h, "kim@example.org");
	assert_false(heard_of(&h, "pat@example.org"));
	strlcpy_c(pin.fingerprint, other.fingerprint, sizeof(pin.fingerprint));
	assert_int_equal(keystore_pin_set(a, &pin, NULL), CABLES_OK);
	hear_of(b, &h, "pat@example.org");
	assert_false(h.all);
	key_record_release(&r);
	key_record_release(&other);
	keystore_close(a);
	keystore_close(b);
}

/* A connection the server dropped is made again by the next operation, which succeeds. */
static void
test_pg_reconnects_after_losing_the_connection(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r;
	struct heard h = { .n = 0 };

	make_record(&r, "lee@example.org", "smime", 90, NOW + 10, false);
	put(ks, &r, NOW);
	assert_int_equal(keystore_changes_take(ks, hear, &h, NULL), CABLES_OK);
	free(pg_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
	assert_int_equal(count_keys(ks, "lee@example.org"), 1);
	/*
	 * After a reconnect anything may have changed unheard: the listener is
	 * told so.  The server ends the connections a moment after it said it
	 * would: up to 2 s of 20 ms polls, as keyd polls.
	 */
	for (int i = 0; i < 100 && !h.all; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		assert_int_equal(keystore_changes_take(ks, hear, &h, NULL), CABLES_OK);
		nanosleep(&ts, NULL);
	}
	assert_true(h.all);
	key_record_release(&r);
	keystore_close(ks);
}

/*
 * A delete run again after its connection was lost that finds nothing may
 * have deleted it the first time (the reply was lost): outcome unknown,
 * not "no such key".
 */
static void
test_pg_delete_run_again_is_no_notfound(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	struct cables_err err = { "" };
	size_t deleted = 7;

	free(pg_exec("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
	    " WHERE datname = current_database() AND pid <> pg_backend_pid()"));
	nanosleep(&ts, NULL);	/* the server ends them a moment after it said it would */
	assert_int_equal(keystore_delete(ks, "nobody@example.org", NULL, &deleted, &err), CABLES_ERR_DB);
	assert_non_null(strstr(err.msg, "outcome unknown"));
	/* On a connection that stays, "no such key" is that. */
	assert_int_equal(keystore_delete(ks, "nobody@example.org", NULL, &deleted, NULL), CABLES_ERR_NOTFOUND);
	keystore_close(ks);
}

/*
 * Downgrade protection (schema 4): a domain remembered, refreshed at most
 * once a minute with first_seen kept; told once until told_before passes;
 * forgotten; key change alerts once per pair; all kept over a reopen.
 */
static void
test_encrypting_domains_and_alerts(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct encrypting_domain d, *rows;
	struct cables_err err;
	size_t n;
	bool first;

	assert_int_equal(keystore_encrypting_get(ks, "b.test", &d, &err), CABLES_ERR_NOTFOUND);
	assert_int_equal(keystore_encrypting_note(ks, "b.test", "dns-dnssec", NOW, NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_note(ks, "b.test", "peer", NOW + 30, NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_get(ks, "b.test", &d, NULL), CABLES_OK);
	assert_int_equal(d.last_seen, NOW);	/* within a minute: not written */
	assert_string_equal(d.source, "dns-dnssec");
	assert_int_equal(keystore_encrypting_note(ks, "b.test", "peer", NOW + 61, NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_get(ks, "b.test", &d, NULL), CABLES_OK);
	assert_int_equal(d.first_seen, NOW);
	assert_int_equal(d.last_seen, NOW + 61);
	assert_string_equal(d.source, "peer");
	assert_int_equal(d.told, 0);

	assert_int_equal(keystore_encrypting_tell(ks, "b.test", NOW + 100, NOW + 100 - 86400, &first, NULL), CABLES_OK);
	assert_true(first);
	assert_int_equal(keystore_encrypting_tell(ks, "b.test", NOW + 200, NOW + 200 - 86400, &first, NULL), CABLES_OK);
	assert_false(first);
	assert_int_equal(keystore_encrypting_tell(ks, "c.test", NOW + 200, NOW, &first, NULL), CABLES_OK);
	assert_false(first);	/* not remembered: nothing to tell */
	keystore_close(ks);

	ks = open_store(fx->path, false);
	assert_int_equal(keystore_encrypting_tell(ks, "b.test", NOW + 300, NOW + 300 - 86400, &first, NULL), CABLES_OK);
	assert_false(first);	/* told before the restart */
	assert_int_equal(keystore_encrypting_tell(ks, "b.test", NOW + 90000, NOW + 90000 - 86400, &first, NULL),
	    CABLES_OK);
	assert_true(first);	/* told longer ago than told_before */
	/* The notice could not be sent: told is what it was, and the next occurrence tells. */
	assert_int_equal(keystore_encrypting_untell(ks, "b.test", NOW + 90000, NOW + 100, NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_get(ks, "b.test", &d, NULL), CABLES_OK);
	assert_int_equal(d.told, NOW + 100);
	assert_int_equal(keystore_encrypting_tell(ks, "b.test", NOW + 90001, NOW + 90001 - 86400, &first, NULL),
	    CABLES_OK);
	assert_true(first);
	assert_int_equal(keystore_encrypting_note(ks, "a.test", "dns-dnssec", NOW, NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_list(ks, NULL, &rows, &n, NULL), CABLES_OK);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].domain, "a.test");
	assert_string_equal(rows[1].domain, "b.test");
	free(rows);
	assert_int_equal(keystore_encrypting_forget(ks, "b.test", NULL), CABLES_OK);
	assert_int_equal(keystore_encrypting_forget(ks, "b.test", &err), CABLES_ERR_NOTFOUND);
	assert_string_equal(err.msg, "b.test is not remembered as encrypting");

	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "smime", "aa", "bb", NOW, &first, NULL), CABLES_OK);
	assert_true(first);
	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "smime", "aa", "bb", NOW + 1, &first, NULL), CABLES_OK);
	assert_false(first);
	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "smime", "bb", "cc", NOW + 2, &first, NULL), CABLES_OK);
	assert_true(first);
	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "pgp", "aa", "bb", NOW + 2, &first, NULL), CABLES_OK);
	assert_true(first);
	/* Not sent after all: undone, told next time. */
	assert_int_equal(keystore_key_change_untell(ks, "x@b.test", "pgp", "aa", "bb", NULL), CABLES_OK);
	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "pgp", "aa", "bb", NOW + 2, &first, NULL), CABLES_OK);
	assert_true(first);
	/* Pruned: the alerts told before NOW + 2 go, and that pair may be told again. */
	assert_int_equal(keystore_key_change_prune(ks, NOW + 2, NULL), CABLES_OK);
	{
		struct key_change_alert *alerts;

		assert_int_equal(keystore_key_change_list(ks, &alerts, &n, NULL), CABLES_OK);
		assert_int_equal(n, 2);
		assert_int_equal(alerts[0].told, NOW + 2);
		assert_int_equal(alerts[1].told, NOW + 2);
		free(alerts);
	}
	assert_int_equal(keystore_key_change_tell(ks, "x@b.test", "smime", "aa", "bb", NOW + 3, &first, NULL), CABLES_OK);
	assert_true(first);
	keystore_close(ks);
}

/*
 * A store of schema 4 with a message held in the clear is migrated on
 * open: the row is kept (its message byte for byte, under the column's new
 * name), marked not sealed, without an action or a login; both backends.
 */
static void
test_store_of_schema_4_keeps_held_rows(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct held_record h;

	keystore_close(ks);
	if (fx->dir != NULL)
		exec_sql(fx->path, "DROP TABLE held; CREATE TABLE held (id TEXT PRIMARY KEY, token TEXT NOT NULL, "
		    "queue_id TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL, waiting TEXT NOT NULL, "
		    "message BLOB NOT NULL, notify INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN ('held', "
		    "'released')), held_at INTEGER NOT NULL, next_try INTEGER NOT NULL, tries INTEGER NOT NULL DEFAULT 0, "
		    "notified INTEGER NOT NULL DEFAULT 0, last_error TEXT, claimed_until INTEGER NOT NULL DEFAULT 0);"
		    "INSERT INTO held (id, token, queue_id, sender, recipients, waiting, message, notify, state, held_at, "
		    "next_try) VALUES ('00000000000000e1', '0123456789abcdef0123456789abcdef', 'Q4', 'alice@a.test', "
		    "'carol@c.test\n', 'carol@c.test\tno key\n', X'4869000d0a', 1, 'held', 1, 2);"
		    "PRAGMA user_version = 4");
	else
		free(pg_exec("DROP TABLE held; CREATE TABLE held (id TEXT PRIMARY KEY, token TEXT NOT NULL, "
		    "queue_id TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL, waiting TEXT NOT NULL, "
		    "message BYTEA NOT NULL, notify BIGINT NOT NULL, state TEXT NOT NULL CHECK (state IN ('held', "
		    "'released')), held_at BIGINT NOT NULL, next_try BIGINT NOT NULL, tries BIGINT NOT NULL DEFAULT 0, "
		    "notified BIGINT NOT NULL DEFAULT 0, last_error TEXT, claimed_until BIGINT NOT NULL DEFAULT 0);"
		    "INSERT INTO held (id, token, queue_id, sender, recipients, waiting, message, notify, state, held_at, "
		    "next_try) VALUES ('00000000000000e1', '0123456789abcdef0123456789abcdef', 'Q4', 'alice@a.test', "
		    "'carol@c.test\n', 'carol@c.test\tno key\n', decode('4869000d0a', 'hex'), 1, 'held', 1, 2);"
		    "UPDATE cables_schema SET version = 4"));
	assert_int_equal(schema_version(fx), 4);
	ks = open_store(fx->path, true);
	assert_int_equal(schema_version(fx), KEYSTORE_SCHEMA_VERSION);
	assert_int_equal(keystore_held_get(ks, "00000000000000e1", true, &h, NULL), CABLES_OK);
	assert_int_equal(h.sealed, 0);
	assert_string_equal(h.action, "");
	assert_string_equal(h.auth_login, "");
	assert_int_equal(h.message_len, 5);
	assert_int_equal(h.stored_len, 5);
	assert_memory_equal(h.message, "Hi\0\r\n", 5);
	assert_string_equal(h.queue_id, "Q4");
	held_record_release(&h);
	keystore_close(ks);
}

/*
 * A store of schema 2 (keys and pins: what a release before the held and
 * downgrade tables made) is migrated on open, its keys kept, and the new
 * tables work; both backends.
 */
static void
test_store_of_schema_2_is_migrated(void **state)
{
	struct fixture *fx = *state;
	struct keystore *ks = open_store(fx->path, true);
	struct key_record r;
	struct key_list l;
	struct held_record h;
	bool first;

	make_record(&r, "old@example.org", "smime", 90, NOW + 10, false);
	assert_int_equal(keystore_put(ks, &r, NOW, NULL), CABLES_OK);
	keystore_close(ks);
	/* Back to version 2, as that release left it. */
	if (fx->dir != NULL)
		exec_sql(fx->path, "DROP TABLE held; DROP TABLE encrypting_domains; DROP TABLE key_change_alerts;"
		    "PRAGMA user_version = 2");
	else
		free(pg_exec("DROP TABLE held, encrypting_domains, key_change_alerts;"
		    " UPDATE cables_schema SET version = 2"));
	assert_int_equal(schema_version(fx), 2);
	ks = open_store(fx->path, true);
	assert_int_equal(schema_version(fx), KEYSTORE_SCHEMA_VERSION);
	assert_int_equal(keystore_lookup(ks, "old@example.org", NULL, &l, NULL), CABLES_OK);
	assert_int_equal(l.count, 1);
	key_list_release(&l);
	make_held(&h, "00000000000000d4", NOW);
	assert_int_equal(keystore_held_add(ks, &h, NULL), CABLES_OK);
	held_record_release(&h);
	assert_int_equal(keystore_encrypting_note(ks, "example.org", "dns-dnssec", NOW, NULL), CABLES_OK);
	assert_int_equal(keystore_key_change_tell(ks, "old@example.org", "smime", "aa", "bb", NOW, &first, NULL),
	    CABLES_OK);
	assert_true(first);
	key_record_release(&r);
	keystore_close(ks);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup_store_dir, teardown_store_dir)

#define PG(t) cmocka_unit_test_setup_teardown(t, setup_pg, teardown_store_dir)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		FX(test_create_sets_wal_and_schema_version),
		FX(test_open_without_create_needs_the_file),
		FX(test_create_in_missing_directory_fails),
		FX(test_new_store_is_private_whatever_the_umask),
		FX(test_put_and_lookup_round_trip_every_field),
		FX(test_lookup_filters_by_format),
		FX(test_lookup_orders_newest_not_after_first),
		FX(test_put_again_refreshes_but_keeps_first_seen_and_secret),
		FX(test_list_with_and_without_data),
		FX(test_list_of_empty_store),
		FX(test_delete_all_by_prefix_and_not_found),
		FX(test_newer_schema_is_refused),
		FX(test_file_that_is_not_a_database_is_refused),
		FX(test_reopen_keeps_keys),
		FX(test_put_rejects_unknown_format),
		FX(test_threads_share_one_handle),
		FX(test_restore_keeps_times_and_is_idempotent),
		FX(test_held_round_trip_list_update_prune),
		FX(test_held_claim_rules),
		FX(test_held_actions_split_keyd_and_milter),
		FX(test_store_of_schema_4_keeps_held_rows),
		FX(test_held_usage_counts_held_rows),
		FX(test_held_claim_is_won_once_among_stores),
		FX(test_encrypting_domains_and_alerts),
		FX(test_store_of_schema_2_is_migrated),
		FX(test_sqlite_tells_no_changes),
		cmocka_unit_test(test_spec_redaction_hides_passwords),
	};
	/* The backend-neutral tests again, on PostgreSQL, and its own. */
	const struct CMUnitTest pg_tests[] = {
		PG(test_put_and_lookup_round_trip_every_field),
		PG(test_lookup_filters_by_format),
		PG(test_lookup_orders_newest_not_after_first),
		PG(test_put_again_refreshes_but_keeps_first_seen_and_secret),
		PG(test_list_with_and_without_data),
		PG(test_list_of_empty_store),
		PG(test_delete_all_by_prefix_and_not_found),
		PG(test_reopen_keeps_keys),
		PG(test_put_rejects_unknown_format),
		PG(test_threads_share_one_handle),
		PG(test_restore_keeps_times_and_is_idempotent),
		PG(test_held_round_trip_list_update_prune),
		PG(test_held_claim_rules),
		PG(test_held_actions_split_keyd_and_milter),
		PG(test_store_of_schema_4_keeps_held_rows),
		PG(test_held_usage_counts_held_rows),
		PG(test_held_claim_is_won_once_among_stores),
		PG(test_encrypting_domains_and_alerts),
		PG(test_store_of_schema_2_is_migrated),
		PG(test_pg_newer_schema_is_refused),
		PG(test_pg_open_without_create_needs_the_schema),
		PG(test_pg_password_never_in_a_message),
		PG(test_pg_deletes_and_pins_are_told_to_other_handles),
		PG(test_pg_reconnects_after_losing_the_connection),
		PG(test_pg_delete_run_again_is_no_notfound),
	};
	int failed;

	pg_url = getenv("CABLES_TEST_PG_URL");
	if (pg_url != NULL && pg_url[0] != '\0')
		return cmocka_run_group_tests_name("keystore-postgresql", pg_tests, NULL, NULL);
	failed = cmocka_run_group_tests_name("keystore", tests, NULL, NULL);
	return failed;
}
