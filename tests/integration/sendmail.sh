#!/bin/sh
# The milter behind a real Sendmail 8.17 (INPUT_MAIL_FILTER with F=T, the
# lines of etc/sendmail.mc as an admin pastes them): outbound S/MIME and
# PGP/MIME decrypt with openssl and gpg; header protection changes and
# removes fields by index as Sendmail counts them; inbound S/MIME and
# PGP/MIME are decrypted for local users and forged result fields are removed (smfi_chgheader indexes
# as Sendmail counts them); what cannot be decrypted for a quarantine user
# is held in Sendmail's quarantine (smfi_quarantine); a require recipient
# without a key gets 4xx and nothing on the wire; the milter down means 4xx
# (F=T), not unfiltered mail; split delivery re-injects the keyless copy
# through the cables-reinject listener, where the milter only checks the
# marker; the queue ID, {daemon_name} and {auth_authen} (SMTP AUTH through
# Cyrus SASL) reach the milter even with every macro list of the .cf
# emptied, and without a login nothing is signed.
RIG_PORT=12800
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/sendmail_rig.sh"

rig_config "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key" \
	"Policy d.test require" "Policy quinn@a.test On-DecryptError=quarantine" "Policy h.test HeaderProtection=shy"
rig_sink
rig_milter
sm_start

keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --pgp >/dev/null
keyctl generate alice@a.test --smime >/dev/null
keyctl generate hank@h.test --smime >/dev/null
keyctl export hank@h.test --private --out "$T/hank.pem"
keyctl export bob@b.test --private --out "$T/bob.pem"
keyctl export carol@c.test --private --out "$T/carol.sec"
keyctl export alice@a.test > "$T/alice-cert.pem"
GB=$T/gb
gpg_home "$GB"
gpg --homedir "$GB" --batch -q --import "$T/carol.sec" 2>/dev/null

# sm_send FILE FROM TO...: to Sendmail's MTA listener; the queue ID of an accepted message in $QID.
sm_send() {
	rig_send "$@"
	rc=$?
	QID=$(sm_qid)
	return $rc
}
# wire ID: the sink's copy of Sendmail's message ID (waits for it), or fails.
wire() { sm_captured "$1"; }

# 1. Outbound S/MIME: the wire copy is CMS that openssl opens to the original entity.
$MAILTOOL make "$T/plain.eml" plain
$MAILTOOL entity "$T/plain.eml" > "$T/plain.entity"
if sm_send "$T/plain.eml" alice@a.test bob@b.test && [ -n "$QID" ] && w=$(wire "$QID"); then
	ok "S/MIME: accepted by Sendmail as $QID and relayed"
	check "S/MIME: the wire copy is enveloped CMS" grep -q '^Content-Type: application/pkcs7-mime' "$w"
	check "S/MIME: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $w"
	check "S/MIME: openssl cms -decrypt gives the original entity" sh -c \
		"openssl cms -decrypt -in $w -recip $T/bob.pem -inkey $T/bob.pem -binary -out $T/dec.out && cmp $T/dec.out $T/plain.entity"
	# The decision's log line names Sendmail's queue ID: the i macro arrived.
	check "S/MIME: the milter's log line names Sendmail's queue ID" grep -q "^.*$QID: encrypted" "$MILTER_LOG"
else
	not_ok "S/MIME: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 2. Outbound PGP/MIME: gpg opens it.
if sm_send "$T/plain.eml" alice@a.test carol@c.test && w=$(wire "$QID"); then
	check "PGP/MIME: the wire copy is multipart/encrypted" grep -q '^Content-Type: multipart/encrypted' "$w"
	check "PGP/MIME: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $w"
	check "PGP/MIME: gpg decrypts to the original entity" sh -c \
		"$MAILTOOL pgp-payload $w > $T/payload.asc &&
		gpg --homedir $GB --batch -q --pinentry-mode loopback --passphrase '' --decrypt $T/payload.asc > $T/dec.out 2>/dev/null &&
		cmp $T/dec.out $T/plain.entity"
else
	not_ok "PGP/MIME: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 2b. Header protection (shy) edits header fields by index through Sendmail:
