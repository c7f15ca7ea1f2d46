#!/bin/sh
# Faults: cables-keyd down, then DNS down (keyd up), then a DNSSEC-bogus
# answer.  Mail for recipients whose keys are only in DNS, under require,
# waits (SMTP: 4xx; local submission: stays queued) and is delivered
# encrypted once keyd and DNS are back; the bogus key is never used; nothing
# is lost, nothing leaks.
RIG_PORT=12350
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
SOCK=$T/keyd.sock
R=$T/r
dns_store "$R" r.test
for u in kim lee; do "$KEYCTL" -c "$R/conf" generate $u@r.test --smime >/dev/null; done
dns_publish_zone r.test "$R/conf"
dns_sign_zone r.test 20351231000000 20250101000000
# b.test: mo's record replaced after signing (bogus).
sed 's/r\.test\./b.test./g; s/\$ORIGIN r.test/$ORIGIN b.test/' "$Z/r.test.zone" > "$Z/b.test.zone"
dns_sign_zone b.test 20351231000000 20250101000000
"$KEYCTL" -c "$R/conf" generate mo@b.test --smime >/dev/null
sed -i "s|^$(dns_owner kim)\._smimecert\.b\.test\.|$(dns_owner mo)._smimecert.b.test.|" "$Z/b.test.zone.signed"
dns_start_nsd "$DNSPORT" r.test b.test

rig_config "KeydSocket $SOCK" "Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout 1s" \
	"DefaultPolicy require"
rig_postfix
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

# 1. keyd down.
held_back "keyd down" kim@r.test 'On-KeydError'
rig_keyd
queue_kick
wait_for 60 queue_empty
fault_result keyd-down 2 1 "$(sink_count)" "$(queue_count)" "$(leaks r.test)"

# 2. DNS down, keyd up: keyd answers tempfail, the milter waits.
dns_stop_nsd
held_back "DNS down" lee@r.test 'tempfail: key lookup: lee@r.test tempfail reason=.*no answer'
dns_start_nsd "$DNSPORT" r.test b.test
queue_kick
wait_for 60 sh -c "[ \$(find $SINK -type f | wc -l) -ge 2 ] && [ \$(find $T/pf/queue/deferred $T/pf/queue/active $T/pf/queue/incoming $T/pf/queue/maildrop -type f 2>/dev/null | wc -l) = 0 ]"
fault_result dns-down 2 1 "$(( $(sink_count) - 1 ))" "$(queue_count)" "$(leaks r.test)"

# 3. A bogus answer: never used; under require the message waits for a real key.
rig_send "$T/plain.eml" alice@a.test mo@b.test
check "DNSSEC-bogus key, require: 4xx" test $? = 4
check "DNSSEC-bogus: keyd logs it" grep -q 'keyd: mo@b.test SMIMEA: bogus DNSSEC answer, not used' "$MILTER_LOG"
check "DNSSEC-bogus: nothing stored for mo" sh -c "! $KEYCTL -c $CONF list | grep -q '^mo@b.test'"
fault_result dnssec-bogus 1 0 0 "$(queue_count)" "$(leaks b.test)"
check "every delivered copy is encrypted" \
	test "$(grep -L '^Content-Type: application/pkcs7-mime' "$SINK"/* | wc -l)" = 0
check "the milter survived" milter_alive
check "keyd survived" kill -0 "$KEYD_PID"
rig_done
