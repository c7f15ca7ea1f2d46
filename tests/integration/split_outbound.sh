#!/bin/sh
# Split delivery through a real Postfix: recipients that need different
# treatment get their own copies (keyed and keyless, Bcc, local and remote),
# re-injected through the smtpd where the milter only checks markers, with the envelope
# sender and DSN parameters kept; a re-injection failure temp-fails the
# whole transaction and loses nothing; the marker is recognised and cannot
# be forged or replayed onto other mail.
RIG_PORT=12110
. "$top_srcdir/tests/integration/rig.sh"

REINJECT="ReinjectTo inet:$REINJECT_PORT@127.0.0.1"
rig_config "$REINJECT" "ReinjectKey $T/reinject.key" "Policy b.test require"
rig_postfix
rig_sink
rig_milter

keyctl generate bob@b.test --smime >/dev/null
keyctl generate dave@d.test --smime >/dev/null
keyctl generate erin@e.test --smime --algo p256 >/dev/null
for who in bob@b.test dave@d.test erin@e.test; do
	keyctl export "$who" --private --out "$T/${who%@*}.pem"
done
check "the milter created the marker key, mode 0600" \
	sh -c "[ \"\$(stat -c %a $T/reinject.key)\" = 600 ]"

# message ID TO [CC]: a message with Message-ID <ID@a.test>.
message() {
	{
		printf 'From: Alice <alice@a.test>\r\nTo: %s\r\n' "$2"
		[ -n "${3:-}" ] && printf 'Cc: %s\r\n' "$3"
		printf 'Subject: split %s\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\n' "$1" "$1"
		printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello, PLAINTEXT-MARKER %s\r\n.dot line\r\n' "$1"
	} > "$T/$1.eml"
	$MAILTOOL entity "$T/$1.eml" > "$T/$1.entity"
}
# copies ID: the sink files (envelope lines stripped) of message ID, one path per line.
copies() {
	for f in $(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* 2>/dev/null | sort); do
		[ -f "$f.eml" ] || sink_message "$f" > "$f.eml"
		echo "$f.eml"
	done
}
ncopies() { copies "$1" | wc -l; }
# settled: Postfix holds no message.
settled() { [ "$(queue_count)" = 0 ]; }
# wait_copies ID N: N copies of ID arrived and Postfix holds nothing more.
wait_copies() {
	wait_for 60 sh -c "[ \$(grep -l '^Message-ID: <$1@a.test>' $SINK/* 2>/dev/null | wc -l) -ge $2 ]" &&
	wait_for 30 settled
}
# rcpts_of FILE: the recipients Postfix delivered that copy's queue file to.
rcpts_of() {
	q=$(tr -d '\r' < "$1" | sed -n 's/.* id \([0-9A-Za-z]*\);*$/\1/p' | head -n 1)
	grep " $q: to=<" "$PF/maillog" | sed 's/.* to=<\([^>]*\)>.*/\1/' | sort -u | tr '\n' ' ' | sed 's/ $//'
}
# copy_for ID RCPTS: the copy of ID delivered to exactly RCPTS ("a b", sorted).
copy_for() {
	for f in $(copies "$1"); do
		[ "$(rcpts_of "$f")" = "$2" ] && { echo "$f"; return 0; }
	done
	return 1
}
decrypts_to() {
	openssl cms -decrypt -in "$1" -recip "$2" -inkey "$2" -binary -out "$T/dec.out" 2>/dev/null &&
	cmp -s "$T/dec.out" "$3"
}
# ktri FILE: how many key transport / agreement RecipientInfos the copy has.
recipient_infos() {
	openssl cms -cmsout -print -in "$1" 2>/dev/null | grep -cE 'd\.(ktri|kari):'
}
is_smime() { grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "$1"; }
no_plaintext() { ! grep -q PLAINTEXT-MARKER "$1"; }

