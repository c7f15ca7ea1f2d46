#!/bin/sh
# Fault: gpg cannot work (the GnuPG home is replaced by a file while the
# milter runs, so every gpg it starts fails).  Mail for an OpenPGP recipient
# under require temp-fails (SMTP: 4xx; local submission: stays queued),
# never leaves in plaintext, and is delivered encrypted once gpg works
# again; S/MIME mail flows all along.
RIG_PORT=12300
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"

rig_config "DefaultPolicy require" "Policy d.test On-KeyNotFound=reject"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --pgp >/dev/null
keyctl generate carol@c.test --smime >/dev/null
$MAILTOOL make "$T/plain.eml" plain

rig_send "$T/plain.eml" alice@a.test bob@b.test
check "gpg working: accepted" test $? = 0
wait_for 30 sink_has 1

mv "$T/gnupg" "$T/gnupg.saved"
echo 'not a directory' > "$T/gnupg"
held_back "gpg broken" bob@b.test 'tempfail: .*OpenPGP'
rig_send "$T/plain.eml" alice@a.test carol@c.test
check "gpg broken: S/MIME mail still flows" test $? = 0
# A key the milter has not looked at yet: gpg failing is this server's fault, not a missing key,
# so even On-KeyNotFound=reject gives 4xx, not 5xx.
keyctl generate dave@d.test --pgp >/dev/null
rig_send "$T/plain.eml" alice@a.test dave@d.test
check "gpg broken, a key not yet seen: 4xx, not reject" test $? = 4
check "gpg broken: no plaintext on the wire" test "$(leaks b.test)" = 0

rm -f "$T/gnupg"
mv "$T/gnupg.saved" "$T/gnupg"
queue_kick
check "gpg back: the waiting message is delivered" wait_for 60 sink_has 3
wait_for 30 queue_empty
fault_result gpg-broken 5 3 "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "gpg back: bob's copies are PGP/MIME" \
	test "$(grep -l '^Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"' "$SINK"/* | wc -l)" = 2
check "the milter survived" milter_alive
rig_done