# Subject becomes [...], both Keywords fields go, display names go; inside,
# the fields are as they were.
{
	printf 'From: Alice Secret <alice@a.test>\r\nTo: Hank Hidden <hank@h.test>\r\nSubject: merger SUBJECT-MARKER\r\n'
	printf 'Keywords: first KEYWORD-MARKER\r\nX-Keep: kept\r\nKeywords: second KEYWORD-MARKER\r\n'
	printf 'Message-ID: <hp@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n'
	printf 'Hank, PLAINTEXT-MARKER\r\n'
} > "$T/hp.eml"
if sm_send "$T/hp.eml" alice@a.test hank@h.test && w=$(wire "$QID"); then
	check "header protection: the outer Subject is [...]" test "$($MAILTOOL header "$w" Subject)" = "[...]"
	check "header protection: neither Keywords field is outside" sh -c "! grep -q -e KEYWORD-MARKER -e '^Keywords:' $w"
	check "header protection: From and To lost their display names outside" sh -c \
		"! grep -q -e 'Alice Secret' -e 'Hank Hidden' $w"
	check "header protection: other fields stay outside, once" test "$(grep -c '^X-Keep: kept' "$w")" = 1
	check "header protection: inside, Subject and both Keywords as they were" sh -c \
		"openssl cms -decrypt -in $w -recip $T/hank.pem -inkey $T/hank.pem -binary -out $T/hp.inner &&
		grep -q '^Subject: merger SUBJECT-MARKER' $T/hp.inner && [ \$(grep -c '^Keywords: .* KEYWORD-MARKER' $T/hp.inner) = 2 ]"
else
	not_ok "header protection: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 3. Inbound S/MIME for a local user, with forged result fields that must go:
# two X-Cables and our Authentication-Results, among fields Sendmail keeps.
printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Alice, PLAINTEXT-MARKER inbound\r\n' > "$T/inner.txt"
{ printf 'MIME-Version: 1.0\r\n'; cat "$T/inner.txt"; } > "$T/inner.entity"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/in.smime" "$T/alice-cert.pem"
$MAILTOOL smime-message "$T/in.smime" "$T/in.eml" --header "From: Eve <eve@e.test>" --header "To: alice@a.test" \
	--header "Subject: inbound" --header "X-Cables: decrypted; forged=1" \
	--header "Authentication-Results: mx.a.test; smime=pass forged" --header "X-Keep: kept" \
	--header "X-Cables: decrypted; forged=2"
if sm_send "$T/in.eml" eve@e.test alice@a.test && w=$(wire "$QID"); then
	$MAILTOOL entity "$w" > "$T/got.entity"
	check "inbound: the copy is the original content, byte for byte" cmp "$T/got.entity" "$T/inner.entity"
	check "inbound: X-Cables says decrypted" grep -q '^X-Cables: decrypted; format=smime' "$w"
	check "inbound: X-Cables is the first field, above Sendmail's Received (smfi_insheader index 0)" \
		sh -c "head -n 1 $w | grep -q '^X-Cables: ' && sed -n 2p $w | grep -q '^Received: .*mx.a.test'"
	check "inbound: the forged fields are gone, ours is the only X-Cables" sh -c \
		"[ \$(grep -c '^X-Cables:' $w) = 1 ] && ! grep -q forged $w"
	check "inbound: the other fields stay" grep -q '^X-Keep: kept' "$w"
else
	not_ok "inbound: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 3b. Inbound PGP/MIME for a local user: what gpg encrypts to pat arrives decrypted.
keyctl generate pat@a.test --pgp >/dev/null
keyctl export pat@a.test > "$T/pat.asc"
GE=$T/ge
gpg_home "$GE"
gpg --homedir "$GE" --batch -q --import "$T/pat.asc" 2>/dev/null
gpg --homedir "$GE" --batch -q --yes --trust-model always --armor -r pat@a.test -o "$T/in.asc" \
	--encrypt "$T/inner.txt" 2>/dev/null
$MAILTOOL pgp-message "$T/in.asc" "$T/inpgp.eml" --header "From: Eve <eve@e.test>" --header "To: pat@a.test" \
	--header "Subject: inbound pgp"
if sm_send "$T/inpgp.eml" eve@e.test pat@a.test && w=$(wire "$QID"); then
	$MAILTOOL entity "$w" > "$T/got.entity"
	check "inbound PGP/MIME: the copy is the original content, byte for byte" cmp "$T/got.entity" "$T/inner.entity"
	check "inbound PGP/MIME: X-Cables says decrypted" grep -q '^X-Cables: decrypted; format=pgp' "$w"
else
	not_ok "inbound PGP/MIME: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 4. What cannot be decrypted for quinn (On-DecryptError=quarantine) stays in Sendmail's quarantine.
$MAILTOOL smime-message "$T/in.smime" "$T/q.eml" --header "From: Eve <eve@e.test>" --header "To: quinn@a.test" \
	--header "Subject: for quinn"
before=$(sink_count)
if sm_send "$T/q.eml" eve@e.test quinn@a.test; then
	check "quarantine: Sendmail keeps the message as quarantined (hf file)" \
		wait_for 20 test -f "$SM/queue/hf$QID"
	check "quarantine: the queue file gives the milter's reason" grep -q '^qCables: not-decrypted' "$SM/queue/hf$QID"
	check "quarantine: nothing went on the wire" test "$(sink_count)" = "$before"
else
	not_ok "quarantine: accepted" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 5. require without a key: 4xx at the end of DATA, nothing on the wire.