# 1. Keyed and keyless recipients under encrypt: one encrypted copy, one plaintext copy.
message s1 "Bob <bob@b.test>, Carol <carol@c.test>"
rig_send "$T/s1.eml" alice@a.test bob@b.test carol@c.test
check "keyed + keyless: accepted ($REPLY)" test $? = 0
if wait_copies s1 2; then
	check "keyed + keyless: exactly two copies on the wire" test "$(ncopies s1)" = 2
	if b=$(copy_for s1 bob@b.test); then
		check "keyed + keyless: bob's copy is S/MIME" is_smime "$b"
		check "keyed + keyless: bob's copy has no plaintext" no_plaintext "$b"
		check "keyed + keyless: bob's copy decrypts to the original entity" decrypts_to "$b" "$T/bob.pem" "$T/s1.entity"
		check "keyed + keyless: bob's copy was kept in the transaction (no marker)" \
			sh -c "! grep -q '^X-Cables-Reinjected:' $b"
	else
		not_ok "keyed + keyless: a copy for bob alone" "$(for f in $(copies s1); do echo "$f: $(rcpts_of "$f")"; done)"
	fi
	if c=$(copy_for s1 carol@c.test); then
		check "keyed + keyless: carol's copy is the original content" \
			sh -c "$MAILTOOL entity $c | cmp -s - $T/s1.entity"
		check "keyed + keyless: carol's copy was re-injected with a marker" \
			grep -qE '^X-Cables-Reinjected: v2 t=[0-9]+ n=[0-9a-f]{16} h=[0-9a-f]{64}' "$c"
		check "keyed + keyless: carol's copy keeps Subject and To" \
			sh -c "grep -q '^Subject: split s1' $c && grep -q '^To: Bob <bob@b.test>, Carol <carol@c.test>' $c"
		cp "$c" "$T/s1.carol"
	else
		not_ok "keyed + keyless: a copy for carol alone"
	fi
else
	not_ok "keyed + keyless: two copies arrived" "$(sink_files)" "$(tail -n 5 "$MILTER_LOG")"
fi
check "keyed + keyless: one log line says split and names the copy" \
	grep -qE ': encrypted: .*split: kept encrypted to bob@b.test; copies as it is to carol@c.test as [0-9A-Za-z]+' "$MILTER_LOG"

# 2. A Bcc recipient gets a copy of its own: no copy names another's key.
message s2 "Bob <bob@b.test>" "Erin <erin@e.test>"
rig_send "$T/s2.eml" alice@a.test bob@b.test dave@d.test erin@e.test
check "bcc: accepted" test $? = 0
if wait_copies s2 2; then
	check "bcc: exactly two copies" test "$(ncopies s2)" = 2
	if v=$(copy_for s2 "bob@b.test erin@e.test"); then
		check "bcc: the visible recipients' copy has two RecipientInfos" test "$(recipient_infos "$v")" = 2
		check "bcc: bob decrypts the visible copy" decrypts_to "$v" "$T/bob.pem" "$T/s2.entity"
		check "bcc: erin decrypts the visible copy" decrypts_to "$v" "$T/erin.pem" "$T/s2.entity"
		check "bcc: dave's key does not open the visible copy" sh -c "! openssl cms -decrypt -in $v -recip $T/dave.pem -inkey $T/dave.pem -out /dev/null 2>/dev/null"
	else
		not_ok "bcc: one copy for bob and erin"
	fi
	if d=$(copy_for s2 dave@d.test); then
		check "bcc: dave's copy has one RecipientInfo" test "$(recipient_infos "$d")" = 1
		check "bcc: dave decrypts his copy" decrypts_to "$d" "$T/dave.pem" "$T/s2.entity"
		check "bcc: bob's key does not open dave's copy" sh -c "! openssl cms -decrypt -in $d -recip $T/bob.pem -inkey $T/bob.pem -out /dev/null 2>/dev/null"
		check "bcc: the log says dave's copy is a Bcc copy for one" \
			grep -qE ': encrypted: .*encrypted \(bcc\) to dave@d.test as [0-9A-Za-z]+ \(format=smime; cipher=aes256-cbc; recipients=1; bcc\)' "$MILTER_LOG"
		check "bcc: dave's copy carries no X-Cables field" sh -c "! grep -qi '^X-Cables:' $d"
		check "bcc: dave's copy has no plaintext" no_plaintext "$d"
	else
		not_ok "bcc: one copy for dave alone"
	fi
