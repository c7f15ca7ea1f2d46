#!/bin/sh
# Who may sign, through a real Postfix with Cyrus SASL on loopback: mail is
# signed with the envelope sender's key only when the SASL login is that
# address or SenderLogins allows it; mallory authenticated as mallory
# sending as alice gets it out unsigned, with the reason in the log; an
# unauthenticated submitter (SMTP from 127.0.0.1, sendmail(1)) is not
# signed for unless SignUnauthenticated says so.
RIG_PORT=12430
. "$top_srcdir/tests/integration/rig.sh"

if ! command -v saslpasswd2 >/dev/null 2>&1; then
	echo "1..0 # SKIP saslpasswd2 is not installed (package sasl2-bin; run tools/install-deps)"
	exit 0
fi

# Two SASL users in a sasldb only this instance reads (smtpd runs as postfix).
SASLDB=$T/sasldb2
for u in alice mallory; do
	echo "pw-$u" | saslpasswd2 -p -f "$SASLDB" -u a.test -c "$u"
done
chown postfix "$SASLDB"
mkdir -p "$PF/sasl"
cat > "$PF/sasl/smtpd.conf" <<-CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
mech_list: PLAIN
sasldb_path: $SASLDB
CONF

: > "$T/logins"
rig_config "Policy a.test Sign=yes" "SenderLogins $T/logins"
# milter_mail_macros without {auth_authen}: the milter asks for it itself (smfi_setsymlist).
rig_postfix "smtpd_sasl_auth_enable = yes" "smtpd_sasl_type = cyrus" "smtpd_sasl_path = smtpd" \
	"smtpd_sasl_security_options = noanonymous" "milter_mail_macros = i {mail_addr}"
rig_sink
rig_milter
keyctl generate alice@a.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

# carol@c.test has no key: the mail leaves in plaintext, clear-signed when signed.
signed_wire() { grep -qi '^Content-Type: multipart/signed' "$1"; }

# send_as WHAT AUTH SIGNED: alice@a.test to carol@c.test, authenticated as AUTH ("" for none).
send_as() {
	what=$1 auth=$2 expect=$3
	if [ -n "$auth" ]; then
		REPLY=$($MAILTOOL send --port "$SMTP_PORT" --auth "$auth" --from alice@a.test --to carol@c.test "$T/plain.eml")
	else
		REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --to carol@c.test "$T/plain.eml")
	fi
	rc=$?
	if [ "$rc" != 0 ]; then
		not_ok "$what: accepted" "$REPLY"
		return 1
	fi
	ok "$what: accepted"
	QID=$(qid_of_reply)
	wire=$(capture) || { not_ok "$what: reaches the wire" "$REPLY"; return 1; }
	if [ "$expect" = signed ]; then
		check "$what: signed on the wire" signed_wire "$wire"
	else
		check "$what: not signed on the wire" sh -c "! grep -qi '^Content-Type: multipart/signed' $wire"
	fi
}

send_as "alice as alice" "alice@a.test:pw-alice" signed
check "alice as alice: the log says signed" grep -q "$QID: signed: format=smime" "$MILTER_LOG"

send_as "mallory as alice" "mallory@a.test:pw-mallory" unsigned
check "mallory as alice: the log line says why it is not signed" \
	grep -q "$QID: plaintext: .*unsigned: login mallory@a.test may not send as alice@a.test (SenderLogins)" "$MILTER_LOG"

# A wrong password is no login at all: Postfix refuses it.
REPLY=$($MAILTOOL send --port "$SMTP_PORT" --auth "mallory@a.test:pw-alice" --from alice@a.test \
	--to carol@c.test "$T/plain.eml")
check "a wrong password is refused by Postfix" test $? = 5

# The map lets mallory (say, alice's assistant) send as alice; a reload reads it.
echo "alice@a.test mallory@a.test" > "$T/logins"
kill -USR1 "$MILTER_PID"
wait_for 10 grep -q "configuration reloaded" "$MILTER_LOG"
send_as "mallory as alice, SenderLogins allows it" "mallory@a.test:pw-mallory" signed

send_as "unauthenticated SMTP from 127.0.0.1" "" unsigned
check "unauthenticated: the log line says why" \
	grep -q "$QID: plaintext: .*unsigned: not authenticated (SignUnauthenticated no)" "$MILTER_LOG"

# Local submission: sendmail -f claims any sender.
before=$(grep -c "unsigned: not authenticated" "$MILTER_LOG")
rig_submit "$T/plain.eml" alice@a.test carol@c.test
check "sendmail(1) -f alice: not signed, and the log says why" \
	wait_for 60 sh -c "[ \$(grep -c 'unsigned: not authenticated' $MILTER_LOG) -gt $before ]"

# A message alice (authenticated) sends to dan, who has no key, under On-KeyNotFound hold: held,
# then released when dan's key is there.  The released copy comes through pickup with no login
# of its own; it is signed with its original's (doc/hold.md, "The loop, the login and forgery").
D=$T/d
mkdir -p "$D"
printf 'KeyStore %s/keys.db\nKeyStoreKey %s/store.key\nTempDir %s\nLocalDomains d.test\nKeydSocket none\n' \
	"$D" "$D" "$D" > "$D/conf"
