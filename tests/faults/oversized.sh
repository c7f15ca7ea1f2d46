#!/bin/sh
# Fault: mail larger than MaxMessageSize.  For a require recipient it is
# refused with 552 5.3.4 (never sent in plaintext); for encrypt it passes
# unchanged with a log line; the milter's memory stays bounded.
RIG_PORT=12250
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

rig_config "MaxMessageSize 1M" "Policy b.test require"
rig_postfix
rig_sink
# Under AddressSanitizer freed memory sits in a quarantine (256 MB) and
# would read as growth; the allocator's own cache is what we measure here.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0" rig_milter
keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --smime >/dev/null
$MAILTOOL make "$T/big.eml" big		# a 20 MB attachment

rig_send "$T/big.eml" alice@a.test bob@b.test
check "oversized, require: 5xx" test $? = 5
check "oversized, require: 552 5.3.4" sh -c "echo '$REPLY' | grep -q '^552 5.3.4 Cables: message too large to encrypt'"
rig_send "$T/big.eml" alice@a.test carol@c.test
check "oversized, encrypt: accepted" test $? = 0
check "oversized, encrypt: delivered unchanged" wait_for 60 sink_has 1
check "oversized, encrypt: the log says why it left in plaintext" \
	grep -q 'plaintext: message larger than MaxMessageSize.*(policy encrypt)' "$MILTER_LOG"
# The first two messages warmed the allocator (thread arenas, libmilter's
# buffers); three more 20 MB messages must not add to the footprint.
rss_before=$(rss_kb "$MILTER_PID")
for i in 1 2 3; do
	rig_send "$T/big.eml" alice@a.test carol@c.test || diag "send $i: $REPLY"
done
check "oversized, encrypt: three more delivered" wait_for 90 sink_has 4
rss_after=$(rss_kb "$MILTER_PID")
diag "milter RSS after two 20 MB messages ${rss_before} KiB, after five ${rss_after} KiB"
check "oversized: the milter did not hold the messages in memory" test $((rss_after - rss_before)) -lt 8192
wait_for 30 queue_empty
fault_result oversized 5 4 "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "the milter survived" milter_alive
rig_done