before=$(sink_count)
sm_send "$T/plain.eml" alice@a.test dave@d.test
check "require, no key: 4xx from Sendmail ($REPLY)" test $? = 4
check "require, no key: the log says why" grep -q 'dave@d.test' "$MILTER_LOG"
check "require, no key: Sendmail queued nothing" test "$(sm_queue_count)" = 0
check "require, no key: nothing on the wire" test "$(sink_count)" = "$before"

# 5b. Local submission: the MSP hands the message to the MTA over SMTP, so
# the milter sees it; the require recipient's mail waits in the MSP's queue.
before=$(sink_count)
sm_submit "$T/plain.eml" alice@a.test dave@d.test
check "require, no key, MSP submission: the MSP took it" test $? = 0
check "require, no key, MSP submission: the milter refused it again" \
	wait_for 20 sh -c "[ \$(grep -c 'tempfail: no usable S/MIME certificate for dave@d.test' $MILTER_LOG) -ge 2 ]"
msp_holds_one() { [ "$(sm_msp_queue_count)" = 1 ]; }
check "require, no key, MSP submission: it waits in the MSP's queue" wait_for 10 msp_holds_one
check "require, no key, MSP submission: nothing on the wire" test "$(sink_count)" = "$before"
touch "$T/msp.stamp"
sm_submit "$T/plain.eml" alice@a.test bob@b.test
check "MSP submission to bob: encrypted on the wire" wait_for 30 sh -c \
	"grep -l '^X-Rcpt-Args: <bob@b.test>' \$(find $SINK -type f -newer $T/msp.stamp) /dev/null |
	xargs grep -l '^Content-Type: application/pkcs7-mime' | grep -q ."
# What the SENDMAIL section of cables-milter(8) warns about: the MTA's own
# -bm (its sendmail.cf, no MSP) runs no milter at all.
sm_run -C "$SM/sendmail.cf" -bm -f alice@a.test carol@c.test < "$T/plain.eml"
check "the MTA's own -bm passes no milter (plaintext to carol, who has a key)" wait_for 30 sh -c \
	"grep -l '^X-Rcpt-Args: <carol@c.test>' $SINK/* 2>/dev/null | xargs grep -l PLAINTEXT-MARKER 2>/dev/null | grep -q ."

# 6. Split delivery: bob is keyed, erin is not; erin's copy comes back through
# the cables-reinject listener with a marker that the milter there accepts.
sed 's/^To: Bob <bob@b.test>\r$/To: Bob <bob@b.test>, Erin <erin@e.test>\r/' "$T/plain.eml" > "$T/split.eml"
if sm_send "$T/split.eml" alice@a.test bob@b.test erin@e.test && b=$(wire "$QID"); then
	check "split: bob's copy is S/MIME and opens" sh -c \
		"openssl cms -decrypt -in $b -recip $T/bob.pem -inkey $T/bob.pem -binary -out $T/dec.out && cmp $T/dec.out $T/plain.entity"
	check "split: bob's copy goes to bob alone" sh -c \
		"[ \$(grep -c '^X-Rcpt-Args:' $(sm_sink_file "$QID")) = 1 ] && grep -q '^X-Rcpt-Args: <bob@b.test>' $(sm_sink_file "$QID")"
	copy=$(sed -n 's/.*split: .*copies as it is to erin@e.test as \([0-9A-Za-z]*\).*/\1/p' "$MILTER_LOG" | tail -n 1)
	check "split: the log names the re-injected copy's Sendmail queue ID ($copy)" test -n "$copy"
	if [ -n "$copy" ] && e=$(wire "$copy"); then
		check "split: erin's copy is the original content" sh -c "$MAILTOOL entity $e | cmp -s - $T/plain.entity"
		check "split: erin's copy carries the marker" grep -q '^X-Cables-Reinjected: v2 ' "$e"
		check "split: erin's copy goes to erin alone" grep -q '^X-Rcpt-Args: <erin@e.test>' "$(sm_sink_file "$copy")"
		check "split: the milter on cables-reinject checked the marker (daemon_name arrived)" \
			grep -q "$copy: pass: re-injection: a copy made by Cables" "$MILTER_LOG"
	else
		not_ok "split: erin's copy reached the wire" "$(tail -n 5 "$MILTER_LOG")"
	fi
else
	not_ok "split: accepted and relayed" "$REPLY" "$(tail -n 5 "$MILTER_LOG")"
fi

# 7. A message sent straight to the cables-reinject listener without a marker is refused there.
sm_send_to_reinject() { inst_send "$REINJECT_PORT" "$@"; }
before=$(sink_count)
sm_send_to_reinject "$T/plain.eml" alice@a.test erin@e.test
rc=$?
check "reinject listener, no marker: refused with a 5xx ($REPLY)" test "$rc" = 5
check "reinject listener, no marker: nothing on the wire" test "$(sink_count)" = "$before"

