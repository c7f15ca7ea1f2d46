#!/bin/sh
# Aliases and forwarding through a real Postfix (issue 15, item 6).  The
# milter on smtpd sees RCPT TO as the client gave it: "local" is decided
# before cleanup(8) expands virtual_alias_maps, and mail that local(8)
# forwards (aliases(5), .forward) is re-queued without passing any milter.
# The supported setup (cables-milter(8), ALIASES AND FORWARDING) routes
# everything that leaves the host through the exit listener, an smtpd that
# runs the milter again with the real remote recipients and is named by
# ExitDaemonName.  Checked here: a local alias expanding to a require
# partner with a key leaves encrypted and without one is held (4xx, never
# on the wire); mail decrypted for alice whose alias also forwards to a
# require partner is not plaintext on the wire; a local(8) alias and a
# sendmail(1) submission (non_smtpd_milters) likewise.
# InternalHosts leaves out 127.0.0.1: the exit listener is recognised by its
# name, not by the address Postfix's own SMTP client comes from.
RIG_PORT=12470
. "$top_srcdir/tests/integration/rig.sh"

EXIT_PORT=$((RIG_PORT + 5))
rig_config "LocalDomains a.test l.test" "InternalHosts 192.0.2.1" "ExitDaemonName cables-exit" \
	"Policy b.test require" "Policy d.test require"
if ! postfix_instance_maildir "$PF" "$SMTP_PORT" "$REINJECT_PORT" "$SINK_PORT" "unix:$T/milter.sock" a.test \
    "$T/mail" "alice carol" \
    "virtual_alias_maps = inline:{ team@a.test=bob@b.test, crew@a.test=dave@d.test, {alice@a.test=alice@a.test,bob@b.test}, {carol@a.test=carol@a.test,dave@d.test} }" \
    "mydestination = l.test" "alias_maps = inline:{ frank=bob@b.test, erin=dave@d.test }" "alias_database =" \
    "mailbox_size_limit = 0" \
    "default_transport = cables-exit:[127.0.0.1]:$EXIT_PORT" \
    "relay_transport = cables-exit:[127.0.0.1]:$EXIT_PORT"; then
	echo "Bail out! postfix does not start"
	exit 1
fi
# The exit listener, as etc/postfix-master.cf has it (the route out is the sink here).
postfix -c "$PF" stop >/dev/null 2>&1
cat >> "$PF/master.cf" <<MC
cables-exit unix - - n - - smtp
127.0.0.1:$EXIT_PORT inet n - n - - smtpd
  -o milter_macro_daemon_name=cables-exit
  -o smtpd_milters=unix:$T/milter.sock
  -o non_smtpd_milters=
  -o receive_override_options=no_address_mappings
  -o content_filter=smtp:[127.0.0.1]:$SINK_PORT
MC
if ! postfix -c "$PF" start >/dev/null 2>&1; then
	echo "Bail out! postfix with the exit listener does not start"
	exit 1
fi
rig_sink
rig_milter

keyctl generate alice@a.test --smime >/dev/null
keyctl generate carol@a.test --smime >/dev/null
keyctl generate bob@b.test --smime >/dev/null
keyctl export alice@a.test > "$T/alice-cert.pem"
keyctl export carol@a.test > "$T/carol-cert.pem"
keyctl export bob@b.test --private --out "$T/bob.pem"

printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello, PLAINTEXT-MARKER\r\n' > "$T/inner.txt"
# plain ID TO: a plaintext message from alice.
plain() {
	printf 'From: alice@a.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\n' "$2" "$1" "$1" > "$T/$1.eml"
	cat "$T/inner.txt" >> "$T/$1.eml"
}
# encrypted ID TO CERT: a message from carol@c.test, encrypted to CERT.
encrypted() {
	openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/$1.cms" "$3"
	$MAILTOOL smime-message "$T/$1.cms" "$T/$1.eml" --header "From: Carol <carol@c.test>" --header "To: $2" \
		--header "Subject: $1" --header "Message-ID: <$1@c.test>"
}
# wire_for ADDR ID: the sink files of message ID addressed to ADDR.
wire_for() {
	for f in $(grep -l "^Subject: $2" "$SINK"/* 2>/dev/null); do
		grep -q "^X-Rcpt-Args: <$1>" "$f" && echo "$f"
	done
	return 0
}
# encrypted_for_bob FILE: an S/MIME copy that bob's key opens to the original content.
encrypted_for_bob() {
	sink_message "$1" > "$1.eml" &&
	grep -q '^Content-Type: application/pkcs7-mime' "$1.eml" &&
	! grep -q PLAINTEXT-MARKER "$1.eml" &&
	openssl cms -decrypt -in "$1.eml" -recip "$T/bob.pem" -inkey "$T/bob.pem" -binary 2>/dev/null | grep -q PLAINTEXT-MARKER
}
# deferred_at_least N ADDR: Postfix deferred N messages for ADDR with the milter's 4xx.
deferred_at_least() {
	[ "$(grep "to=<$2>.*status=deferred.*4.7.1 Cables" "$PF/maillog" | sed 's/.*: \([0-9A-F]*\): to=.*/\1/' |
		sort -u | wc -l)" -ge "$1" ]
}
# held N ID ADDR: the Nth message for ADDR, ID, was deferred with the milter's 4xx and never reached the wire.
held() { wait_for 60 deferred_at_least "$1" "$3" && [ -z "$(wire_for "$3" "$2")" ]; }
# maildir_has USER ID: USER's Maildir holds ID, decrypted.
maildir_has() {
	f=$(grep -l "^Subject: $2" "$T/mail/$1/Maildir/new"/* 2>/dev/null | head -n 1)
	[ -n "$f" ] && grep -q PLAINTEXT-MARKER "$f" && ! grep -q '^Content-Type: application/pkcs7-mime' "$f"
}

# 1. A local alias expanding to a require partner with a key: encrypted on the wire.
plain v1 team@a.test
rig_send "$T/v1.eml" alice@a.test team@a.test
check "virtual alias to a keyed require partner: accepted ($REPLY)" test $? = 0
if wait_for 60 sh -c "[ -n \"\$(grep -l '^Subject: v1' $SINK/* 2>/dev/null)\" ]"; then
	f=$(wire_for bob@b.test v1)
	check "virtual alias to a keyed require partner: leaves encrypted to bob" encrypted_for_bob "$f"
else
	not_ok "virtual alias to a keyed require partner: reached the wire" "$(tail -n 5 "$MILTER_LOG")"
fi

# 2. A local alias expanding to a require partner without a key: held, never plaintext.
plain v2 crew@a.test
rig_send "$T/v2.eml" alice@a.test crew@a.test
check "virtual alias to a keyless require partner: accepted from the client ($REPLY)" test $? = 0
check "virtual alias to a keyless require partner: held with 4xx, nothing on the wire" held 1 v2 dave@d.test

# 3. Decrypted for alice, whose alias also forwards to bob (require, keyed): alice reads it, bob gets ciphertext.
encrypted f1 alice@a.test "$T/alice-cert.pem"
rig_send "$T/f1.eml" carol@c.test alice@a.test
check "decrypted for alice, forwarded to bob: accepted ($REPLY)" test $? = 0
if wait_for 60 sh -c "[ -n \"\$(grep -l '^Subject: f1' $SINK/* 2>/dev/null)\" ]"; then
	check "decrypted for alice, forwarded to bob: alice's copy is decrypted" wait_for 30 maildir_has alice f1
	check "decrypted for alice, forwarded to bob: bob's copy is encrypted to bob" \
		encrypted_for_bob "$(wire_for bob@b.test f1)"
else
	not_ok "decrypted for alice, forwarded to bob: reached the wire" "$(tail -n 5 "$MILTER_LOG")"
fi

# 4. Decrypted for carol, whose alias also forwards to dave (require, no key): held, never plaintext.
encrypted f2 carol@a.test "$T/carol-cert.pem"
rig_send "$T/f2.eml" carol@c.test carol@a.test
check "decrypted for carol, forwarded to dave: accepted ($REPLY)" test $? = 0
check "decrypted for carol, forwarded to dave: carol's copy is decrypted" wait_for 30 maildir_has carol f2
check "decrypted for carol, forwarded to dave: held with 4xx, nothing on the wire" held 2 f2 dave@d.test

# 5. local(8) forwarding (aliases(5); .forward takes the same path): re-queued without a milter, caught at the exit.
plain l1 frank@l.test
rig_send "$T/l1.eml" alice@a.test frank@l.test
if wait_for 60 sh -c "[ -n \"\$(grep -l '^Subject: l1' $SINK/* 2>/dev/null)\" ]"; then
	check "local(8) alias to a keyed require partner: leaves encrypted to bob" \
		encrypted_for_bob "$(wire_for bob@b.test l1)"
else
	not_ok "local(8) alias to a keyed require partner: reached the wire" "$(tail -n 5 "$MILTER_LOG")"
fi
# passed_exit: the copy local(8) forwarded (a new queue file) went through the milter at the exit listener.
passed_exit() {
	q=$(sed -n 's/.*status=sent (forwarded as \([0-9A-F]*\)).*/\1/p' "$PF/maillog" | head -n 1)
	[ -n "$q" ] && grep -q "$q: to=<bob@b.test>.*relay=127.0.0.1\[127.0.0.1\]:$EXIT_PORT.*status=sent" "$PF/maillog"
}
check "local(8) forwarding: the forwarded copy went through the exit listener" passed_exit
plain l2 erin@l.test
rig_send "$T/l2.eml" alice@a.test erin@l.test
check "local(8) alias to a keyless require partner: held, nothing on the wire" held 3 l2 dave@d.test

# 5b. sendmail(1): non_smtpd_milters also see the recipient before expansion; the exit catches it.
plain s1 crew@a.test
rig_submit "$T/s1.eml" alice@a.test crew@a.test
check "sendmail(1) to a virtual alias of a keyless require partner: held, nothing on the wire" held 4 s1 dave@d.test

# 6. Mail encrypted on the first pass passes the exit unchanged: encrypted once, not twice.
plain d1 bob@b.test
rig_send "$T/d1.eml" alice@a.test bob@b.test
if wait_for 60 sh -c "[ -n \"\$(grep -l '^Subject: d1' $SINK/* 2>/dev/null)\" ]"; then
	check "direct to a keyed require partner: encrypted once (bob's key opens it to the plaintext)" \
		encrypted_for_bob "$(wire_for bob@b.test d1)"
else
	not_ok "direct to a keyed require partner: reached the wire" "$(tail -n 5 "$MILTER_LOG")"
fi

check "no plaintext for b.test on the wire" test "$(leaks b.test)" = 0
check "no plaintext for d.test on the wire" test "$(leaks d.test)" = 0
check "nothing for d.test on the wire at all" sh -c "! grep -q '^X-Rcpt-Args: <dave@d.test>' $SINK/* 2>/dev/null"
rig_done
