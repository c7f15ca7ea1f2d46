#!/bin/sh
# A Bcc recipient's key is never in the copy the other recipients see.
# Without split delivery (no ReinjectTo) such a message is temp-failed with
# the reason, and nothing leaves; with it, the visible copy names only the
# visible recipients' keys (split_outbound.sh checks more).  A recipient
# counts as Bcc when no To, Cc, Resent-To or Resent-Cc names its address
# (compared normalised: case of the domain, group syntax).
RIG_PORT=12703
RIG_PORTS=3
. "$top_srcdir/tests/integration/rig.sh"

rig_config
rig_postfix
rig_sink
rig_milter

keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --smime >/dev/null
keyctl generate dave@d.test --smime >/dev/null
for who in bob@b.test carol@c.test dave@d.test; do
	keyctl export "$who" --private --out "$T/${who%@*}.pem"
done

# message ID TO [CC]
message() {
	{
		printf 'From: Alice <alice@a.test>\r\nTo: %s\r\n' "$2"
		[ -n "${3:-}" ] && printf 'Cc: %s\r\n' "$3"
		printf 'Subject: bcc %s\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\n' "$1" "$1"
		printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\nHello, PLAINTEXT-MARKER %s\r\n' "$1"
	} > "$T/$1.eml"
}
recipient_infos() {
	openssl cms -cmsout -print -in "$1" 2>/dev/null | grep -cE 'd\.(ktri|kari):'
}
opens() {	# WIRE WHO
	openssl cms -decrypt -in "$1" -recip "$T/$2.pem" -inkey "$T/$2.pem" -out /dev/null 2>/dev/null
}

# 1. bob in To, dave in Bcc, no ReinjectTo: temp-failed, the reason says why, nothing on the wire.
message b1 "Bob <bob@b.test>"
if rig_send "$T/b1.eml" alice@a.test bob@b.test dave@d.test; then
	not_ok "no ReinjectTo: a Bcc recipient with a key is temp-failed" "$REPLY"
else
	case "$REPLY" in
	*"451 4.7.1 Cables: a Bcc recipient's key would be visible"*) ok "no ReinjectTo: temp-failed (451 4.7.1) with the reason" ;;
	*) not_ok "no ReinjectTo: temp-failed (451 4.7.1) with the reason" "$REPLY" ;;
	esac
	check "no ReinjectTo: the log names the Bcc recipient and the missing ReinjectTo" \
		grep -q 'tempfail: Bcc recipient dave@d.test would be named in the copy the other recipients get (no ReinjectTo for split delivery)' "$MILTER_LOG"
	check "no ReinjectTo: nothing left for the sink" test "$(sink_count)" = 0
fi

# 2. Named in To and Cc, with a different case and in a group: nobody is Bcc, one copy for both.
message b2 "BOB@B.TEST" "friends: Carol <carol@C.Test>;"
if rig_send "$T/b2.eml" alice@a.test bob@b.test carol@c.test; then
	w=$(capture)
	check "named (case, group): one copy with both keys" test "$(recipient_infos "$w")" = 2
	check "named (case, group): bob opens it" opens "$w" bob
	check "named (case, group): carol opens it" opens "$w" carol
else
	not_ok "named (case, group): accepted" "$REPLY"
fi

# 3. Only one recipient, not named (a list or an alias expanded before us): its own key alone, no leak.
message b3 "list@lists.a.test"
if rig_send "$T/b3.eml" alice@a.test dave@d.test; then
	w=$(capture)
	check "one undisclosed recipient: encrypted to that key alone" test "$(recipient_infos "$w")" = 1
else
	not_ok "one undisclosed recipient: accepted" "$REPLY"
fi

# 4. With ReinjectTo: the visible copy names bob alone, dave gets his own.
rig_config "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key"
rig_milter_restart
message b4 "Bob <bob@b.test>"
if rig_send "$T/b4.eml" alice@a.test bob@b.test dave@d.test; then
	wait_for 60 sh -c "[ \$(grep -l '^Message-ID: <b4@a.test>' $SINK/* 2>/dev/null | wc -l) -ge 2 ]"
	for f in $(grep -l '^Message-ID: <b4@a.test>' "$SINK"/*); do
		sink_message "$f" > "$f.eml"
		if grep -q '^X-Rcpt-Args: <bob@b.test>' "$f" || grep -qi 'RCPT TO:<bob@b.test>' "$f"; then v=$f.eml; else d=$f.eml; fi
	done
	check "ReinjectTo: the visible copy has one RecipientInfo" test "$(recipient_infos "${v:-/nonexistent}")" = 1
	check "ReinjectTo: bob opens the visible copy" opens "${v:-/nonexistent}" bob
	check "ReinjectTo: dave's key does not open the visible copy" sh -c \
		"[ -f '${v:-/nonexistent}' ] && ! openssl cms -decrypt -in '${v:-}' -recip $T/dave.pem -inkey $T/dave.pem -out /dev/null 2>/dev/null"
	check "ReinjectTo: dave opens his own copy" opens "${d:-/nonexistent}" dave
else
	not_ok "ReinjectTo: accepted" "$REPLY"
fi

rig_done
