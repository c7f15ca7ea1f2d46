#!/bin/sh
# Fault: the milter is killed (SIGKILL) in the middle of messages.  Postfix
# temp-fails what was in flight (milter_default_action = tempfail); after a
# restart everything is delivered, encrypted, nothing twice, nothing lost.
RIG_PORT=12230
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

rig_config "Policy b.test require"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

# 1. Killed while a message is half sent over SMTP.
rm -f "$T/pause"
$MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --to bob@b.test --pause-file "$T/pause" \
	"$T/plain.eml" > "$T/reply1" &
client=$!
wait_for 30 test -f "$T/pause"
rig_milter_stop
rm -f "$T/pause"
wait "$client"
rc=$?
check "killed mid-DATA: the client gets 4xx" test "$rc" = 4
check "killed mid-DATA: nothing queued" test "$(queue_count)" = 0

# 2. Local submissions while it is dead stay queued.
for i in 1 2 3 4 5; do rig_submit "$T/plain.eml" alice@a.test bob@b.test; done
wait_for 30 sh -c "[ \$(find $PF/queue/maildrop -type f | wc -l) -ge 5 ]"
sleep 1
check "milter dead: local submissions wait" test "$(queue_count)" = 5

# 3. Killed again and again while a batch goes through over SMTP.
rig_milter
queue_kick
accepted=0 tempfailed=0
i=0
while [ $i -lt 40 ]; do
	i=$((i + 1))
	if [ $((i % 10)) = 5 ]; then
		kill -9 "$MILTER_PID"
		wait "$MILTER_PID" 2>/dev/null
		rm -f "$T/milter.sock"
		(sleep 0.3; echo restart > "$T/restart") &
	fi
	if [ -f "$T/restart" ]; then rm -f "$T/restart"; rig_milter; fi
	if rig_send "$T/plain.eml" alice@a.test bob@b.test; then
		accepted=$((accepted + 1))
	else
		tempfailed=$((tempfailed + 1))
	fi
done
[ -z "$MILTER_PID" ] || kill -0 "$MILTER_PID" 2>/dev/null || rig_milter
wait_for 5 test -S "$T/milter.sock" || rig_milter
queue_kick
check "batch with kills: some transactions temp-failed while it was down ($tempfailed)" test "$tempfailed" -gt 0
check "restarted: everything accepted is delivered" wait_for 120 sink_has $((accepted + 5))
wait_for 30 queue_empty
sleep 1
fault_result milter-killed $((40 + 5 + 1)) $((accepted + 5)) "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "restarted: every copy on the wire is encrypted" \
	test "$(grep -L '^Content-Type: application/pkcs7-mime' "$SINK"/* | wc -l)" = 0
check "restarted: the milter runs" milter_alive
rig_done
