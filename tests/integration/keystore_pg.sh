#!/bin/sh
# The key store on a real PostgreSQL 15: the unit tests of the store
# (tests/unit/test_keystore) against it, and cables-keyctl migrate copying
# a SQLite store into it (keys with their sealed private keys, epoch keys,
# pins, held messages, encrypting domains, key change alerts), refusing a
# non-empty target without --force, idempotent with it.
RIG_PORT=12920
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/pg.sh"
PGPORT=$((RIG_PORT + 3))

pg_start "$T/pg" "$PGPORT" || { echo "Bail out! PostgreSQL does not start"; exit 1; }
ok "a private PostgreSQL 15 runs on 127.0.0.1:$PGPORT"

if CABLES_TEST_PG_URL=$PG_URL CMOCKA_MESSAGE_OUTPUT=STDOUT "$BUILD/tests/unit/test_keystore" > "$T/unit.log" 2>&1 &&
    grep -q '^\[  PASSED  \] 25 test(s)' "$T/unit.log"; then
	ok "test_keystore passes against PostgreSQL (25 tests)"
else
	not_ok "test_keystore passes against PostgreSQL" "$(grep -v '^\[ *\(OK\|RUN\)' "$T/unit.log" | head -n 30)"
fi

# The unit tests leave rows behind: migrate into an empty database of its own.
pg_as "$PGBIN/createdb" -h "$PG_DIR" -p "$PGPORT" -U postgres migrated
PG_URL="postgresql://postgres@127.0.0.1:$PGPORT/migrated"
PG_DB=migrated

# A SQLite store with what a Cables host holds: local keys (sealed), a remote key, a pin.
rig_config
keyctl -o generate alice@a.test --smime >/dev/null
keyctl -o generate alice@a.test --pgp >/dev/null
make_cert "$T/bob.pem" bob@b.test 20250101000000Z 20351231000000Z
openssl x509 -in "$T/bob.pem" -out "$T/bob.crt"
keyctl -o import "$T/bob.crt" >/dev/null
/usr/bin/python3 - "$T/keys.db" <<'PY'
import sqlite3, sys
d = sqlite3.connect(sys.argv[1])
fpr = d.execute("SELECT fingerprint FROM keys WHERE address = 'bob@b.test'").fetchone()[0]
d.execute("INSERT INTO pins (address, format, fingerprint, source, first_seen, last_seen, changes)"
          " VALUES ('bob@b.test', 'smime', ?, 'dns-dnssec', 1700000000, 1700000100, 2)", (fpr,))
d.execute("INSERT INTO held (id, token, queue_id, sender, recipients, waiting, content, notify, state, held_at,"
          " next_try, sealed, auth_login) VALUES ('00000000000000c3', '0123456789abcdef0123456789abcdef', '4QxY',"
          " 'alice@a.test', 'carol@c.test', 'carol@c.test\tno key', ?, 1, 'held', 1700000000, 1700000005, 1,"
          " 'alice')",
          (b"Subject: held\r\n\r\n\x00\xffbody",))
d.execute("INSERT INTO encrypting_domains (domain, source, first_seen, last_seen, told)"
          " VALUES ('r.test', 'peer', 1700000000, 1700000300, 1700000400)")
d.execute("INSERT INTO key_change_alerts (address, format, old, new, told)"
          " VALUES ('dave@r.test', 'pgp', 'aa11', 'bb22', 1700000500)")
d.commit()
PY
keyctl -o list > "$T/sqlite.list"
keyctl -o pins > "$T/sqlite.pins" 2>&1
cp "$CONF" "$T/sqlite.conf"

# The same host's configuration on PostgreSQL: KeyStore is all that changes.
sed -i "s|^KeyStore .*|KeyStore $PG_URL|" "$CONF"
"$KEYCTL" -c "$CONF" migrate > "$T/m0.out" 2>&1
check "migrate without --from: usage error (2)" test $? = 2
"$KEYCTL" -c "$T/sqlite.conf" migrate --from "$T/keys.db" > "$T/m0.out" 2>&1
check "migrate into a SQLite KeyStore: refused (1)" test $? = 1
check "... saying why" grep -q "is not a postgresql:// URL" "$T/m0.out"

keyctl migrate --from "$T/keys.db" > "$T/m1.out" 2>&1
check "migrate: exit 0" test $? = 0
check "migrate: says what it copied" grep -q "^copied 3 keys and 1 pin from $T/keys.db into $PG_URL (0 and 0 were there already)" "$T/m1.out"
keyctl -o list > "$T/pg.list"
check "migrate: keyctl list on PostgreSQL shows what it showed on SQLite" cmp "$T/sqlite.list" "$T/pg.list"
keyctl -o pins > "$T/pg.pins" 2>&1
check "migrate: the pin came along" cmp "$T/sqlite.pins" "$T/pg.pins"
check "migrate: the sealed private keys came along sealed" \
	test "$(pg_sql "SELECT count(*) FROM keys WHERE secret_data IS NOT NULL")" = 2
check "... and open with the same KeyStoreKey (export --private)" \
	sh -c "'$KEYCTL' -c '$CONF' -o export alice@a.test --private | grep -q 'PRIVATE KEY'"
check "migrate: the held message came along, its message byte for byte" \
	test "$(pg_sql "SELECT encode(content, 'hex') || ' ' || waiting || ' ' || sealed || ' ' || auth_login FROM held")" = \
	"$(printf 'Subject: held\r\n\r\n\000\377body' | od -An -tx1 | tr -d ' \n') $(printf 'carol@c.test\tno key') 1 alice"
check "... and is counted" grep -q "^copied 1 held message (0 were there already)" "$T/m1.out"
check "migrate: the encrypting domain came along with its times" \
	test "$(pg_sql "SELECT domain || ' ' || source || ' ' || first_seen || ' ' || last_seen || ' ' || told FROM encrypting_domains")" = \
	"r.test peer 1700000000 1700000300 1700000400"
check "migrate: the key change alert came along (not told twice)" \
	test "$(pg_sql "SELECT address || ' ' || format || ' ' || old || ' ' || new || ' ' || told FROM key_change_alerts")" = \
	"dave@r.test pgp aa11 bb22 1700000500"
check "... and are counted" grep -q "^copied 1 encrypting domain and 1 key change alert (0 and 0 were there already)" "$T/m1.out"

keyctl migrate --from "$T/keys.db" > "$T/m2.out" 2>&1
check "migrate again: a non-empty target is refused (1)" test $? = 1
check "... saying so" grep -q "is not empty: give --force" "$T/m2.out"
keyctl migrate --from "$T/keys.db" --force > "$T/m3.out" 2>&1
check "migrate --force again: idempotent (nothing copied twice)" \
	grep -q "^copied 0 keys and 0 pins .*(3 and 1 were there already)" "$T/m3.out"
check "migrate --force again: still 3 keys" test "$(pg_sql "SELECT count(*) FROM keys")" = 3
check "migrate --force again: the held message not twice" grep -q "^copied 0 held messages (1 were there already)" "$T/m3.out"
check "migrate --force again: the domain and the alert not twice" \
	grep -q "^copied 0 encrypting domains and 0 key change alerts (1 and 1 were there already)" "$T/m3.out"
keyctl migrate --from "$T/nonexistent.db" > "$T/m4.out" 2>&1
check "migrate from a missing file: exit 1" test $? = 1
check "... naming it" grep -q "key store $T/nonexistent.db: No such file" "$T/m4.out"

rig_done
