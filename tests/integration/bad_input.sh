#!/bin/sh
# Bad and unusual input through a real Postfix: malformed MIME, no body,
# already-encrypted mail, mislabelled "encrypted" mail, oversized mail.
# Nothing crashes, nothing is double-encrypted, nothing leaks.
RIG_PORT=12040
. "$top_srcdir/tests/integration/rig.sh"

rig_config "DefaultPolicy require" "MaxMessageSize 64K" "Policy c.test encrypt"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --smime --algo p256 >/dev/null
keyctl export bob@b.test --private --out "$T/bob.pem"

decrypts_to() {
	openssl cms -decrypt -in "$1" -recip "$T/bob.pem" -inkey "$T/bob.pem" -binary -out "$T/dec.out" &&
	cmp "$T/dec.out" "$2"
}

# Malformed MIME and a message without body are encrypted as they are.
for kind in broken-mime no-body; do
	$MAILTOOL make "$T/$kind.eml" "$kind"
	$MAILTOOL entity "$T/$kind.eml" > "$T/$kind.entity"
	if rig_send "$T/$kind.eml" alice@a.test bob@b.test && wire=$(capture); then
		check "$kind: encrypted, and decrypts to the entity byte for byte" decrypts_to "$wire" "$T/$kind.entity"
	else
		not_ok "$kind: accepted and delivered" "$REPLY"
	fi
done

# Already S/MIME-encrypted by the sender's client: passes unchanged, not wrapped twice.
printf 'Content-Type: text/plain\r\n\r\nencrypted by the client PLAINTEXT-MARKER\r\n' > "$T/inner.txt"
openssl cms -encrypt -aes-256-cbc -binary -in "$T/inner.txt" -out "$T/smime.body" "$T/bob.pem"
{ printf 'From: alice@a.test\r\nTo: bob@b.test\r\nSubject: pre-encrypted\r\n'; cat "$T/smime.body"; } |
	sed 's/$/\r/; s/\r\r$/\r/' > "$T/smime.eml"
if rig_send "$T/smime.eml" alice@a.test bob@b.test && wire=$(capture); then
	$MAILTOOL body "$T/smime.eml" > "$T/smime.sent-body"
	$MAILTOOL body "$wire" > "$T/smime.wire-body"
	check "already S/MIME: body passes unchanged" cmp "$T/smime.sent-body" "$T/smime.wire-body"
	check "already S/MIME: no trace header (not re-encrypted)" sh -c "! grep -q '^X-Cables:' $wire"
	check "already S/MIME: logged as already encrypted" grep -q 'pass: already encrypted (smime-enveloped)' "$MILTER_LOG"
else
	not_ok "already S/MIME: accepted and delivered" "$REPLY"
fi

# Already inline-PGP-encrypted text: passes unchanged.  Its packets are those of
# ciphertext (a whole session-key packet, tag 1, then encrypted data, tag 18):
# a shape alone no longer passes (outbound_already_encrypted.sh).
printf 'From: alice@a.test\r\nTo: bob@b.test\r\nSubject: pgp\r\nContent-Type: text/plain\r\n\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nwQwDEjRWeJCrze8BAADSBQGqu8zd\r\n=abcd\r\n-----END PGP MESSAGE-----\r\n\r\n' > "$T/pgp.eml"
if rig_send "$T/pgp.eml" alice@a.test bob@b.test && wire=$(capture); then
	check "already inline PGP: passes unchanged" grep -q '^-----BEGIN PGP MESSAGE-----' "$wire"
	check "already inline PGP: logged" grep -q 'pass: already encrypted (pgp-inline)' "$MILTER_LOG"
else
	not_ok "already inline PGP: accepted and delivered" "$REPLY"
fi

# Mislabelled: says it is S/MIME but the body is plaintext. It is encrypted, not passed.
printf 'From: alice@a.test\r\nTo: bob@b.test\r\nSubject: liar\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\nPLAINTEXT-MARKER pretending to be CMS\r\n' > "$T/liar.eml"
$MAILTOOL entity "$T/liar.eml" > "$T/liar.entity"
if rig_send "$T/liar.eml" alice@a.test bob@b.test && wire=$(capture); then
	check "mislabelled S/MIME: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"
	check "mislabelled S/MIME: encrypted (decrypts to the entity)" decrypts_to "$wire" "$T/liar.entity"
else
	not_ok "mislabelled S/MIME: accepted and delivered" "$REPLY"
fi
printf 'From: alice@a.test\r\nTo: bob@b.test\r\nSubject: liar2\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nx\r\n-----END PGP MESSAGE-----\r\nPLAINTEXT-MARKER after the block\r\n' > "$T/liar2.eml"
if rig_send "$T/liar2.eml" alice@a.test bob@b.test && wire=$(capture); then
	check "text after a PGP block: encrypted, no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"
else
	not_ok "text after a PGP block: accepted and delivered" "$REPLY"
fi

# Oversized (MaxMessageSize 64K): require rejects with 552; encrypt sends plaintext and says so.
$MAILTOOL make "$T/big.eml" html-attachment
head -c 100000 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/' >> "$T/big.eml"
rig_send "$T/big.eml" alice@a.test bob@b.test
rc=$?
check "oversized, require: 5xx" test "$rc" = 5
check "oversized, require: 552 5.3.4" sh -c "echo '$REPLY' | grep -q '^552 5.3.4'"
check "oversized, require: logged with the limit" grep -q 'reject: message larger than MaxMessageSize (65536 bytes) (policy require)' "$MILTER_LOG"
rig_send "$T/big.eml" alice@a.test carol@c.test
check "oversized, encrypt: accepted" test $? = 0
check "oversized, encrypt: logged as plaintext" grep -q 'plaintext: message larger than MaxMessageSize (65536 bytes) (policy encrypt)' "$MILTER_LOG"

check "the milter survived all of it" kill -0 "$MILTER_PID"
$MAILTOOL make "$T/plain.eml" plain
if rig_send "$T/plain.eml" alice@a.test bob@b.test && wire=$(capture); then
	check "and still encrypts" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
else
	not_ok "and still encrypts" "$REPLY"
fi
rig_done
