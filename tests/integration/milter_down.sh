#!/bin/sh
# The milter is down: Postfix answers 4xx (milter_default_action = tempfail),
# locally submitted mail waits in the queue, nothing leaves unencrypted, and
# everything is delivered, encrypted, once the milter is back.
RIG_PORT=12030
. "$top_srcdir/tests/integration/rig.sh"

rig_config "DefaultPolicy require"
rig_postfix
rig_sink
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

rig_send "$T/plain.eml" alice@a.test bob@b.test
rc=$?
check "milter down, SMTP: 4xx reply" test "$rc" = 4
check "milter down, SMTP: nothing queued (the client keeps it)" test "$(queue_count)" = 0
rig_submit "$T/plain.eml" alice@a.test bob@b.test
wait_for 10 grep -q 'milter' "$PF/maillog"
sleep 1
check "milter down, sendmail: the message waits in the queue" test "$(queue_count)" = 1
check "milter down: nothing reached the wire" test "$(sink_count)" = 0

rig_milter
queue_kick
check "milter back: the waiting message is delivered" wait_for 60 sink_has 1
check "milter back: it left encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$(sink_files | head -n 1)"
check "milter back: the queue is empty" wait_for 20 sh -c "[ \$(find $PF/queue/maildrop $PF/queue/deferred $PF/queue/active $PF/queue/incoming -type f | wc -l) = 0 ]"
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "milter back, SMTP: accepted" test $? = 0
check "milter back, SMTP: delivered" wait_for 30 sink_has 2

# Killed while Postfix waits: the message in flight is temp-failed, not lost.
rig_milter_stop
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "milter killed: 4xx again" test $? = 4
check "milter killed: no plaintext on the wire" sh -c "! grep -l PLAINTEXT-MARKER $SINK/*"
rig_done
