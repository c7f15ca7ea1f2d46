#!/bin/sh
# Header protection and padding between two Cables domains, and inbound
# interop: a.test protects (RFC 9788, hcp_baseline: "[...]" on the wire)
# and pads to a size bucket, b.test cuts the padding and restores, and
# bob's copy has alice's Subject, From, To and Cc, her content byte for
# byte (no padding, legacy display element or hp parameter left), and,
# signed, a valid signature.  Messages made as Thunderbird makes them
# (protected-headers="v1", a display part) and as RFC 9788's samples are
# (hp="cipher", legacy display), encrypted to bob and delivered inbound,
# show their protected Subject with the display element cut.  A protected
# From naming someone else than the outer From (ceo@b.test inside, from
# attacker@evil.test) is shown only when ceo's own valid signature covers
# it: unsigned, or signed by the attacker's valid certificate, the outer
# From stays and X-Cables says so; the same address outside is restored;
# the same with PGP/MIME signed and encrypted in one pass.
RIG_PORT=12710
. "$top_srcdir/tests/integration/rig.sh"

APORT=$((RIG_PORT + 5))
BPORT=$((RIG_PORT + 7))
rig_sink
# The shipped defaults: HeaderProtection baseline, Padding buckets.
inst_config a a.test "DefaultPolicy require" "SignUnauthenticated yes"
inst_config b b.test "DefaultPolicy encrypt"
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob dave"
inst_keyctl a generate alice@a.test --smime >/dev/null
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate dave@b.test --pgp >/dev/null
inst_keyctl a export alice@a.test > "$T/alice.pem"
inst_keyctl b export bob@b.test > "$T/bob.pem"
inst_keyctl b export dave@b.test > "$T/dave.asc"
inst_keyctl a import "$T/bob.pem" >/dev/null
inst_keyctl a import "$T/dave.asc" >/dev/null
inst_keyctl b import "$T/alice.pem" >/dev/null
inst_milter a
inst_milter b