else
	not_ok "bcc: two copies arrived" "$(tail -n 5 "$MILTER_LOG")"
fi

# 3. Local and remote recipients under require, null sender, DSN parameters kept.
message s3 "Bob <bob@b.test>, colleague@a.test"
$MAILTOOL send --port "$SMTP_PORT" --from "" --to bob@b.test --to colleague@a.test \
	--mail-opt RET=HDRS --mail-opt ENVID=split-s3 --rcpt-opt NOTIFY=FAILURE,DELAY \
	"$T/s3.eml" > "$T/s3.reply"
check "local + remote under require, null sender: accepted" test $? = 0
if wait_copies s3 2; then
	if b=$(copy_for s3 bob@b.test); then
		check "local + remote: bob's copy is S/MIME without plaintext" sh -c "$(command -v grep) -q pkcs7-mime $b && ! grep -q PLAINTEXT-MARKER $b"
	else
		not_ok "local + remote: a copy for bob alone"
	fi
	if c=$(copy_for s3 colleague@a.test); then
		check "local + remote: the colleague's copy is plaintext, as it came" \
			sh -c "$MAILTOOL entity $c | cmp -s - $T/s3.entity"
		q=$(tr -d '\r' < "$c" | sed -n 's/.* id \([0-9A-Za-z]*\);*$/\1/p' | head -n 1)
		check "null sender kept on the re-injected copy" grep -q " $q: from=<>," "$PF/maillog"
		f=$(grep -l '^Message-ID: <s3@a.test>' "$SINK"/* | while read -r x; do
			grep -q '^X-Cables-Reinjected' "$x" && echo "$x"; done | head -n 1)
		check "RET and ENVID kept on the re-injected copy" \
			sh -c "grep '^X-Mail-Args: <> ' $f | grep 'RET=HDRS' | grep -q 'ENVID=split-s3'"
		check "NOTIFY kept on the re-injected copy" grep -q '^X-Rcpt-Args: .*NOTIFY=FAILURE,DELAY' "$f"
	else
		not_ok "local + remote: a copy for the colleague alone"
	fi
else
	not_ok "local + remote: two copies arrived" "$(cat "$T/s3.reply")" "$(tail -n 5 "$MILTER_LOG")"
fi

# 4. The re-injection endpoint is down: the whole transaction temp-fails, nothing is lost.
rig_config "ReinjectTo inet:$((RIG_PORT + 7))@127.0.0.1" "ReinjectKey $T/reinject.key" "Policy b.test require"
kill -USR1 "$MILTER_PID"
wait_for 10 grep -q 'configuration reloaded' "$MILTER_LOG"
message s4 "bob@b.test, carol@c.test"
rig_send "$T/s4.eml" alice@a.test bob@b.test carol@c.test
rc=$?
check "endpoint down, SMTP: 4xx" test "$rc" = 4
check "endpoint down, SMTP: 451 4.3.0" sh -c "echo '$REPLY' | grep -q '^451 4.3.0 Cables: cannot queue a copy'"
check "endpoint down: the log says why" grep -q ': tempfail: split delivery: re-injection to inet:'"$((RIG_PORT + 7))"'@127.0.0.1: connect: Connection refused' "$MILTER_LOG"
rig_submit "$T/s4.eml" alice@a.test bob@b.test carol@c.test
wait_for 20 sh -c "[ \$(grep -c 'tempfail: split delivery' $MILTER_LOG) -ge 2 ]"
sleep 1
check "endpoint down, sendmail: the message stays queued" test "$(queue_count)" = 1
check "endpoint down: no copy reached the wire" test "$(ncopies s4)" = 0
rig_config "$REINJECT" "ReinjectKey $T/reinject.key" "Policy b.test require"
kill -USR1 "$MILTER_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -ge 2 ]"
queue_kick
if wait_copies s4 2; then
	check "endpoint back: exactly two copies, none lost, none twice" test "$(ncopies s4)" = 2
	check "endpoint back: bob's copy encrypted" sh -c "f=\$(grep -l pkcs7-mime $(copies s4 | tr '\n' ' ')) && ! grep -q PLAINTEXT-MARKER \$f"
else
	not_ok "endpoint back: the queued message was delivered" "$(queue_count) queued"
fi
check "endpoint down: nothing bounced" sh -c "! grep -q 'status=bounced' $PF/maillog"

# 5. Markers: a forged one is removed and has no effect; a genuine one does not
#    carry over to other recipients; a genuine copy passes as it is.
now=$(date +%s)
{
	printf 'X-Cables-Reinjected: v2 t=%s n=0123456789abcdef h=%s\r\n' "$now" \
		"$(printf '0%.0s' $(seq 1 64))"
	cat "$T/s1.eml"
} | sed 's/s1@a.test/s5@a.test/' > "$T/s5.eml"
rig_send "$T/s5.eml" alice@a.test bob@b.test
check "forged marker: accepted" test $? = 0
if wait_copies s5 1; then
	f=$(copies s5)
	check "forged marker: the message was still encrypted" sh -c "grep -q pkcs7-mime $f && ! grep -q PLAINTEXT-MARKER $f"
	check "forged marker: the field is gone" sh -c "! grep -q '^X-Cables-Reinjected: v2 t=$now n=0123456789abcdef' $f"
fi
check "forged marker: the log says it was removed" \
	grep -q ': encrypted: .*; X-Cables-Reinjected field removed: it does not verify' "$MILTER_LOG"
if [ -f "$T/s1.carol" ]; then
	# carol's genuine copy, sent again to bob: the marker is bound to carol.
	sed 's/s1@a.test/s6@a.test/' "$T/s1.carol" > "$T/s6.eml"
	rig_send "$T/s6.eml" alice@a.test bob@b.test
	if wait_copies s6 1; then
		f=$(copies s6)
		check "replayed marker, other recipient: still encrypted" sh -c "grep -q pkcs7-mime $f && ! grep -q PLAINTEXT-MARKER $f"
	else
		not_ok "replayed marker, other recipient: delivered"
	fi
	# The same copy, same recipient, replayed on the filtering port: a marker passes once
	# (it did, on the re-injection port), so it is removed and the copy filtered like any other.
	before=$(grep -c 'a copy re-injected by Cables' "$MILTER_LOG")
	rig_send "$T/s1.carol" alice@a.test carol@c.test
	check "replayed genuine copy: accepted" test $? = 0
	check "replayed genuine copy: not passed as ours" \
		test "$(grep -c ': pass: a copy re-injected by Cables' "$MILTER_LOG")" = "$before"
	check "replayed genuine copy: the log says the marker was used before" \
		grep -q 'X-Cables-Reinjected field removed: the marker has been used before' "$MILTER_LOG"
fi

# 5b. S/MIME and OpenPGP recipients, one of them Bcc: a copy per format, and
# the Bcc recipient's OpenPGP copy hides its key ID (--throw-keyids).
keyctl generate frank@f.test --pgp >/dev/null
keyctl generate gina@g.test --pgp >/dev/null
GP=$T/gp
gpg_home "$GP"
for who in frank@f.test gina@g.test; do
	keyctl export "$who" --private --out "$T/${who%@*}.sec"
	gpg --homedir "$GP" --batch -q --import "$T/${who%@*}.sec" 2>/dev/null
done
pgp_decrypts() {	# COPY ENTITY: gpg gives back the entity
	# (gpg exits 2 after trying a wrong key on a hidden recipient even when the next one works)
	$MAILTOOL pgp-payload "$1" > "$T/payload.asc" || return 1
	gpg --homedir "$GP" --batch -q --pinentry-mode loopback --passphrase '' --decrypt "$T/payload.asc" \
		> "$T/pgp.out" 2>/dev/null
	cmp -s "$T/pgp.out" "$2"
}
key_ids() {	# COPY: the key IDs the OpenPGP message names
	$MAILTOOL pgp-payload "$1" | gpg --homedir "$GP" --batch --list-packets 2>/dev/null |
		sed -n 's/.*pubkey enc packet: .*keyid \([0-9A-F]*\).*/\1/p' | tr '\n' ' '
}
message s8 "Bob <bob@b.test>, Frank <frank@f.test>"
rig_send "$T/s8.eml" alice@a.test bob@b.test frank@f.test gina@g.test
check "smime + pgp + bcc: accepted" test $? = 0
if wait_copies s8 3; then
	check "smime + pgp + bcc: exactly three copies" test "$(ncopies s8)" = 3
	if b=$(copy_for s8 bob@b.test); then
		check "smime + pgp: bob's copy is S/MIME" is_smime "$b"
		check "smime + pgp: bob decrypts his copy" decrypts_to "$b" "$T/bob.pem" "$T/s8.entity"
	else
		not_ok "smime + pgp: a copy for bob alone" "$(for f in $(copies s8); do echo "$f: $(rcpts_of "$f")"; done)"
	fi
	if f=$(copy_for s8 frank@f.test); then
		check "smime + pgp: frank's copy is PGP/MIME and decrypts" pgp_decrypts "$f" "$T/s8.entity"
		check "smime + pgp: frank's copy names his key ID" sh -c "[ \"\$(echo $(key_ids "$f"))\" != 0000000000000000 ]"
		check "smime + pgp: frank's copy has no plaintext" no_plaintext "$f"
	else
		not_ok "smime + pgp: a copy for frank alone"
	fi
	if g=$(copy_for s8 gina@g.test); then
		check "pgp bcc: gina decrypts her copy" pgp_decrypts "$g" "$T/s8.entity"
		check "pgp bcc: gina's copy hides the key ID" test "$(key_ids "$g")" = "0000000000000000 "
		check "pgp bcc: the log says gina's copy is a Bcc copy for one" \
			grep -qE 'OpenPGP \(bcc\) to gina@g.test as [0-9A-Za-z]+ \(format=pgp; recipients=1; bcc\)' "$MILTER_LOG"
		check "pgp bcc: gina's copy carries no X-Cables field" sh -c "! grep -qi '^X-Cables:' $g"
	else
		not_ok "pgp bcc: a copy for gina alone"
	fi
else
	not_ok "smime + pgp + bcc: three copies arrived" "$(tail -n 5 "$MILTER_LOG")"
fi
check "smime + pgp + bcc: the log names each copy's format" \
	grep -qE ': encrypted: format=smime .*split: kept encrypted to bob@b.test; copies (OpenPGP to frank@f.test|OpenPGP \(bcc\) to gina@g.test)' "$MILTER_LOG"

# 6. Without ReinjectTo, mixed recipients under require are refused as before.
rig_config "ReinjectKey $T/reinject.key" "Policy b.test require"
kill -USR1 "$MILTER_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -ge 3 ]"
message s7 "bob@b.test, colleague@a.test"
rig_send "$T/s7.eml" alice@a.test bob@b.test colleague@a.test
check "no ReinjectTo: local + remote under require temp-fails" test $? = 4
check "no ReinjectTo: the reply says split delivery is missing" sh -c "echo '$REPLY' | grep -q 'no ReinjectTo for split delivery'"

check "the milter is still running" kill -0 "$MILTER_PID"
rig_done
