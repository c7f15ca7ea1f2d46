#!/bin/sh
# Fault: the re-injection endpoint is down while mail for mixed recipients
# arrives.  Every transaction temp-fails as a whole (SMTP clients keep
# their mail, local submissions stay queued); once it is back every
# recipient gets exactly one copy, the keyed ones encrypted.
RIG_PORT=12210
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

N=10
DOWN="ReinjectTo inet:$((RIG_PORT + 8))@127.0.0.1"
UP="ReinjectTo inet:$REINJECT_PORT@127.0.0.1"
rig_config "$DOWN" "ReinjectKey $T/reinject.key" "Policy b.test require"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

tempfailed=0
for i in $(seq 1 "$N"); do
	rig_send "$T/plain.eml" alice@a.test bob@b.test carol@c.test
	[ $? = 4 ] && tempfailed=$((tempfailed + 1))
	rig_submit "$T/plain.eml" alice@a.test bob@b.test carol@c.test
done
check "endpoint down: every SMTP transaction temp-failed" test "$tempfailed" = "$N"
check "endpoint down: every local submission was temp-failed" \
	wait_for 60 sh -c "[ \$(grep -c 'tempfail: split delivery: re-injection' $MILTER_LOG) -ge $((2 * N)) ]"
sleep 1
check "endpoint down: the local submissions wait in the queue" test "$(queue_count)" = "$N"
check "endpoint down: nothing reached the wire" test "$(sink_count)" = 0

rig_config "$UP" "ReinjectKey $T/reinject.key" "Policy b.test require"
kill -USR1 "$MILTER_PID"
wait_for 10 grep -q 'configuration reloaded' "$MILTER_LOG"
queue_kick
check "endpoint back: two copies per message delivered" wait_for 120 sink_has $((2 * N))
wait_for 30 queue_empty
sleep 1
bob=$(grep -l '^X-Rcpt-Args: <bob@b.test>' "$SINK"/* | wc -l)
carol=$(grep -l '^X-Rcpt-Args: <carol@c.test>' "$SINK"/* | wc -l)
check "endpoint back: bob got each message once ($bob)" test "$bob" = "$N"
check "endpoint back: carol got each message once ($carol)" test "$carol" = "$N"
fault_result reinject-down "$N" "$N" $(( (bob + carol) / 2 )) "$(queue_count)" "$(leaks b.test)"
check "the milter survived" milter_alive
rig_done
