#!/bin/sh
# Fault: the next hop is down.  Mail is accepted, deferred and kept in the
# queue (never bounced), and delivered, still encrypted, once it is back.
RIG_PORT=12200
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

N=30
rig_config "Policy b.test require"
rig_postfix "bounce_queue_lifetime = 1d" "maximal_queue_lifetime = 1d"
rig_milter
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

accepted=0
for i in $(seq 1 "$N"); do
	case $((i % 3)) in
	0) to=carol@c.test ;;		# encrypt, no key: plaintext is allowed
	*) to=bob@b.test ;;		# require, keyed
	esac
	rig_send "$T/plain.eml" alice@a.test "$to" && accepted=$((accepted + 1))
done
check "next hop down: every message accepted" test "$accepted" = "$N"
check "next hop down: Postfix defers them" wait_for 60 sh -c "[ \$(grep -c 'status=deferred' $PF/maillog) -ge $N ]"
check "next hop down: all of them still queued" test "$(queue_count)" = "$N"
check "next hop down: nothing bounced" test "$(bounced)" = 0

rig_sink
queue_kick
check "next hop back: everything delivered" wait_for 120 sink_has "$N"
wait_for 30 sh -c "[ \$(find $PF/queue/deferred $PF/queue/active $PF/queue/incoming -type f | wc -l) = 0 ]"
fault_result next-hop-down "$N" "$accepted" "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "next hop back: bob's copies are encrypted" \
	test "$(grep -l '^X-Rcpt-Args: <bob@b.test>' "$SINK"/* | xargs grep -l '^Content-Type: application/pkcs7-mime' | wc -l)" = $((N - N / 3))
check "the leak count sees plaintext where policy allows it (carol, encrypt, no key)" test "$(leaks c.test)" = $((N / 3))
check "next hop down: nothing bounced in the end" test "$(bounced)" = 0
check "the milter survived" milter_alive
rig_done
