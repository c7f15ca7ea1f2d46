#!/bin/sh
# Two MXes of a.test (Postfix + cables-milter + cables-keyd + keyholder each)
# on one PostgreSQL key store: a key imported on one is used by the other;
# a key deleted on one is refused by both within a second (keyd reads the
# shared store and hears of the deletion by NOTIFY); PostgreSQL stopped:
# mail temp-fails, nothing leaks in plaintext, nothing is lost, and both
# recover by themselves when it is back.  The URL's password never shows
# in a log or in ps.
RIG_PORT=12930
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/pg.sh"
PGPORT=$((RIG_PORT + 3))
M1PORT=$((RIG_PORT + 4))	# m1's Postfix (and +5)
M2PORT=$((RIG_PORT + 6))	# m2's Postfix (and +7)
DNSPORT=$((RIG_PORT + 8))	# nothing answers there: no key comes from DNS
KEYD=$BUILD/cables-keyd
SECRET=pw-Zq81xV

pg_start "$T/pg" "$PGPORT" || { echo "Bail out! PostgreSQL does not start"; exit 1; }
# trust authentication ignores the password: it is there to be hidden.
URL="postgresql://postgres:$SECRET@127.0.0.1:$PGPORT/cables"
rig_sink
$MAILTOOL make "$T/plain.eml" plain

for m in m1 m2; do
	inst_config "$m" a.test "Policy b.test require" "Resolver 127.0.0.1@$DNSPORT" "LookupTimeout 2s"
	sed -i -e "s|^KeydSocket none|KeydSocket $T/$m/keyd.sock|" -e "s|^KeyStore .*|KeyStore $URL|" \
		-e "s|^KeyStoreKey .*|KeyStoreKey $T/store.key|" "$T/$m/cables.conf"
done
inst_postfix m1 a.test "$M1PORT" "$SINK_PORT" "alice"
inst_postfix m2 a.test "$M2PORT" "$SINK_PORT" "alice"

