#!/bin/sh
# Load: 10,000 messages at concurrency 20 through the encrypting milter.
# Counts are exact (every message accepted, delivered once, encrypted) and
# the milter's resident memory stays flat once warm.  Timing figures are
# printed, never judged (bench/ measures speed).
RIG_PORT=12260
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

N=${LOAD_MESSAGES:-10000}
rig_config "Policy b.test require"
# Enough smtpd processes for 20 clients, and deliveries as fast as the sink takes them.
rig_postfix "default_process_limit = 60" "smtp_destination_concurrency_limit = 20"
rig_sink
# Under AddressSanitizer freed memory sits in a quarantine (256 MB): without
# it the milter's resident memory means the same as in a normal build.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0" rig_milter
keyctl generate bob@b.test --smime >/dev/null

t0=$(date +%s)
$PY "$SRC/tests/faults/load.py" --port "$SMTP_PORT" --to bob@b.test --count "$N" --concurrency 20 \
	--pid "$MILTER_PID" "$T/load.out" > /dev/null
diag "$(cat "$T/load.out")"
accepted=$(sed -n 's/.*accepted=\([0-9]*\).*/\1/p' "$T/load.out")
check "load: every message accepted ($accepted of $N)" test "$accepted" = "$N"
check "load: every message delivered" wait_for 600 sink_has "$accepted"
wait_for 120 queue_empty
diag "all delivered $(( $(date +%s) - t0 )) s after the first message"
sleep 1
fault_result load "$N" "$accepted" "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
diag "counted $(( $(date +%s) - t0 )) s after the first message"
check "load: each message delivered exactly once" \
	test "$(grep -h '^Message-ID: <load-' "$SINK"/* | sort -u | wc -l)" = "$N"
check "load: the milter logged one decision per message" \
	test "$(grep -c ': encrypted: format=smime' "$MILTER_LOG")" = "$N"

# Memory: after the first fifth (warm: caches, thread arenas) it must not keep growing.
set -- $(sed -n 's/^rss_kb=//p' "$T/load.out")
warm=$2 last=${10}
diag "milter RSS: $* (KiB, one sample per tenth of the messages)"
# A leak of half a kilobyte a message (4 MB over the last 8,000) fails this.  AddressSanitizer's
# allocator (shadow memory, redzones) moves by more on its own: 20% there.
allow=$((warm / 10 + 2048))
ldd "$MILTER" | grep -q libasan && allow=$((warm / 5 + 2048))
check "load: RSS stable (warm ${warm} KiB, end ${last} KiB, allowed growth ${allow} KiB)" \
	test "$last" -le $((warm + allow))
check "the milter survived" milter_alive
rig_done
