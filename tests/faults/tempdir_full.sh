#!/bin/sh
# Fault: TempDir is full (a 1 MB tmpfs).  A message too big to spool in
# memory temp-fails with the reason (SMTP: 4xx; local submission: stays
# queued); small mail still flows; once there is room the waiting mail is
# delivered, encrypted.
RIG_PORT=12220
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

mkdir -p "$T/tmpfs"
if ! mount -t tmpfs -o size=1m,mode=1777 tmpfs "$T/tmpfs" 2>"$T/mount.err"; then
	echo "1..0 # SKIP cannot mount a tmpfs here: $(cat "$T/mount.err")"
	exit 0
fi
unmount() { umount "$T/tmpfs" 2>/dev/null; rig_cleanup; }
trap unmount EXIT
# Fill it up.
dd if=/dev/zero of="$T/tmpfs/fill" bs=64k count=100 2>/dev/null

rig_config "TempDir $T/tmpfs" "Policy b.test require"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null
$MAILTOOL make "$T/small.eml" plain
$MAILTOOL make "$T/big.eml" html-attachment
# A body well over the 64 KiB kept in memory.
python3 - "$T/big.eml" <<'PY'
import sys
p = sys.argv[1]
d = open(p, "rb").read()
open(p, "wb").write(d.replace(b"PLAINTEXT-MARKER\r\n", b"PLAINTEXT-MARKER\r\n" + b"filler line of text\r\n" * 20000, 1))
PY

rig_send "$T/big.eml" alice@a.test bob@b.test
check "TempDir full, SMTP: 4xx" test $? = 4
check "TempDir full: the log names the disk" grep -q 'tempfail: .*No space left on device' "$MILTER_LOG"
rig_send "$T/small.eml" alice@a.test bob@b.test
check "TempDir full: small mail still flows" test $? = 0
rig_submit "$T/big.eml" alice@a.test bob@b.test
wait_for 30 sh -c "[ \$(grep -c 'No space left on device' $MILTER_LOG) -ge 2 ]"
sleep 1
check "TempDir full, sendmail: the big message waits in the queue" test "$(queue_count)" = 1
check "TempDir full: no plaintext on the wire" test "$(leaks b.test)" = 0

rm -f "$T/tmpfs/fill"
queue_kick
check "room again: the waiting message is delivered" wait_for 60 sink_has 2
wait_for 30 queue_empty
fault_result tempdir-full 3 2 "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "room again: both copies encrypted" \
	test "$(grep -l '^Content-Type: application/pkcs7-mime' "$SINK"/* | wc -l)" = 2
check "the milter survived" milter_alive
rig_done
