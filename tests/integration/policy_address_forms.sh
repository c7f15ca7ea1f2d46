#!/bin/sh
# Every way of writing a require recipient meets its rule (issue 15 item 5):
# a final dot, letter case, a quoted local part, the U-label of an A-label
# rule; and a recipient that cannot be classified (an address literal) is
# temp-failed alone.  Without a key, each gets 4xx and nothing leaves, while
# a recipient under encrypt does get plaintext (so the rig would show a leak).
RIG_PORT=12540
. "$top_srcdir/tests/integration/rig.sh"

rig_config "DefaultPolicy encrypt" "Policy partner.example require" "Policy .partner.example require" \
	"Policy xn--bcher-kva.example require"
rig_postfix
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

# The control: a recipient under encrypt without a key gets plaintext.
rig_send "$T/plain.eml" alice@a.test carol@other.example
check "control: encrypt, no key: accepted" test $? = 0
check "control: delivered in plaintext" wait_for 30 sink_has 1

# variant ADDRESS [MAIL-OPT]: 4xx, and the log names the require rule (not plaintext).
variant() {
	addr=$1
	REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test ${2:+--mail-opt "$2"} --to "$addr" \
		"$T/plain.eml")
	rc=$?
	check "$addr: 4xx" test "$rc" = 4
	case "$REPLY" in
	"451 4.7.1 Cables: cannot encrypt as policy requires"*) ok "$addr: refused as policy require says" ;;
	*) not_ok "$addr: refused as policy require says" "$REPLY" ;;
	esac
}
variant 'bob@partner.example.'
variant 'Bob@PARTNER.Example.'
variant '"bob"@partner.example'
variant 'bob@mx.sub.partner.example.'
variant 'bob@XN--BCHER-KVA.example.'
variant "bob@b$(printf '\303\274')cher.example" SMTPUTF8
check "require variants: logged as policy require" \
	test "$(grep -c 'tempfail: no usable S/MIME certificate for .*(policy require)' "$MILTER_LOG")" = 6

# A recipient no rule can be applied to: temp-failed at RCPT, alone.
REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --to 'bob@[192.0.2.1]' "$T/plain.eml")
check "address literal: 4xx" test $? = 4
case "$REPLY" in
"451 4.1.3 Cables: cannot classify this recipient address"*) ok "address literal: the reply says why" ;;
*) not_ok "address literal: the reply says why" "$REPLY" ;;
esac
check "address literal: logged" grep -q 'tempfail: recipient <bob@\[192.0.2.1\]>: cannot classify' "$MILTER_LOG"

check "nothing but the control reached the wire" test "$(sink_count)" = 1
check "the queue is empty (no plaintext waiting to leave)" test "$(queue_count)" = 0
check "the milter is still running" kill -0 "$MILTER_PID"
rig_done
