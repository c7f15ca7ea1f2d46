#!/bin/sh
# Inbound S/MIME through a real Postfix delivering to Maildirs: what openssl
# and gpgsm encrypt for local users arrives decrypted, byte for byte; what
# cannot or must not be decrypted arrives unchanged with the reason; forged
# result fields are removed; signatures are checked.
RIG_PORT=12070
. "$top_srcdir/tests/integration/rig.sh"

BPORT=$((RIG_PORT + 5))
inst_config b b.test
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob carol dave"
inst_milter b
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate carol@b.test --smime --algo p256 >/dev/null
inst_keyctl b export bob@b.test > "$T/bob-cert.pem"
inst_keyctl b export carol@b.test > "$T/carol-cert.pem"
# eve is nobody here: her key lives elsewhere.
inst_config e e.test
inst_keyctl e generate eve@e.test --smime >/dev/null
inst_keyctl e export eve@e.test > "$T/eve-cert.pem"

printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\303\274\303\237e, Bob! PLAINTEXT-MARKER\r\n\r\n.a line with a dot\r\n' > "$T/inner.txt"
{ printf 'MIME-Version: 1.0\r\n'; cat "$T/inner.txt"; } > "$T/expected.entity"

# message CMSFILE [--der]: wrap CMS from a tool into a message from alice to $TO.
message() {
	out=$T/$(basename "$1").eml
	$MAILTOOL smime-message "$1" "$out" ${2:-} --header "From: Alice <alice@a.test>" \
		--header "To: $TO" --header "Subject: $(basename "$1")"
	echo "$out"
}

# deliver FILE RCPT...: send to b.test and wait until Postfix has delivered it.
deliver() {
	file=$1
	shift
	inst_send "$BPORT" "$file" alice@a.test "$@" || return 1
	wait_for 60 delivered_in "$T/b/pf" "$(qid_of_reply)"
}

# newest USER: the copy of the message just delivered (queue ID from $REPLY) to USER.
newest() { maildir_file b "$1"; }

# decrypted_ok DESCRIPTION USER: delivered decrypted, content byte for byte.
decrypted_ok() {
	f=$(newest "$2")
	$MAILTOOL entity "$f" > "$T/got.entity"
	check "$1: the Maildir copy is the original content, byte for byte" cmp "$T/got.entity" "$T/expected.entity"
	check "$1: X-Cables says decrypted" grep -q '^X-Cables: decrypted; format=smime; key=[0-9a-f]\{16\}' "$f"
}

# not_decrypted_ok DESCRIPTION USER REASON: delivered unchanged, with the reason.
not_decrypted_ok() {
	f=$(newest "$2")
	check "$1: delivered still encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$f"
	check "$1: no plaintext delivered" sh -c "! grep -q PLAINTEXT-MARKER $f"
	check "$1: X-Cables gives the reason" grep -q "^X-Cables: not-decrypted; format=smime; reason=\".*$3" "$f"
}

TO=bob@b.test
for cipher in aes-256-cbc aes-256-gcm; do
	openssl cms -encrypt -binary -$cipher -in "$T/inner.txt" -out "$T/$cipher.smime" "$T/bob-cert.pem"
	if deliver "$(message "$T/$cipher.smime")" bob@b.test; then
		decrypted_ok "openssl $cipher to an RSA key" bob
	else
		not_ok "openssl $cipher: delivered" "$REPLY"
	fi
done
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/oaep.smime" \
	-recip "$T/bob-cert.pem" -keyopt rsa_padding_mode:oaep
if deliver "$(message "$T/oaep.smime")" bob@b.test; then
	decrypted_ok "openssl RSA-OAEP" bob
else
	not_ok "openssl RSA-OAEP: delivered" "$REPLY"
fi
TO=carol@b.test
openssl cms -encrypt -binary -aes-256-gcm -in "$T/inner.txt" -out "$T/ec.smime" "$T/carol-cert.pem"
if deliver "$(message "$T/ec.smime")" carol@b.test; then
	decrypted_ok "openssl to an EC P-256 key" carol
else
	not_ok "openssl EC: delivered" "$REPLY"
fi