"$KEYCTL" -c "$D/conf" generate dan@d.test --smime >/dev/null
"$KEYCTL" -c "$D/conf" export dan@d.test --private --out "$T/dan.pem"
rig_config "Policy a.test Sign=yes" "SenderLogins $T/logins" "Policy d.test require" "On-KeyNotFound hold" \
	"HoldAddress alice@a.test"
rig_milter_restart
# keyd (for cables-keyctl held release) with no DNS to ask: dan's key is an imported one.
sed -e "s|^KeydSocket none|KeydSocket $T/keyd.sock|" "$CONF" > "$T/keyd.conf"
printf 'KeydAdminSocket %s/keyd-admin.sock\nLookupTimeout 2s\nResolver 127.0.0.1@9\n' "$T" >> "$T/keyd.conf"
"$BUILD/cables-keyd" -f -c "$T/keyd.conf" 2>>"$T/keyd.stderr" &
echo "$!" >> "$T/pids"
wait_for 10 test -S "$T/keyd.sock"
REPLY=$($MAILTOOL send --port "$SMTP_PORT" --auth "alice@a.test:pw-alice" --from alice@a.test --to dan@d.test \
	"$T/plain.eml")
check "alice (authenticated) to dan, who has no key: 250" test $? = 0
qid=$(qid_of_reply)
check "... held" wait_for 10 grep -q "$qid: held: [0-9a-f]\{16\} for keys" "$MILTER_LOG"
id=$(sed -n "s/.*$qid: held: \([0-9a-f]\{16\}\) for keys.*/\1/p" "$MILTER_LOG" | head -n 1)
check "... with alice's login kept" sh -c "$KEYCTL -c $CONF held show $id | grep -qx 'submitted by: alice@a.test (SASL login)'"
"$KEYCTL" -o -c "$CONF" import "$T/dan.pem" >/dev/null
before=$(sink_count)
signed_before=$(grep -c ': encrypted: .* signed' "$MILTER_LOG")
"$KEYCTL" -c "$T/keyd.conf" held release "$id" > "$T/release.out" 2>&1
check "held release: resubmitted by the milter" grep -q "^$id: released" "$T/release.out"
# The newest copy at the sink to dan (names do not sort by time).
to_dan() { for f in $(ls -t "$SINK"/*); do grep -q '^X-Rcpt-Args: <dan@d.test>' "$f" && { echo "$f"; break; }; done; }
check "the released copy reaches the wire" wait_for 60 sh -c "[ \$(find $SINK -type f | wc -l) -gt $before ]"
wire=$(to_dan)
check "... encrypted to dan" grep -qi '^Content-Type: application/pkcs7-mime' "$wire"
sink_message "$wire" > "$T/dan.eml"
openssl cms -decrypt -in "$T/dan.eml" -recip "$T/dan.pem" -inkey "$T/dan.pem" -out "$T/dan.dec" 2>/dev/null
check "... and, inside, signed as alice (the original's login), not 'not authenticated'" \
	grep -qi -e '^Content-Type: multipart/signed' -e 'smime-type=signed-data' "$T/dan.dec"
check "... the milter logs it encrypted and signed" \
	test "$(grep -c ': encrypted: .* signed' "$MILTER_LOG")" -gt "$signed_before"
check "... with no release field on the wire" sh -c "! grep -qi '^X-Cables-Release' $wire"
# A local user's copy with a release field of its own (no token only the milter makes): not signed.
before=$(sink_count)
{ printf 'X-Cables-Release: %s %s %s\n' "$id" "$(date +%s)" 0123456789abcdef0123456789abcdef; cat "$T/plain.eml"; } \
	> "$T/forged.eml"
rig_submit "$T/forged.eml" alice@a.test dan@d.test
check "a forged release field, sendmail -f alice: delivered" wait_for 60 sh -c "[ \$(find $SINK -type f | wc -l) -gt $before ]"
wire=$(to_dan)
sink_message "$wire" > "$T/forged.out"
openssl cms -decrypt -in "$T/forged.out" -recip "$T/dan.pem" -inkey "$T/dan.pem" -out "$T/forged.dec" 2>/dev/null
check "... encrypted to dan, and not signed" sh -c \
	"grep -q PLAINTEXT-MARKER $T/forged.dec && ! grep -qi -e '^Content-Type: multipart/signed' -e 'smime-type=signed-data' $T/forged.dec"

# The admin may say unauthenticated submitters are trusted to sign.
rig_config "Policy a.test Sign=yes" "SenderLogins $T/logins" "SignUnauthenticated yes"
kill -USR1 "$MILTER_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -ge 2 ]"
send_as "unauthenticated, SignUnauthenticated yes" "" signed

# A SenderLogins file that does not parse keeps the milter from starting (-n says why).
echo "not-an-address mallory" > "$T/logins"
"$MILTER" -n -c "$CONF" > "$T/check.out" 2>&1
check "a malformed SenderLogins file: cables-milter -n fails" test $? != 0
check "a malformed SenderLogins file: the error names the line" grep -q "logins:1: " "$T/check.out"

rig_done
