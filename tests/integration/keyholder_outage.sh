#!/bin/sh
# Keyholder outage is its own error class (issue 14): with On-InternalError
# accept, a message that needs a private-key operation while cables-keyholder
# is down is temp-failed (4xx: the MTA keeps it) instead of passing
# undecrypted, unsigned, or unencrypted; once the keyholder is back the same
# mail is decrypted and signed.  An internal error that has nothing to do
# with the keyholder still follows On-InternalError accept (the class is the
# keyholder's alone).
RIG_PORT=12620
. "$top_srcdir/tests/integration/rig.sh"

mkdir -p "$T/store"
rig_config "KeyStore $T/store/keys.db" "On-InternalError accept" "Policy a.test Sign=yes" "SignUnauthenticated yes"
keyctl generate alice@a.test --smime >/dev/null
keyctl generate bob@b.test --smime >/dev/null
keyctl export alice@a.test > "$T/alice-cert.pem"
rig_postfix
rig_sink
rig_milter

printf 'Content-Type: text/plain\r\n\r\nthe plan PLAINTEXT-MARKER\r\n' > "$T/inner.txt"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/in.p7m" -recip "$T/alice-cert.pem"
$MAILTOOL smime-message "$T/in.p7m" "$T/in.eml" --header "From: <eve@e.test>" --header "To: <alice@a.test>" \
	--header "Subject: inbound"
$MAILTOOL make "$T/out.eml" plain

# With the keyholder up, each of the three needs it and gets what it needs.
if rig_send "$T/in.eml" eve@e.test alice@a.test && w=$(capture); then
	check "keyholder up: inbound decrypted" grep -q PLAINTEXT-MARKER "$w"
else
	not_ok "keyholder up: inbound delivered" "$REPLY"
fi
if rig_send "$T/out.eml" alice@a.test bob@b.test && w=$(capture); then
	check "keyholder up: outbound encrypted and signed" \
		grep -q "$(qid_of_reply): encrypted: format=smime .*signed" "$MILTER_LOG"
else
	not_ok "keyholder up: outbound delivered" "$REPLY"
fi
if rig_send "$T/out.eml" alice@a.test carol@c.test && w=$(capture); then
	check "keyholder up: outbound without a key is clear-signed" grep -q 'multipart/signed' "$w"
else
	not_ok "keyholder up: clear-signed delivered" "$REPLY"
fi

stop_keyholder "$CONF"
before=$(sink_count)
rig_send "$T/in.eml" eve@e.test alice@a.test
check "keyholder down, On-InternalError accept: inbound encrypted mail is temp-failed (4xx)" test $? = 4
rig_send "$T/out.eml" alice@a.test bob@b.test
check "keyholder down: outbound mail to encrypt and sign is temp-failed, not sent unsigned" test $? = 4
rig_send "$T/out.eml" alice@a.test carol@c.test
check "keyholder down: outbound mail to sign only is temp-failed, not sent unsigned" test $? = 4
check "keyholder down: the milter logs the class and that the policy was overridden" \
	test "$(grep -c 'tempfail: keyholder unavailable: .*whatever On-InternalError says' "$MILTER_LOG")" -ge 3
check "keyholder down: nothing passed as plaintext (On-InternalError accept was not applied)" \
	sh -c "! grep -q 'plaintext: internal error' '$MILTER_LOG'"
check "keyholder down: nothing reached the wire" test "$(sink_count)" = "$before"

# The class is the keyholder's alone: mail that needs no private key still passes.
if rig_send "$T/out.eml" dave@d.test carol@c.test && w=$(capture); then
	check "keyholder down: mail that needs no private key is still delivered" grep -q 'Subject' "$w"
else
	not_ok "keyholder down: mail without a private-key operation delivered" "$REPLY"
fi

start_keyholder "$CONF"
if rig_send "$T/in.eml" eve@e.test alice@a.test && w=$(capture); then
	check "keyholder back: inbound decrypted again" grep -q PLAINTEXT-MARKER "$w"
else
	not_ok "keyholder back: inbound delivered" "$REPLY"
fi
if rig_send "$T/out.eml" alice@a.test carol@c.test && w=$(capture); then
	check "keyholder back: clear-signed again" grep -q 'multipart/signed' "$w"
else
	not_ok "keyholder back: clear-signed delivered" "$REPLY"
fi
rig_done
