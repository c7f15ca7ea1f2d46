#!/bin/sh
# "Already encrypted" is decided by the content, not by its label (issue 15
# item 7): PGP/MIME (and inline PGP) whose armor holds a literal data packet
# (gpg --store: the plaintext in OpenPGP dress) is refused for a require
# recipient without a key, while real OpenPGP ciphertext made by gpg
# (session-key packet, then encrypted data) passes unchanged.
RIG_PORT=12420
. "$top_srcdir/tests/integration/rig.sh"

rig_config "DefaultPolicy require"
rig_postfix
rig_sink
rig_milter

G=$T/g
mkdir -m 700 "$G"
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nThe plan. PLAINTEXT-MARKER\r\n' > "$T/entity"
# pgpmime ARMOR NAME [--inline]: a message from alice to bob around ARMOR.
pgpmime() {
	$MAILTOOL pgp-message "$1" "$T/$2.eml" ${3:-} --header "From: alice@a.test" --header "To: bob@b.test" \
		--header "Subject: $2"
}

# Plaintext dressed as OpenPGP: a literal data packet, armored.
gpg --homedir "$G" --batch -q --armor --compress-algo none --store -o "$T/store.asc" "$T/entity" 2>/dev/null
check "gpg --store made a PGP MESSAGE armor" grep -q 'BEGIN PGP MESSAGE' "$T/store.asc"
pgpmime "$T/store.asc" fake-mime
pgpmime "$T/store.asc" fake-inline --inline
for kind in fake-mime fake-inline; do
	rig_send "$T/$kind.eml" alice@a.test bob@b.test
	check "$kind: 4xx for a require recipient without a key" test $? = 4
	check "$kind: the log says why it is not ciphertext" \
		grep -q "$(echo "$kind" | sed 's/fake-mime/pgp-mime/; s/fake-inline/pgp-inline/')[^;]*but not an encrypted OpenPGP message: packet tag 11" "$MILTER_LOG"
done
check "armored plaintext: nothing reached the wire" test "$(sink_count)" = 0
check "armored plaintext: nothing queued" test "$(queue_count)" = 0

# Real ciphertext: to a public key (session-key packet tag 1), and with a passphrase (tag 3).
gpg --homedir "$G" --batch -q --pinentry-mode loopback --passphrase '' \
	--quick-generate-key 'Bob <bob@b.test>' default default never 2>/dev/null
gpg --homedir "$G" --batch -q --trust-model always --armor -r bob@b.test -o "$T/pk.asc" --encrypt "$T/entity"
gpg --homedir "$G" --batch -q --pinentry-mode loopback --passphrase secret --armor -o "$T/sym.asc" \
	--symmetric "$T/entity"
n=0
for kind in pk sym; do
	pgpmime "$T/$kind.asc" "$kind"
	if rig_send "$T/$kind.eml" alice@a.test bob@b.test && wire=$(capture); then
		n=$((n + 1))
		check "$kind: passes unchanged (body byte for byte)" \
			sh -c "$MAILTOOL body $T/$kind.eml | cmp -s - \$($MAILTOOL body $wire > $T/$kind.wbody; echo $T/$kind.wbody)"
		check "$kind: logged as already encrypted" grep -q "$(qid_of_reply): pass: already encrypted (pgp-mime)" \
			"$MILTER_LOG"
		check "$kind: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"
	else
		not_ok "$kind: accepted and delivered" "$REPLY"
	fi
done
gpgconf --homedir "$G" --kill gpg-agent 2>/dev/null
check "the milter is still running" kill -0 "$MILTER_PID"
rig_done
