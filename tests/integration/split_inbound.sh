#!/bin/sh
# Inbound split delivery and On-DecryptError through a real Postfix with
# Maildirs: local recipients the sender encrypted to get the message
# decrypted, the others get it as it came (re-injected, with the reason);
# On-DecryptError holds, temp-fails or rejects mail that cannot be
# decrypted, the strictest setting winning for the whole message.
RIG_PORT=12120
. "$top_srcdir/tests/integration/rig.sh"

BPORT=$((RIG_PORT + 5))
CONF_LINES="ReinjectTo inet:$((BPORT + 1))@127.0.0.1|ReinjectKey $T/b/reinject.key|Policy erin@b.test On-DecryptError=reject|Policy fay@b.test On-DecryptError=tempfail|Policy gus@b.test On-DecryptError=quarantine"
b_config() {
	old_ifs=$IFS; IFS='|'
	# shellcheck disable=SC2086
	inst_config b b.test $CONF_LINES "$@"
	IFS=$old_ifs
}
b_config
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob carol dan erin fay gus"
inst_milter b
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate carol@b.test --smime --algo p256 >/dev/null
inst_keyctl b export bob@b.test > "$T/bob-cert.pem"
inst_keyctl b export carol@b.test > "$T/carol-cert.pem"

printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nFor your eyes only. PLAINTEXT-MARKER\r\n' > "$T/inner.txt"
{ printf 'MIME-Version: 1.0\r\n'; cat "$T/inner.txt"; } > "$T/expected.entity"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/bob.smime" "$T/bob-cert.pem"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/bobcarol.smime" \
	"$T/bob-cert.pem" "$T/carol-cert.pem"