# send ID TO: alice writes to TO, Cc carol (who is not a recipient of this copy).
send() {
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nCc: Carol <carol@c.test>\r\nSubject: Q3 numbers for %s\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDear Bob,\r\n\r\nthe numbers for Q3: 42. Gr\303\274\303\237e PLAINTEXT-MARKER\r\n\r\n-- \r\nAlice\r\n' \
		"$2" "$1" "$1" > "$T/$1.eml"
	$MAILTOOL entity "$T/$1.eml" > "$T/$1.entity"
	inst_send "$APORT" "$T/$1.eml" alice@a.test "$2"
}
wire() {	# ID: the copy of message ID that left a.test
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $SINK/* >/dev/null 2>&1" || return 1
	f=$(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* | head -n 1)
	sink_message "$f" > "$T/$1.wire"
	echo "$T/$1.wire"
}
at() {	# USER ID: USER's copy of message ID (Message-ID as written)
	wait_for 60 sh -c "grep -l '^Message-ID: <$2>' $T/b/mail/$1/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$2>" "$T/b/mail/$1/Maildir/new"/* | head -n 1
}
# same_fields GOT ORIGINAL: Subject, From, To, Cc, Date, Message-ID as the original's.
same_fields() {
	for h in Subject From To Cc Date Message-ID; do
		[ "$($MAILTOOL header "$1" "$h")" = "$($MAILTOOL header "$2" "$h")" ] ||
			{ echo "$h: '$($MAILTOOL header "$1" "$h")', sent '$($MAILTOOL header "$2" "$h")'"; return 1; }
	done
	[ "$(sed '/^\r*$/q' "$1" | grep -ci '^Subject:')" = 1 ] || { echo "more than one Subject outside"; return 1; }
}

# 1. S/MIME, unsigned: the content byte for byte.
for fmt in smime pgp; do
	to=bob@b.test user=bob
	[ $fmt = pgp ] && to=dave@b.test user=dave
	if send "u$fmt" "$to" && w=$(wire "u$fmt"); then
		check "$fmt: the wire copy says [...]" test "$($MAILTOOL header "$w" Subject)" = "[...]"
		if f=$(at $user "u$fmt@a.test"); then
			check "$fmt: $user's copy has alice's Subject, From, To, Cc, Date" same_fields "$f" "$T/u$fmt.eml"
			$MAILTOOL entity "$f" > "$T/u$fmt.got"
			check "$fmt: $user's content is alice's, byte for byte" cmp "$T/u$fmt.got" "$T/u$fmt.entity"
			check "$fmt: no HP-Outer, hp parameter or legacy display left" sh -c \
				"! grep -qiE '^HP-Outer|hp=|^Subject: Q3.*\$' $T/u$fmt.got"
			check "$fmt: b.test's log says what it restored" \
				grep -q "decrypted: format=$fmt.* pad=cut hp=rfc9788 restored=[1-9][0-9]* refused=0 legacy=cut" "$T/b/milter.log"
			check "$fmt: a.test padded it" grep -q "encrypted: format=$fmt.* hp=baseline .*pad=[0-9]" "$T/a/milter.log"
			check "$fmt: no padding field left" sh -c "! grep -qi '^Content-Padding' $f"
		else
			not_ok "$fmt: delivered to $user"
		fi
	else
		not_ok "$fmt: sent and captured" "$REPLY"
	fi
done

# 2. Signed then encrypted (S/MIME): fields restored, signature valid.
printf 'Policy a.test Sign=yes\n' >> "$T/a/cables.conf"
inst_milter a
if send signed bob@b.test && w=$(wire signed); then
	check "signed: the wire copy says [...]" test "$($MAILTOOL header "$w" Subject)" = "[...]"
	if f=$(at bob signed@a.test); then
		check "signed: bob's copy has alice's Subject, From, To, Cc, Date" same_fields "$f" "$T/signed.eml"
		check "signed: b.test found the signature valid" \
			grep -q '^Authentication-Results: mx.b.test; smime=pass body.smime-identifier="alice@a.test"$' "$f"
		check "signed: openssl cms -verify accepts it" openssl cms -verify -in "$f" -CAfile "$T/alice.pem" -out "$T/signed.out"
		check "signed: the signed part carries the protected fields" grep -q '^Subject: Q3 numbers for signed' "$T/signed.out"
	else
		not_ok "signed: delivered to bob"
	fi
else
	not_ok "signed: sent and captured" "$REPLY"
fi

# 3. Interop: fixtures encrypted to bob (S/MIME) and sent to b.test straight.
# inbound FIXTURE: outer header FIXTURE.outer (its encryption fields replaced), payload encrypted to bob.
inbound() {
	tr -d '\r' < "$FIX/$1.payload" | sed 's/$/\r/' > "$T/$1.payload"
	openssl cms -encrypt -aes-256-cbc -binary -in "$T/$1.payload" -out "$T/$1.p7" -outform DER "$T/bob.pem" || return 1
	{
		tr -d '\r' < "$FIX/$1.outer" | grep -v '^Received:\|^Return-Path:\|^Content-Type:\|^ boundary=\|^MIME-Version:' |
			sed 's/[a-z]*@receiver\.example/bob@b.test/; s/$/\r/'
		printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n'
		printf 'Content-Transfer-Encoding: base64\r\n\r\n'
		base64 -w 76 "$T/$1.p7" | sed 's/$/\r/'
	} > "$T/$1.eml"
	inst_send "$BPORT" "$T/$1.eml" sender@sender.example bob@b.test
}
FIX=$top_srcdir/tests/unit/fixtures/hp
if inbound thunderbird-v1 && f=$(at bob 5c1e0a9b-tb@sender.example); then
	check "thunderbird v1: the protected Subject is shown" test "$($MAILTOOL header "$f" Subject)" = "Minutes of the allotment meeting"
	check "thunderbird v1: the display part is cut" sh -c "! grep -q 'protected-headers=\"v1\"' $f"
	check "thunderbird v1: the text is there" grep -q 'Water rota starts in May' "$f"
	check "thunderbird v1: what remains is valid MIME (one part)" test "$(grep -c '^--------------mix1TB' "$f")" = 2
else
	not_ok "thunderbird v1: delivered" "$REPLY"
fi
if inbound legacy-text && f=$(at bob legacy-text-11@sender.example); then
	check "rfc 9788 legacy text: the protected Subject is shown" test "$($MAILTOOL header "$f" Subject)" = "Choir practice moves to Thursday"
	$MAILTOOL body "$f" > "$T/lt.body"
	check "rfc 9788 legacy text: the legacy display element is cut" sh -c \
		"printf 'We start at seven in the small hall; bring the new scores.\r\n' | cmp - $T/lt.body"
	check "rfc 9788 legacy text: no hp parameters left" sh -c "! grep -q 'hp=' $f"
else
	not_ok "rfc 9788 legacy text: delivered" "$REPLY"
fi
if inbound alternative && f=$(at bob alt-3@sender.example); then
	check "rfc 9788 alternative: the Cc the sender wrote stays" test "$(grep -ci '^Cc:' "$f")" = 1
	check "rfc 9788 alternative: the Cc the sender never wrote is gone" sh -c "! grep -qi '^Cc:.*mallory' $f"
	check "rfc 9788 alternative: the Reply-To the sender never wrote is gone" sh -c "! grep -qi '^Reply-To:' $f"
	check "rfc 9788 alternative: the protected Subject is shown" test "$($MAILTOOL header "$f" Subject)" = "Seeds ordered"
else
	not_ok "rfc 9788 alternative: delivered" "$REPLY"
fi

# 4. Who wrote it: a protected From other than the outer one needs that address's own valid signature.
# A CA under b.test's TrustAnchors issues ceo@b.test's and the attacker's certificates: both sign validly.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 30 -subj "/CN=HP Test CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
issue() {	# NAME ADDRESS: $T/NAME.pem, certificate and key for ADDRESS from the CA
	printf 'subjectAltName=email:%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n' \
		"$2" > "$T/$1.ext"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$T/$1.key" -subj "/CN=$1" -out "$T/$1.csr" 2>/dev/null &&
	openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 20 -extfile "$T/$1.ext" -out "$T/$1.crt" 2>/dev/null &&
	cat "$T/$1.crt" "$T/$1.key" > "$T/$1.pem"
}
issue ceo ceo@b.test || echo "Bail out! cannot issue ceo's certificate"
issue attacker attacker@evil.test || echo "Bail out! cannot issue the attacker's certificate"
printf 'TrustAnchors %s\n' "$T/ca.pem" >> "$T/b/cables.conf"
inst_milter b
# spoof ID INNER-FROM [SIGNER]: attacker@evil.test sends bob an encrypted message whose protected From is
# INNER-FROM, signed (then encrypted) with $T/SIGNER.pem when given; bob's copy's file on stdout.
spoof() {
	printf 'From: %s\r\nTo: bob@b.test\r\nSubject: Wire the money today (%s)\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\nMessage-ID: <%s@evil.test>\r\nContent-Type: text/plain; charset=us-ascii; hp="cipher"\r\n\r\nPlease wire it before noon.\r\n' \
		"$2" "$1" "$1" > "$T/$1.payload"
	if [ -n "${3:-}" ]; then
		openssl cms -sign -binary -crlfeol -in "$T/$1.payload" -signer "$T/$3.pem" -out "$T/$1.signed" || return 1
		sed 's/\r*$/\r/' "$T/$1.signed" > "$T/$1.payload"
	fi
	openssl cms -encrypt -aes-256-cbc -binary -in "$T/$1.payload" -out "$T/$1.p7" -outform DER "$T/bob.pem" || return 1
	{
		printf 'From: attacker@evil.test\r\nTo: bob@b.test\r\nSubject: [...]\r\nDate: Thu, 03 Dec 2026 09:00:00 +0000\r\n'
		printf 'Message-ID: <%s@evil.test>\r\nMIME-Version: 1.0\r\n' "$1"
		printf 'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n'
		printf 'Content-Transfer-Encoding: base64\r\n\r\n'
		base64 -w 76 "$T/$1.p7" | sed 's/$/\r/'
	} > "$T/$1.eml"
	inst_send "$BPORT" "$T/$1.eml" attacker@evil.test bob@b.test || return 1
	at bob "$1@evil.test"
}
# (a) unsigned: anyone with bob's certificate could have written it.
if f=$(spoof spoof-a "CEO <ceo@b.test>"); then
	check "unsigned: bob's copy keeps the outer From" test "$($MAILTOOL header "$f" From)" = "attacker@evil.test"
	check "unsigned: one From" test "$(sed '/^\r*$/q' "$f" | grep -ci '^From:')" = 1
	check "unsigned: the protected Subject is restored all the same" \
		test "$($MAILTOOL header "$f" Subject)" = "Wire the money today (spoof-a)"
	check "unsigned: X-Cables says the outer From was kept, and whom the message claimed" \
		grep -q '^X-Cables: decrypted; format=smime; key=[0-9a-f]*; from=outer; protected-identity="ceo@b.test"' "$f"
	check "unsigned: the log line says why" \
		grep -q 'identity=kept-outer (protected From ceo@b.test is not signed by that address)' "$T/b/milter.log"
else
	not_ok "unsigned spoof: delivered to bob" "$REPLY"
fi
# (b) signed by the attacker's own valid certificate: valid, but not ceo's.
if f=$(spoof spoof-b "CEO <ceo@b.test>" attacker); then
	check "attacker-signed: bob's copy keeps the outer From" test "$($MAILTOOL header "$f" From)" = "attacker@evil.test"
	check "attacker-signed: X-Cables says the outer From was kept" grep -q '^X-Cables: .*; from=outer; protected-identity="ceo@b.test"' "$f"
	check "attacker-signed: the signature passes for the From shown, the attacker's" \
		grep -q '^Authentication-Results: mx.b.test; smime=pass body.smime-identifier="attacker@evil.test"' "$f"
	check "attacker-signed: no verdict names ceo as signer" sh -c "! grep -q 'smime-identifier=\"ceo@b.test\"' $f"
else
	not_ok "attacker-signed spoof: delivered to bob" "$REPLY"
fi
# (c) signed by ceo's own certificate: the protected From is the author.
if f=$(spoof signed-c "CEO <ceo@b.test>" ceo); then
	check "ceo-signed: bob's copy shows the protected From" test "$($MAILTOOL header "$f" From)" = "CEO <ceo@b.test>"
	check "ceo-signed: the signature passes for ceo" \
		grep -q '^Authentication-Results: mx.b.test; smime=pass body.smime-identifier="ceo@b.test"$' "$f"
	check "ceo-signed: no from=outer" sh -c "! grep -q 'from=outer' $f"
	check "ceo-signed: the log line says the identity was signed" grep -q 'identity=signed' "$T/b/milter.log"
else
	not_ok "ceo-signed: delivered to bob" "$REPLY"
fi
# (d) the same address as outside, unsigned: restored as before (display name included).
if f=$(spoof same-d "The Attacker <Attacker@evil.test>"); then
	check "same address: the protected From is restored" \
		test "$($MAILTOOL header "$f" From)" = "The Attacker <Attacker@evil.test>"
	check "same address: no from=outer" sh -c "! grep -q 'from=outer' $f"
else
	not_ok "same address: delivered to bob" "$REPLY"
fi

# (e, f) PGP/MIME: signed and encrypted in one pass by the attacker's key (b.test does not hold it for
# ceo); signed by ceo's own key (b.test's store holds it for ceo@b.test), then encrypted (RFC 3156 6.1).
GC=$T/gc
gpg_home "$GC"
for who in ceo@b.test attacker@evil.test; do
	gpg --homedir "$GC" --batch -q --pinentry-mode loopback --passphrase '' \
		--quick-gen-key "<$who>" ed25519 default never 2>/dev/null
done
gpg --homedir "$GC" --batch -q --import "$T/dave.asc" 2>/dev/null
gpg --homedir "$GC" --batch --armor --export ceo@b.test > "$T/ceo.asc"
inst_keyctl b import "$T/ceo.asc" >/dev/null || echo "Bail out! b.test does not take ceo's public key"
pgp_spoof() {	# ID SIGNER one-pass|detached: as spoof, to dave, signed with SIGNER's OpenPGP key
	printf 'From: CEO <ceo@b.test>\r\nTo: dave@b.test\r\nSubject: Wire the money today (%s)\r\nMessage-ID: <%s@evil.test>\r\nContent-Type: text/plain; charset=us-ascii; hp="cipher"\r\n\r\nPlease wire it before noon.\r\n' \
		"$1" "$1" > "$T/$1.payload"
	if [ "$3" = one-pass ]; then
		set -- "$1" "$2" --sign -u "$2"
	else
		gpg --homedir "$GC" --batch -q --yes -u "$2" --armor --detach-sign -o "$T/$1.sig" "$T/$1.payload" \
			2>/dev/null || return 1
		$MAILTOOL pgp-signed "$T/$1.payload" "$T/$1.sig" "$T/$1.signed" || return 1
		cp "$T/$1.signed" "$T/$1.payload"
		set -- "$1" "$2"
	fi
	id=$1
	shift 2
	gpg --homedir "$GC" --batch -q --yes --trust-model always --armor -o "$T/$id.asc" -r dave@b.test \
		"$@" --encrypt "$T/$id.payload" 2>/dev/null || return 1
	$MAILTOOL pgp-message "$T/$id.asc" "$T/$id.eml" --header "From: attacker@evil.test" --header "To: dave@b.test" \
		--header "Subject: [...]" --header "Message-ID: <$id@evil.test>"
	inst_send "$BPORT" "$T/$id.eml" attacker@evil.test dave@b.test || return 1
	at dave "$id@evil.test"
}
if f=$(pgp_spoof pgp-e attacker@evil.test one-pass); then
	check "pgp, attacker-signed: dave's copy keeps the outer From" test "$($MAILTOOL header "$f" From)" = "attacker@evil.test"
	check "pgp, attacker-signed: X-Cables says so" grep -q '^X-Cables: decrypted; format=pgp; .*; from=outer; protected-identity="ceo@b.test"' "$f"
	check "pgp, attacker-signed: the protected Subject is restored" \
		test "$($MAILTOOL header "$f" Subject)" = "Wire the money today (pgp-e)"
else
	not_ok "pgp, attacker-signed: delivered to dave" "$REPLY"
fi
if f=$(pgp_spoof pgp-f ceo@b.test detached); then
	check "pgp, ceo-signed: dave's copy shows the protected From" test "$($MAILTOOL header "$f" From)" = "CEO <ceo@b.test>"
	check "pgp, ceo-signed: the signature passes for ceo" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="ceo@b.test"$' "$f"
else
	not_ok "pgp, ceo-signed: delivered to dave" "$REPLY"
fi
GNUPGHOME=$GC gpgconf --kill gpg-agent 2>/dev/null

rig_done
