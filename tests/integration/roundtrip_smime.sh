#!/bin/sh
# Two mail domains on loopback, each a Postfix with its own cables-milter:
# alice@a.test writes to bob@b.test; a.test signs and encrypts, the copy on
# the wire is S/MIME, b.test decrypts and checks the signature, and bob's
# Maildir holds what alice sent.  Our signatures verify with openssl and
# gpgsm, also when the mail leaves unencrypted (clear-signed).
RIG_PORT=12080
. "$top_srcdir/tests/integration/rig.sh"

APORT=$((RIG_PORT + 5))
BPORT=$((RIG_PORT + 7))
rig_sink
# Header protection and padding off: the signed part is compared with what alice sent (hp_roundtrip.sh has them on).
inst_config a a.test "DefaultPolicy require" "Policy c.test encrypt" "Policy a.test Sign=yes" "SignUnauthenticated yes" \
	"HeaderProtection off" "Padding none"
inst_config b b.test "DefaultPolicy encrypt"
# Every message a.test sends is also copied to the sink: that copy is what went on the wire.
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob"
inst_keyctl a generate alice@a.test --smime >/dev/null
inst_keyctl b generate bob@b.test --smime --algo p256 >/dev/null
inst_keyctl a export alice@a.test > "$T/alice-cert.pem"
inst_keyctl b export bob@b.test > "$T/bob-cert.pem"
inst_keyctl a import "$T/bob-cert.pem" >/dev/null
inst_keyctl b import "$T/alice-cert.pem" >/dev/null
inst_milter a
inst_milter b

# send ID SUBJECT TO: a message from alice, with a Message-ID to find it by.
send() {
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDear Bob,\r\n\r\nthe numbers for Q3: 42. PLAINTEXT-MARKER\r\n\r\n-- \r\nAlice\r\n' \
		"$3" "$2" "$1" > "$T/$1.eml"
	$MAILTOOL entity "$T/$1.eml" > "$T/$1.entity"
	inst_send "$APORT" "$T/$1.eml" alice@a.test "$3"
}
# wire ID: the copy of message ID that left a.test.
wire() {
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $SINK/* >/dev/null 2>&1" || return 1
	f=$(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* | head -n 1)
	sink_message "$f" > "$T/$1.wire"
	echo "$T/$1.wire"
}
# at_bob ID: bob's copy of message ID.
at_bob() {
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $T/b/mail/bob/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$1@a.test>" "$T/b/mail/bob/Maildir/new"/* | head -n 1
}

# 1. Signed and encrypted, decrypted and verified at b.test.
if send rt1 "Q3 numbers" bob@b.test; then
	ok "alice -> bob accepted by a.test"
	if w=$(wire rt1); then
		check "on the wire: S/MIME" grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "$w"
		check "on the wire: no plaintext" sh -c "! grep -q PLAINTEXT-MARKER $w"
		check "a.test's log: signed and encrypted" \
			grep -q "$(qid_of_reply): encrypted: format=smime cipher=aes256-cbc recipients=1 signed" "$T/a/milter.log"
		check "on the wire: no X-Cables field" sh -c "! grep -qi '^X-Cables' $w"
	else
		not_ok "the wire copy was captured"
	fi
	if f=$(at_bob rt1); then
		check "bob's copy: decrypted" grep -q '^X-Cables: decrypted; format=smime; key=[0-9a-f]*$' "$f"
		check "bob's copy: signature valid, signer alice, in b.test's Authentication-Results" \
			grep -q '^Authentication-Results: mx.b.test; smime=pass body.smime-identifier="alice@a.test"$' "$f"
		check "bob's copy: only b.test's X-Cables field" test "$(grep -c '^X-Cables:' "$f")" = 1
		check "bob's copy: only b.test's Authentication-Results field" \
			test "$(grep -c '^Authentication-Results:' "$f")" = 1
		check "bob's copy: the Subject is alice's" grep -q '^Subject: Q3 numbers$' "$f"
		$MAILTOOL split-signed "$f" "$T/rt1.part" "$T/rt1.sig"
		check "bob's copy: the signed part is what alice sent, byte for byte" cmp "$T/rt1.part" "$T/rt1.entity"
		check "bob's copy: openssl cms -verify accepts alice's signature" \
			openssl cms -verify -in "$f" -CAfile "$T/alice-cert.pem" -out "$T/rt1.verified"
	else
		not_ok "bob received the message"
	fi
else
	not_ok "alice -> bob accepted by a.test" "$REPLY"
fi

# 2. Clear-signed: carol@c.test has no certificate and c.test's policy is encrypt.
if send rt2 "unencrypted but signed" carol@c.test && w=$(wire rt2); then
	check "clear-signed: the wire copy is multipart/signed" grep -q '^Content-Type: multipart/signed; protocol="application/pkcs7-signature"' "$w"
	check "clear-signed: openssl cms -verify" openssl cms -verify -in "$w" -CAfile "$T/alice-cert.pem" -out "$T/rt2.verified"
	$MAILTOOL split-signed "$w" "$T/rt2.part" "$T/rt2.sig"
	check "clear-signed: the signed part is the original content, byte for byte" cmp "$T/rt2.part" "$T/rt2.entity"
	if command -v gpgsm >/dev/null 2>&1; then
		G=$T/g
		mkdir -m 700 "$G"
		printf 'disable-crl-checks\ndisable-dirmngr\n' > "$G/gpgsm.conf"
		GNUPGHOME=$G gpgsm --batch --import "$T/alice-cert.pem" >/dev/null 2>&1
		fpr=$(GNUPGHOME=$G gpgsm --with-colons --list-keys alice@a.test | awk -F: '/^fpr/ { print $10; exit }')
		echo "$fpr S relax" > "$G/trustlist.txt"
		check "clear-signed: gpgsm --verify" sh -c \
			"GNUPGHOME=$G gpgsm --batch --verify $T/rt2.sig $T/rt2.part 2>&1 | grep -q 'Good signature'"
		GNUPGHOME=$G gpgconf --kill gpg-agent 2>/dev/null
	fi
else
	not_ok "clear-signed: sent and captured" "$REPLY"
fi

# 3. Without a signature (Sign no): bob's Maildir holds the original content itself.
sed -i "s/^Policy a.test Sign=yes$/Policy a.test Sign=no/" "$T/a/cables.conf"
inst_milter a
if send rt3 "plain round trip" bob@b.test && f=$(at_bob rt3); then
	$MAILTOOL entity "$f" > "$T/rt3.got"
	check "unsigned round trip: bob's content is alice's, byte for byte" cmp "$T/rt3.got" "$T/rt3.entity"
	check "unsigned round trip: decrypted at b.test" grep -q '^X-Cables: decrypted; format=smime; key=' "$f"
else
	not_ok "unsigned round trip: delivered" "$REPLY"
fi
rig_done