# message NAME CMS: a message from alice with Message-ID <NAME@a.test>.
message() {
	$MAILTOOL smime-message "$2" "$T/$1.eml" --header "From: Alice <alice@a.test>" \
		--header "To: bob@b.test, carol@b.test" --header "Subject: $1" --header "Message-ID: <$1@a.test>"
}
# copy_of NAME USER: USER's delivered copy of message NAME.
copy_of() {
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $T/b/mail/$2/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$1@a.test>" "$T/b/mail/$2/Maildir/new"/* | head -n 1
}
count_of() { grep -l "^Message-ID: <$1@a.test>" "$T/b/mail/$2/Maildir/new"/* 2>/dev/null | wc -l; }
decrypted() { $MAILTOOL entity "$1" | cmp -s - "$T/expected.entity"; }
encrypted() { grep -q '^Content-Type: application/pkcs7-mime' "$1" && ! grep -q PLAINTEXT-MARKER "$1"; }
queue_settled() { [ "$(find "$T/b/pf/queue/incoming" "$T/b/pf/queue/active" "$T/b/pf/queue/deferred" -type f | wc -l)" = 0 ]; }
held() { find "$T/b/pf/queue/hold" -type f | wc -l; }

# 1. Encrypted to bob only, sent to bob and carol: bob reads it, carol's stays encrypted.
message i1 "$T/bob.smime"
inst_send "$BPORT" "$T/i1.eml" alice@a.test bob@b.test carol@b.test
check "one target of two: accepted ($REPLY)" test $? = 0
if f=$(copy_of i1 bob); then
	check "one target of two: bob's copy is decrypted, byte for byte" decrypted "$f"
	check "one target of two: bob's copy says decrypted" grep -q '^X-Cables: decrypted; format=smime' "$f"
else
	not_ok "one target of two: bob got a copy"
fi
if f=$(copy_of i1 carol); then
	check "one target of two: carol's copy is still encrypted" encrypted "$f"
	check "one target of two: carol's copy says why" \
		grep -q '^X-Cables: not-decrypted; format=smime; reason="carol@b.test is not a recipient of the encryption"' "$f"
	check "one target of two: carol's copy was re-injected with a marker" grep -q '^X-Cables-Reinjected: v2 ' "$f"
else
	not_ok "one target of two: carol got a copy"
fi
wait_for 30 queue_settled
check "one target of two: one copy each" sh -c "[ $(count_of i1 bob) = 1 ] && [ $(count_of i1 carol) = 1 ]"
check "one target of two: the log line names the split" \
	grep -qE ': decrypted: .*; split: copy not decrypted to carol@b.test as [0-9A-Za-z]+' "$T/b/milter.log"

# 2. Encrypted to bob and carol, sent to them and dan: two decrypted, dan's stays encrypted.
message i2 "$T/bobcarol.smime"
inst_send "$BPORT" "$T/i2.eml" alice@a.test bob@b.test carol@b.test dan@b.test
check "two targets of three: accepted" test $? = 0
for u in bob carol; do
	if f=$(copy_of i2 $u); then
		check "two targets of three: $u's copy is decrypted" decrypted "$f"
	else
		not_ok "two targets of three: $u got a copy"
	fi
done
if f=$(copy_of i2 dan); then
	check "two targets of three: dan's copy is still encrypted" encrypted "$f"
	check "two targets of three: dan's copy says why" grep -q 'reason="no private key for dan@b.test"' "$f"
else
	not_ok "two targets of three: dan got a copy"
fi

# 3. On-DecryptError: reject (5.7.5), tempfail (4.7.5), quarantine (hold queue).
message i3 "$T/bob.smime"
inst_send "$BPORT" "$T/i3.eml" alice@a.test erin@b.test
check "On-DecryptError reject: 5xx" test $? = 5
check "On-DecryptError reject: 554 5.7.5" sh -c "echo '$REPLY' | grep -q '^554 5.7.5 Cables: the message cannot be decrypted here'"
inst_send "$BPORT" "$T/i3.eml" alice@a.test fay@b.test
check "On-DecryptError tempfail: 4xx" test $? = 4
check "On-DecryptError tempfail: 451 4.7.5" sh -c "echo '$REPLY' | grep -q '^451 4.7.5'"
inst_send "$BPORT" "$T/i3.eml" alice@a.test gus@b.test
check "On-DecryptError quarantine: accepted" test $? = 0
check "On-DecryptError quarantine: held in Postfix's hold queue" wait_for 30 sh -c "[ \$(find $T/b/pf/queue/hold -type f | wc -l) = 1 ]"
check "On-DecryptError quarantine: not delivered" test "$(count_of i3 gus)" = 0
check "On-DecryptError quarantine: the log says why" \
	grep -q ': quarantine: not-decrypted: no private key for gus@b.test' "$T/b/milter.log"
# Mixed: bob is a target, gus is not and wants quarantine: the whole message is held.
inst_send "$BPORT" "$T/i3.eml" alice@a.test bob@b.test gus@b.test
check "target + quarantine: accepted" test $? = 0
check "target + quarantine: the whole message is held" wait_for 30 sh -c "[ \$(find $T/b/pf/queue/hold -type f | wc -l) = 2 ]"
# Mixed with reject: the strictest wins for the message.
inst_send "$BPORT" "$T/i3.eml" alice@a.test bob@b.test erin@b.test
check "target + reject: 5xx for the whole message" test $? = 5

# 4. Without ReinjectTo: one target of two leaves the message encrypted for both.
CONF_LINES="ReinjectKey $T/b/reinject.key"
b_config
kill -USR1 "$(cat "$T/b/milter.pid")"
wait_for 10 grep -q 'configuration reloaded' "$T/b/milter.log"
message i4 "$T/bob.smime"
inst_send "$BPORT" "$T/i4.eml" alice@a.test bob@b.test carol@b.test
check "no ReinjectTo: accepted" test $? = 0
for u in bob carol; do
	if f=$(copy_of i4 $u); then
		check "no ReinjectTo: $u's copy stays encrypted" encrypted "$f"
	else
		not_ok "no ReinjectTo: $u got a copy"
	fi
done
check "no ReinjectTo: the reason names split delivery" \
	grep -q 'reason="carol@b.test is not a recipient of the encryption (no ReinjectTo for split delivery)"' "$(copy_of i4 bob)"

check "the milter is still running" kill -0 "$(cat "$T/b/milter.pid")"
rig_done
