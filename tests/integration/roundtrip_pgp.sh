#!/bin/sh
# Two mail domains on loopback, each a Postfix with its own cables-milter,
# with OpenPGP keys only: alice@a.test writes to bob@b.test; a.test signs
# (RFC 3156 multipart/signed, through its keyholder) and encrypts, the copy
# on the wire is PGP/MIME that rnp (with bob's key) decrypts and whose
# signature rnp verifies, b.test decrypts (through its keyholder) and checks
# the signature, and bob's Maildir holds what alice sent as the signed part.  A revoked
# key is refused with the reason.
RIG_PORT=12290
. "$top_srcdir/tests/integration/rig.sh"

APORT=$((RIG_PORT + 5))
BPORT=$((RIG_PORT + 7))
rig_sink
# Header protection and padding off: the signed part is compared with what alice sent (hp_roundtrip.sh has them on).
inst_config a a.test "DefaultPolicy require" "Policy a.test Sign=yes" "SignUnauthenticated yes" \
	"HeaderProtection off" "Padding none"
inst_config b b.test "DefaultPolicy encrypt"
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob"
inst_keyctl a generate alice@a.test --pgp >/dev/null
inst_keyctl b generate bob@b.test --pgp --algo rsa3072 >/dev/null
inst_keyctl a export alice@a.test > "$T/alice.asc"
inst_keyctl b export bob@b.test > "$T/bob.asc"
inst_keyctl b export bob@b.test --private --out "$T/bob.sec"
inst_keyctl a import "$T/bob.asc" >/dev/null
inst_keyctl b import "$T/alice.asc" >/dev/null
inst_milter a
inst_milter b
# rnp (Thunderbird's engine) with bob's secret key and alice's public key.
RH=$T/rh
mkdir -m 700 "$RH"
rnpkeys --homedir "$RH" --import "$T/bob.sec" >/dev/null 2>&1
rnpkeys --homedir "$RH" --import "$T/alice.asc" >/dev/null 2>&1