keyd_start() {	# NAME
	"$KEYD" -f -c "$T/$1/cables.conf" 2>>"$T/$1/keyd.stderr" &
	echo $! > "$T/$1/keyd.pid"
	echo $! >> "$T/pids"
	wait_for 10 test -S "$T/$1/keyd.sock"
}
# has_key NAME ADDRESS: NAME's keyd answers a key for ADDRESS.
has_key() { keyd_ask "$T/$1/keyd.sock" request=lookup "address=$2" && grep -q '^key=' "$T/reply"; }
no_key() { keyd_ask "$T/$1/keyd.sock" request=lookup "address=$2" && ! grep -q '^key=' "$T/reply"; }
# wire_of ADDRESS: the newest sink file for ADDRESS.
wire_of() { grep -l "^X-Rcpt-Args: <$1>" "$SINK"/* 2>/dev/null | tail -n 1; }

inst_keyctl m1 -o list >/dev/null 2>&1	# makes the schema
for m in m1 m2; do
	keyd_start "$m"
	check "$m: keyd runs on the shared store" test -S "$T/$m/keyd.sock"
	inst_milter "$m"
done

# A certificate for bob@b.test imported on m1 only.
make_cert "$T/bob.pem" bob@b.test 20250101000000Z 20351231000000Z
openssl x509 -in "$T/bob.pem" -out "$T/bob.crt"
make_cert "$T/carol.pem" carol@b.test 20250101000000Z 20351231000000Z
openssl x509 -in "$T/carol.pem" -out "$T/carol.crt"
inst_keyctl m1 import "$T/bob.crt" > "$T/import.out" 2>&1
check "m1: import bob's certificate" grep -q "bob@b.test" "$T/import.out"
inst_keyctl m1 import "$T/carol.crt" >/dev/null 2>&1
check "m2's keyd answers the key imported on m1" has_key m2 bob@b.test

inst_send "$M2PORT" "$T/plain.eml" alice@a.test bob@b.test
check "mail through m2 to bob: accepted" test $? = 0
check "... and relayed" wait_for 30 sh -c "grep -lq '^X-Rcpt-Args: <bob@b.test>' $SINK/* 2>/dev/null"
wire=$(wire_of bob@b.test)
check "... encrypted with the key imported on m1 (bob's key opens it)" \
	sh -c "$MAILTOOL strip-sink '$wire' > '$T/w1.eml' && openssl cms -decrypt -in '$T/w1.eml' -inkey '$T/bob.pem' | grep -q PLAINTEXT-MARKER"

# Deleted on m1: both refuse it within a second.
check "m1's keyd answers bob's key before the deletion" has_key m1 bob@b.test
check "m2's keyd answers bob's key before the deletion" has_key m2 bob@b.test
inst_keyctl m1 delete bob@b.test > "$T/delete.out" 2>&1
t0=$(date +%s%N)
check "m1: delete bob's key" grep -q "deleted 1 key for bob@b.test" "$T/delete.out"
# Both asked at once, right after: a lookup reads the store when it starts, and then
# (no key left) asks DNS, which takes LookupTimeout here; the answer is what counts.
mkdir -p "$T/q1" "$T/q2"
(T=$T/q1; keyd_ask "$T/../m1/keyd.sock" request=lookup address=bob@b.test) &
q1=$!
(T=$T/q2; keyd_ask "$T/../m2/keyd.sock" request=lookup address=bob@b.test) &
q2=$!
t1=$(date +%s%N)
wait "$q1" "$q2"
check "m1's keyd refuses the deleted key" sh -c "grep -q '^result=' '$T/q1/reply' && ! grep -q '^key=' '$T/q1/reply'"
check "m2's keyd refuses the key deleted on m1" sh -c "grep -q '^result=' '$T/q2/reply' && ! grep -q '^key=' '$T/q2/reply'"
check "... both asked within a second of the deletion ($(( (t1 - t0) / 1000000 )) ms)" test $(( (t1 - t0) / 1000000 )) -lt 1000
inst_send "$M2PORT" "$T/plain.eml" alice@a.test bob@b.test
check "mail through m2 to bob after the deletion: 4xx (require, never plaintext)" test $? = 4

# PostgreSQL stopped: temp-fail on both, nothing leaks, a submitted message waits.
pg_stop
before=$(ls "$SINK" | wc -l)
inst_send "$M1PORT" "$T/plain.eml" alice@a.test carol@b.test
check "PostgreSQL down: mail through m1 to carol: 4xx" test $? = 4
inst_send "$M2PORT" "$T/plain.eml" alice@a.test carol@b.test
check "PostgreSQL down: mail through m2 to carol: 4xx" test $? = 4
/usr/sbin/sendmail -C "$T/m1/pf" -f alice@a.test carol@b.test < "$T/plain.eml"
check "PostgreSQL down: ... and waits in m1's queue" \
	wait_for 10 sh -c "[ \$(find $T/m1/pf/queue/maildrop $T/m1/pf/queue/deferred $T/m1/pf/queue/incoming $T/m1/pf/queue/active -type f | wc -l) -ge 1 ]"
keyd_ask "$T/m2/keyd.sock" request=lookup address=carol@b.test
check "PostgreSQL down: keyd answers tempfail naming the store, not a DNS no-key" \
	sh -c "grep -q '^result=carol@b.test tempfail' '$T/reply' && grep -q 'key store postgresql://postgres:\*\*\*@' '$T/reply'"
check "PostgreSQL down: nothing reached the wire" test "$(ls "$SINK" | wc -l)" = "$before"
check "PostgreSQL down: the milter's log says the key store is unreachable" \
	grep -q "key store postgresql://postgres:\*\*\*@127.0.0.1:$PGPORT/cables" "$T/m1/milter.log"
check "PostgreSQL down: keyd logs it once" \
	wait_for 5 sh -c "grep -c 'lookups answer tempfail until it is back' '$T/m1/keyd.stderr' '$T/m1/milter.log' | grep -q ':1\$'"

# Back: both recover without a restart; the waiting message leaves encrypted.
pg_restart
check "PostgreSQL back: keyd says so" \
	wait_for 10 sh -c "cat '$T/m1/keyd.stderr' '$T/m1/milter.log' | grep -q 'is reachable again'"
inst_send "$M2PORT" "$T/plain.eml" alice@a.test carol@b.test
check "PostgreSQL back: mail through m2 to carol: accepted" test $? = 0
postqueue -c "$T/m1/pf" -f >/dev/null 2>&1
postkick -c "$T/m1/pf" public pickup W >/dev/null 2>&1
check "PostgreSQL back: the waiting message on m1 leaves" \
	wait_for 60 sh -c "[ \$(grep -l '^X-Rcpt-Args: <carol@b.test>' $SINK/* 2>/dev/null | wc -l) -ge 2 ]"
check "nothing left in plaintext for b.test, ever" test "$(leaks b.test)" = 0
for f in $(grep -l '^X-Rcpt-Args: <carol@b.test>' "$SINK"/*); do
	$MAILTOOL strip-sink "$f" > "$T/w.eml"
	check "carol's copy $(basename "$f") opens with her key" \
		sh -c "openssl cms -decrypt -in '$T/w.eml' -inkey '$T/carol.pem' | grep -q PLAINTEXT-MARKER"
done

# A reload that sees KeyStore changed logs both URLs, without their passwords.
sed -i "s|^KeyStore .*|KeyStore postgresql://postgres:$SECRET-2@127.0.0.1:$PGPORT/cables|" "$T/m1/cables.conf"
kill -USR1 "$(cat "$T/m1/milter.pid")"
check "m1 reloaded: KeyStore changed, logged without passwords" \
	wait_for 10 grep -q "KeyStore changed (postgresql://postgres:\*\*\*@127.0.0.1:$PGPORT/cables -> postgresql://postgres:\*\*\*@" "$T/m1/milter.log"

# The password: in no log, no ps line.
check "the URL's password is in no log" sh -c "! grep -rq '$SECRET' $T/m1/*.log $T/m2/*.log $T/m1/*.stderr $T/m2/*.stderr"
check "the URL's password is in no command line (ps)" sh -c "! ps -eo args | grep -v grep | grep -q '$SECRET'"

rig_done