# 8. Milter down with F=T: 4xx, never unfiltered mail; back up: accepted again.
rig_milter_stop
before=$(sink_count)
sm_send "$T/plain.eml" alice@a.test bob@b.test
check "milter down: 4xx from Sendmail ($REPLY)" test $? = 4
check "milter down: Sendmail queued nothing" test "$(sm_queue_count)" = 0
check "milter down: nothing on the wire" test "$(sink_count)" = "$before"
rig_milter
if sm_send "$T/plain.eml" alice@a.test bob@b.test && w=$(wire "$QID"); then
	check "milter back: encrypted again" grep -q '^Content-Type: application/pkcs7-mime' "$w"
else
	not_ok "milter back: accepted and relayed" "$REPLY"
fi

# 9. Sendmail with every milter macro list emptied in the .mc (and SMTP
# AUTH on): the milter asks for i, {auth_authen} and {daemon_name} itself
# (smfi_setsymlist, which Sendmail 8.14+ honours), so the queue ID and the
# re-injection listener are still known; without a login {auth_authen} is
# empty, which makes no one a trusted submitter: Sign=yes mail is not signed.
sm_stop
sm_sasl "alice@a.test:pw-alice" "mallory@a.test:pw-mallory"
sm_start "define(\`confMILTER_MACROS_CONNECT', \`')dnl" "define(\`confMILTER_MACROS_HELO', \`')dnl" \
	"define(\`confMILTER_MACROS_ENVFROM', \`')dnl" "define(\`confMILTER_MACROS_ENVRCPT', \`')dnl" \
	"define(\`confMILTER_MACROS_EOM', \`')dnl" \
	"define(\`confAUTH_MECHANISMS', \`PLAIN')dnl" "TRUST_AUTH_MECH(\`PLAIN')dnl"
check "trimmed macros: the .cf gives Sendmail no macro list for MAIL FROM" grep -qx 'O Milter.macros.envfrom' "$SM/sendmail.cf"
rig_config "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key" "Policy a.test Sign=yes"
rig_milter_restart
if sm_send "$T/split.eml" alice@a.test bob@b.test erin@e.test && b=$(wire "$QID"); then
	check "trimmed macros: the milter's log line still names the queue ID" grep -q "$QID: encrypted: .*split:" "$MILTER_LOG"
	copy=$(sed -n "s/.*$QID: .*copies as it is to erin@e.test as \([0-9A-Za-z]*\).*/\1/p" "$MILTER_LOG" | tail -n 1)
	if [ -n "$copy" ] && e=$(wire "$copy"); then
		check "trimmed macros: the copy passed the cables-reinject listener's check" \
			grep -q "$copy: pass: re-injection: a copy made by Cables" "$MILTER_LOG"
		check "trimmed macros, no login: the copy left unsigned" \
			sh -c "! grep -qi '^Content-Type: multipart/signed' $e"
	else
		not_ok "trimmed macros: erin's copy reached the wire" "$(tail -n 3 "$MILTER_LOG")"
	fi
	check "trimmed macros, no login: the log says not authenticated" \
		grep -q "$QID: .*unsigned: not authenticated (SignUnauthenticated no)" "$MILTER_LOG"
else
	not_ok "trimmed macros: accepted and relayed" "$REPLY" "$(tail -n 3 "$MILTER_LOG")"
fi

# 10. SMTP AUTH through Sendmail (Cyrus SASL): {auth_authen}, asked for by
# the milter and in no list of the .cf, says who logged in.
# signed_as WHAT LOGIN EXPECT: alice@a.test to keyless frank@f.test, authenticated as LOGIN.
signed_as() {
	REPLY=$($MAILTOOL send --port "$SMTP_PORT" --auth "$2" --from alice@a.test --to frank@f.test "$T/plain.eml")
	rc=$?
	QID=$(sm_qid)
	if [ "$rc" != 0 ] || ! w=$(wire "$QID"); then
		not_ok "$1: accepted and relayed" "$REPLY"
		return 1
	fi
	if [ "$3" = signed ]; then
		check "$1: signed on the wire" grep -qi '^Content-Type: multipart/signed' "$w"
	else
		check "$1: not signed on the wire" sh -c "! grep -qi '^Content-Type: multipart/signed' $w"
	fi
}
signed_as "AUTH as alice" "alice@a.test:pw-alice" signed
check "AUTH as alice: the log says signed" grep -q "$QID: signed: format=smime" "$MILTER_LOG"
signed_as "AUTH as mallory, sending as alice" "mallory@a.test:pw-mallory" unsigned
check "AUTH as mallory: the log line says why not signed" \
	grep -q "$QID: plaintext: .*unsigned: login mallory@a.test may not send as alice@a.test" "$MILTER_LOG"

sm_stop
rig_done