send() {	# ID TO: a message from alice
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: Q3\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDear Bob,\r\n\r\nthe numbers for Q3: 42. Gr\303\274\303\237e PLAINTEXT-MARKER\r\n' \
		"$2" "$1" > "$T/$1.eml"
	$MAILTOOL entity "$T/$1.eml" > "$T/$1.entity"
	inst_send "$APORT" "$T/$1.eml" alice@a.test "$2"
}
wire() {	# ID: the copy of message ID that left a.test
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $SINK/* >/dev/null 2>&1" || return 1
	f=$(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* | head -n 1)
	sink_message "$f" > "$T/$1.wire"
	echo "$T/$1.wire"
}
at_bob() {	# ID: bob's copy of message ID
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $T/b/mail/bob/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$1@a.test>" "$T/b/mail/bob/Maildir/new"/* | head -n 1
}

if send rt1 bob@b.test; then
	ok "alice -> bob accepted by a.test"
	if w=$(wire rt1); then
		check "on the wire: PGP/MIME" $MAILTOOL pgp-payload "$w"
		check "on the wire: no plaintext" sh -c "! grep -q PLAINTEXT-MARKER $w"
		check "a.test's log: signed and encrypted" \
			grep -q "$(qid_of_reply): encrypted: format=pgp recipients=1 signed" "$T/a/milter.log"
		check "on the wire: no X-Cables field" sh -c "! grep -qi '^X-Cables' $w"
		$MAILTOOL pgp-payload "$w" > "$T/rt1.asc"
		rnp --homedir "$RH" --password '' --decrypt "$T/rt1.asc" --output "$T/rt1.rnp" > "$T/rnp.out" 2>&1
		# RFC 3156 6.1: multipart/signed (the signature made through a.test's keyholder), then encrypted.
		$MAILTOOL split-pgp-signed "$T/rt1.rnp" "$T/rt1.rnp-part" "$T/rt1.rnp-sig"
		check "rnp decrypts the wire copy to multipart/signed, the signed part what alice sent, byte for byte" \
			cmp -s "$T/rt1.rnp-part" "$T/rt1.entity"
		rnp --homedir "$RH" --verify "$T/rt1.rnp-sig" --source "$T/rt1.rnp-part" > "$T/rnp-verify.out" 2>&1
		check "rnp finds alice's signature good" grep -q 'Good signature' "$T/rnp-verify.out"
	else
		not_ok "the wire copy was captured"
	fi
	if f=$(at_bob rt1); then
		check "bob's copy: decrypted" grep -q '^X-Cables: decrypted; format=pgp; key=[0-9a-f]*$' "$f"
		check "bob's copy: signature valid, signer alice, in b.test's Authentication-Results" \
			grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="alice@a.test"$' "$f"
		check "bob's copy: only b.test's X-Cables field" test "$(grep -c '^X-Cables:' "$f")" = 1
		check "bob's copy: only b.test's Authentication-Results field" \
			test "$(grep -c '^Authentication-Results:' "$f")" = 1
		$MAILTOOL split-pgp-signed "$f" "$T/rt1.got" "$T/rt1.gotsig"
		check "bob's copy: the signed part is what alice sent, byte for byte" cmp -s "$T/rt1.got" "$T/rt1.entity"
	else
		not_ok "bob received the message"
	fi
else
	not_ok "alice -> bob accepted by a.test" "$REPLY"
fi

# rnp writes to alice's domain the other way: signed and encrypted with bob's key, inline.
rnp --homedir "$RH" --password '' --sign --encrypt -r alice@a.test -u bob@b.test --armor \
	"$T/rt1.entity" --output "$T/back.asc" >/dev/null 2>&1
$MAILTOOL pgp-message "$T/back.asc" "$T/back.eml" --inline --header "From: Bob <bob@b.test>" \
	--header "To: alice@a.test" --header "Subject: re" --header "Message-ID: <back@b.test>"
inst_keyctl a export alice@a.test --private --out "$T/alice.sec"
inst_keyctl a import "$T/bob.asc" >/dev/null
inst_send "$APORT" "$T/back.eml" bob@b.test alice@a.test
if wait_for 60 sh -c "grep -l '^Message-ID: <back@b.test>' $T/a/mail/alice/Maildir/new/* >/dev/null 2>&1"; then
	f=$(grep -l '^Message-ID: <back@b.test>' "$T/a/mail/alice/Maildir/new"/* | head -n 1)
	check "rnp signed+encrypted inline: decrypted at a.test" grep -q '^X-Cables: decrypted; format=pgp; inline; key=' "$f"
	check "rnp signed+encrypted inline: bob's signature valid" \
		grep -q '^Authentication-Results: mx.a.test; x-pgp=pass body.pgp-identifier="bob@b.test"$' "$f"
	check "rnp signed+encrypted inline: no armor left" sh -c "! grep -q 'BEGIN PGP MESSAGE' $f"
else
	not_ok "rnp's message reached alice"
fi

# A revoked key is never used: bob revokes his key with gpg, a.test learns
# of it, and mail to bob under require waits.
G=$T/g
gpg_home "$G"
gpg --homedir "$G" --batch -q --import "$T/bob.sec" 2>/dev/null
bfpr=$(gpg --homedir "$G" --batch --with-colons --list-keys bob@b.test | awk -F: '/^fpr/ { print $10; exit }')
# --gen-revoke asks: create it? (y), reason (0), description (empty line), okay? (y).
printf 'y\n0\n\ny\n' | gpg --homedir "$G" --no-tty --command-fd 0 --status-fd 1 --pinentry-mode loopback \
	--passphrase '' --armor -o "$T/bob.rev" --gen-revoke "$bfpr" >/dev/null 2>&1
gpg --homedir "$G" --batch -q --import "$T/bob.rev" 2>/dev/null
gpg --homedir "$G" --batch --armor --export bob@b.test > "$T/bob-revoked.asc"
gpgconf --homedir "$G" --kill all 2>/dev/null
check "keyctl refuses to import the revoked key" sh -c "! $KEYCTL -c $T/a/cables.conf import $T/bob-revoked.asc 2>$T/rev.err"
check "keyctl: the reason is the revocation" grep -q 'is revoked' "$T/rev.err"
inst_keyctl a import "$T/bob-revoked.asc" --force >/dev/null 2>&1
send rt3 bob@b.test
check "revoked key, require: 4xx" test $? = 4
check "revoked key: the log gives the reason" grep -q 'tempfail: no usable OpenPGP key for bob@b.test: OpenPGP key [0-9a-f]* is revoked' "$T/a/milter.log"
# The old copy of the key, imported again, does not undo the revocation (the store merges).
inst_keyctl a import "$T/bob.asc" --force >/dev/null 2>&1
send rt4 bob@b.test
check "an older copy of a revoked key does not revive it: 4xx" test $? = 4
check "keyctl show: still revoked" sh -c "$KEYCTL -c $T/a/cables.conf show bob@b.test | grep -q 'usable:      no (OpenPGP key [0-9a-f]* is revoked)'"
rig_done