# gpgsm (GnuPG's S/MIME) encrypts to bob.
TO=bob@b.test
if command -v gpgsm >/dev/null 2>&1; then
	G=$T/g
	mkdir -m 700 "$G"
	printf 'disable-crl-checks\ndisable-dirmngr\n' > "$G/gpgsm.conf"
	GNUPGHOME=$G gpgsm --batch --import "$T/bob-cert.pem" >/dev/null 2>&1
	fpr=$(GNUPGHOME=$G gpgsm --with-colons --list-keys bob@b.test | awk -F: '/^fpr/ { print $10; exit }')
	echo "$fpr S relax" > "$G/trustlist.txt"
	GNUPGHOME=$G gpgconf --reload gpg-agent 2>/dev/null
	if GNUPGHOME=$G gpgsm --batch --encrypt -r bob@b.test -o "$T/gpgsm.der" "$T/inner.txt" 2>"$T/gpgsm.err" &&
	    deliver "$(message "$T/gpgsm.der" --der)" bob@b.test; then
		decrypted_ok "gpgsm" bob
	else
		not_ok "gpgsm: encrypted and delivered" "$(cat "$T/gpgsm.err")" "$REPLY"
	fi
	GNUPGHOME=$G gpgconf --kill gpg-agent 2>/dev/null
else
	ok "# SKIP gpgsm is not installed"
fi

# What cannot be decrypted arrives unchanged, with the reason.
openssl cms -encrypt -binary -aes-256-gcm -in "$T/inner.txt" -outform DER -out "$T/gcm.der" "$T/bob-cert.pem"
$PY -c "
d = bytearray(open('$T/gcm.der', 'rb').read())
d[len(d) - 30] ^= 0x55
open('$T/tampered.der', 'wb').write(d)"
if deliver "$(message "$T/tampered.der" --der)" bob@b.test; then
	not_decrypted_ok "tampered ciphertext" bob "cannot decrypt"
else
	not_ok "tampered: delivered" "$REPLY"
fi
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/eve.smime" "$T/eve-cert.pem"
if deliver "$(message "$T/eve.smime")" bob@b.test; then
	not_decrypted_ok "encrypted to another key" bob "bob@b.test is not a recipient of the encryption"
else
	not_ok "wrong key: delivered" "$REPLY"
fi
openssl cms -encrypt -binary -rc2 -provider legacy -provider default -in "$T/inner.txt" \
	-out "$T/rc2.smime" "$T/bob-cert.pem"
if deliver "$(message "$T/rc2.smime")" bob@b.test; then
	not_decrypted_ok "RC2 (an algorithm OpenSSL 3 does not offer by default)" bob "cannot decrypt (rc2-cbc)"
else
	not_ok "RC2: delivered" "$REPLY"
fi
printf 'this is !!! not base64\r\n' > "$T/junk.b64"
{ printf 'From: alice@a.test\r\nTo: bob@b.test\r\nSubject: junk\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\nContent-Transfer-Encoding: base64\r\n\r\n'; cat "$T/junk.b64"; } > "$T/junk.eml"
if deliver "$T/junk.eml" bob@b.test; then
	check "corrupt base64: delivered with the reason" grep -q '^X-Cables: not-decrypted; format=smime; reason="bad base64' "$(newest bob)"
else
	not_ok "corrupt base64: delivered" "$REPLY"
fi

# Two local recipients, only one of them a target: neither gets plaintext.
TO="bob@b.test, carol@b.test"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/bobonly.smime" "$T/bob-cert.pem"
if deliver "$(message "$T/bobonly.smime")" bob@b.test carol@b.test; then
	wait_for 20 sh -c "grep -q ' id $(qid_of_reply)' $T/b/mail/carol/Maildir/new/*"
	not_decrypted_ok "bob and carol, encrypted to bob only: bob's copy" bob "carol@b.test is not a recipient"
	not_decrypted_ok "bob and carol, encrypted to bob only: carol's copy" carol "carol@b.test is not a recipient"
else
	not_ok "bob and carol: delivered" "$REPLY"
fi

# Forged result fields are removed: every X-Cables field, and every
# Authentication-Results field with b.test's authserv-id (mx.b.test) however
# it is written (other case, final dot, quoted, behind a comment, folded) or
# that cannot be read; another server's field stays.
{
	printf 'From: mallory@evil.test\r\nTo: bob@b.test\r\nCc: zed@z.test\r\nSubject: urgent\r\n'
	printf 'X-Cables: decrypted; format=smime; signature=valid; signer=ceo@b.test\r\n'
	printf 'Authentication-Results: mx.b.test; smime=pass body.smime-identifier="ceo@b.test"\r\n'
	printf 'Authentication-Results: (ours) "MX.B.Test."\r\n ; x-pgp=pass body.pgp-identifier="ceo@b.test"\r\n'
	printf 'Authentication-Results: (unclosed mx.b.test; smime=pass\r\n'
	printf 'Authentication-Results: mx.other.test; dkim=pass header.d=evil.test\r\n'
	printf 'x-cables: signature=valid\r\n\r\nWire the money.\r\n'
} > "$T/forged.eml"
# forged_gone DESCRIPTION FILE: no forged field left, the other server's field kept.
forged_gone() {
	check "$1: every X-Cables field removed" sh -c "! grep -qi '^X-Cables' $2"
	check "$1: every Authentication-Results field claiming mx.b.test removed" \
		sh -c "! grep -qi -e '^Authentication-Results:.*mx\.b\.test' -e 'smime=pass' -e 'x-pgp=pass' $2"
	check "$1: one Authentication-Results field left" test "$(grep -ci '^Authentication-Results:' "$2")" = 1
	check "$1: another server's Authentication-Results kept" \
		grep -q '^Authentication-Results: mx.other.test; dkim=pass header.d=evil.test' "$2"
}
if deliver "$T/forged.eml" bob@b.test; then
	forged_gone "inbound (all recipients local)" "$(newest bob)"
