#!/bin/sh
# The README's first command: tools/demo, with this build's programs
# (CABLES_DEMO_BUILD), its own directory and ports.  It must run to its end
# and show what the README promises: the wire copy encrypted, bob's copy
# as alice sent it (signature verified, her fields restored, her text byte
# for byte), split delivery to carol, and everything it started stopped.
RIG_PORT=12850
. "$top_srcdir/tests/integration/rig.sh"

demo_out=$T/demo.out
CABLES_DEMO_BUILD=$BUILD CABLES_DEMO_DIR=$T/demo CABLES_DEMO_PORT=$RIG_PORT "$SRC/tools/demo" > "$demo_out" 2>&1
rc=$?
check "tools/demo runs to its end ($(tail -n 1 "$demo_out"))" test "$rc" = 0
check "... the wire copy is S/MIME" grep -q '^Content-Type: application/pkcs7-mime' "$demo_out"
check "... bob's copy is what alice sent" grep -q "Bob's copy is what Alice sent, with her signature" "$demo_out"
check "... it says everything it started has been stopped" grep -q 'everything started has been stopped' "$demo_out"
# (dem[o]: the pattern must not match the command line of the check itself)
check "... and nothing of it is left running" sh -c "! pgrep -f '$T/dem[o]/' >/dev/null"
rig_done
