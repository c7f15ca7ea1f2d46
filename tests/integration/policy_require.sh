#!/bin/sh
# Policy through a real Postfix: require never lets plaintext out and never
# loses mail; encrypt falls back to plaintext with a log line; the most
# specific Policy wins; unusable certificates are refused with their reason.
RIG_PORT=12020
. "$top_srcdir/tests/integration/rig.sh"

rig_config "DefaultPolicy require"
rig_postfix
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

# SMTP submission without a certificate: 451, the client keeps the message.
rig_send "$T/plain.eml" alice@a.test bob@b.test
rc=$?
check "require, no key, SMTP: 4xx reply" test "$rc" = 4
case "$REPLY" in
*"451 4.7.1 Cables: cannot encrypt as policy requires: no usable S/MIME certificate for bob@b.test"*)
	ok "require, no key, SMTP: the reply says why" ;;
*) not_ok "require, no key, SMTP: the reply says why" "$REPLY" ;;
esac
check "require, no key, SMTP: nothing queued" test "$(queue_count)" = 0
check "require, no key: log line with the reason" \
	grep -q ': tempfail: no usable S/MIME certificate for bob@b.test: no certificate (policy require)' "$MILTER_LOG"

# Local submission (sendmail): the message stays in Postfix's queue.
rig_submit "$T/plain.eml" alice@a.test bob@b.test
wait_for 20 sh -c "[ \$(grep -c 'tempfail: no usable S/MIME certificate for bob@b.test' $MILTER_LOG) -ge 2 ]"
sleep 1
check "require, no key, sendmail: the message stays queued" test "$(queue_count)" = 1
check "require, no key: nothing reached the wire (no plaintext, no bounce)" test "$(sink_count)" = 0
check "require, no key: nothing bounced" sh -c "! grep -q 'status=bounced' $PF/maillog"

# The certificate arrives: the queued message leaves, encrypted.
keyctl generate bob@b.test --smime >/dev/null
queue_kick
check "key arrives: the queued message is delivered" wait_for 60 sink_has 1
check "key arrives: the queue is empty" wait_for 20 sh -c "[ \$(find $PF/queue/maildrop $PF/queue/deferred $PF/queue/active $PF/queue/incoming -type f | wc -l) = 0 ]"
wire=$(sink_files | head -n 1)
check "key arrives: it left encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
check "key arrives: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"

# On-KeyNotFound reject: 550 with the reason.
rig_config "DefaultPolicy require" "On-KeyNotFound reject"
rig_milter_restart
rig_send "$T/plain.eml" alice@a.test carol@c.test
rc=$?
check "On-KeyNotFound reject: 5xx reply" test "$rc" = 5
check "On-KeyNotFound reject: 550 5.7.1" sh -c "echo '$REPLY' | grep -q '^550 5.7.1 Cables: cannot encrypt'"

# Most specific policy wins; encrypt without a key sends plaintext and says so.
rig_config "DefaultPolicy require" "Policy c.test encrypt" "Policy .d.test never" \
	"Policy vip@c.test require" "Policy d.test require"
rig_milter_restart
before=$(sink_count)
rig_send "$T/plain.eml" alice@a.test carol@c.test
check "encrypt, no key: accepted" test $? = 0
check "encrypt, no key: delivered" wait_for 30 sink_has $((before + 1))
check "encrypt, no key: in plaintext" sh -c "grep -l PLAINTEXT-MARKER $SINK/* | wc -l | grep -qx 1"
check "encrypt, no key: the log says plaintext and why" \
	grep -q ': plaintext: no usable S/MIME certificate for carol@c.test: no certificate (policy encrypt)' "$MILTER_LOG"
rig_send "$T/plain.eml" alice@a.test vip@c.test
check "address rule (require) beats domain rule (encrypt)" test $? = 4
rig_send "$T/plain.eml" alice@a.test x@sub.d.test
check ".d.test never covers subdomains" test $? = 0
rig_send "$T/plain.eml" alice@a.test x@d.test
check "exact domain rule (require) applies to d.test itself" test $? = 4

# Mixed recipients under require: one keyless recipient blocks the message (no split yet).
rig_send "$T/plain.eml" alice@a.test bob@b.test zed@b.test
rc=$?
check "require, one of two recipients keyless: 4xx" test "$rc" = 4
check "require, one of two recipients keyless: names the keyless one" \
	sh -c "echo '$REPLY' | grep -q 'zed@b.test'"
rig_send "$T/plain.eml" alice@a.test bob@b.test colleague@a.test
rc=$?
check "require, local and remote recipients: 4xx until split delivery" test "$rc" = 4
check "require, local and remote recipients: says split delivery" \
	sh -c "echo '$REPLY' | grep -q 'split delivery'"
rig_send "$T/plain.eml" alice@a.test colleague@a.test
check "local recipients only: accepted unchanged" test $? = 0
check "local recipients only: logged as pass (inbound)" grep -q ': pass: inbound, not encrypted or signed' "$MILTER_LOG"

# Unusable certificates in the store are refused at send time with their reason.
make_cert "$T/eve.pem" eve@e.test 20200101000000Z 20200201000000Z
if keyctl import "$T/eve.pem" > "$T/import.out" 2>&1; then
	not_ok "import refuses an expired certificate" "$(cat "$T/import.out")"
else
	check "import refuses an expired certificate, saying why" grep -q 'expired on 2020-02-01' "$T/import.out"
fi
check "import --force stores it anyway" keyctl import --force "$T/eve.pem"
make_cert "$T/sig.pem" sig@e.test 20200101000000Z 20991231000000Z digitalSignature
check "import --force a signing-only certificate" keyctl import --force "$T/sig.pem"
rig_send "$T/plain.eml" alice@a.test eve@e.test
check "expired certificate: 4xx under require" test $? = 4
check "expired certificate: the reason reaches the log" grep -q 'eve@e.test: certificate [0-9a-f]*: expired on 2020-02-01' "$MILTER_LOG"
rig_send "$T/plain.eml" alice@a.test sig@e.test
check "signing-only certificate: 4xx under require" test $? = 4
check "signing-only certificate: the reason reaches the log" grep -q 'sig@e.test: certificate [0-9a-f]*: key usage does not allow keyEncipherment' "$MILTER_LOG"

check "the milter is still running" kill -0 "$MILTER_PID"
rig_done