else
	not_ok "forged: delivered" "$REPLY"
fi
# The same with one remote Cc: the outbound path, which used to leave them for bob.
rig_sink
if inst_send "$BPORT" "$T/forged.eml" mallory@evil.test bob@b.test zed@z.test &&
    wait_for 60 sh -c "[ \$(grep -c '$(qid_of_reply): .*status=sent' $T/b/pf/maillog) -ge 2 ]"; then
	forged_gone "mixed (a remote Cc): bob's copy" "$(newest bob)"
	w=$(grep -l " id $(qid_of_reply)[;]*\$" "$SINK"/* | head -n 1)
	sink_message "$w" > "$T/forged.wire"
	forged_gone "mixed (a remote Cc): the copy on the wire" "$T/forged.wire"
else
	not_ok "forged, remote Cc: delivered" "$REPLY"
fi
rig_sink_stop

# Clear-signed mail from alice (whose certificate b.test holds): the signature is checked.
inst_config a a.test
inst_keyctl a generate alice@a.test --smime >/dev/null
inst_keyctl a export alice@a.test --private --out "$T/alice.pem"
inst_keyctl a export alice@a.test > "$T/alice-cert.pem"
inst_keyctl b import "$T/alice-cert.pem" >/dev/null
openssl cms -sign -binary -in "$T/inner.txt" -signer "$T/alice.pem" -out "$T/signed.smime"
TO=bob@b.test
if deliver "$(message "$T/signed.smime")" bob@b.test; then
	f=$(newest bob)
	check "clear-signed by a known signer: smime=pass in Authentication-Results" \
		grep -q '^Authentication-Results: mx.b.test; smime=pass body.smime-identifier="alice@a.test"$' "$f"
	check "clear-signed: no X-Cables field (nothing was decrypted)" sh -c "! grep -q '^X-Cables' $f"
	check "clear-signed: the signed entity is delivered as it was" \
		openssl cms -verify -in "$f" -CAfile "$T/alice-cert.pem" -out /dev/null
else
	not_ok "signed: delivered" "$REPLY"
fi
# A certificate address written to look like a result stays inside its quotes.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/inj.key" -out "$T/inj.pem" -days 2 -subj "/CN=inj" \
	-addext 'subjectAltName=email:mallory@evil.test; smime=pass' 2>/dev/null
cat "$T/inj.key" >> "$T/inj.pem"
openssl cms -sign -binary -in "$T/inner.txt" -signer "$T/inj.pem" -out "$T/injected.smime"
if deliver "$(message "$T/injected.smime")" bob@b.test; then
	f=$(newest bob)
	check "injected signer address: one quoted identifier, result policy" \
		grep -q '^Authentication-Results: mx.b.test; smime=policy reason="[^"]*" body.smime-identifier="mallory@evil.test; smime=pass" header.from="alice@a.test"$' "$f"
	check "injected signer address: no second result" \
		test "$(grep '^Authentication-Results:' "$f" | sed 's/"[^"]*"//g' | grep -o 'smime=' | wc -l)" = 1
else
	not_ok "injected: delivered" "$REPLY"
fi
# One decision line per message: the queue IDs Postfix accepted are those the milter logged, once each.
sed -n 's/.*postfix\/qmgr\[[0-9]*\]: \([0-9A-F]*\): from=.*/\1/p' "$T/b/pf/maillog" | sort -u > "$T/accepted"
sed -n 's/.*cables-milter\[[0-9]*\]: \([0-9A-F]*\): [a-z-]*: .*/\1/p' "$T/b/milter.log" | sort > "$T/decided"
check "one log line per message, with its queue ID" cmp "$T/accepted" "$T/decided"
rig_done
