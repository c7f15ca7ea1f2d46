#!/bin/sh
# Inbound interop with the message shapes of RFC 9788's appendix (fixtures
# in tests/unit/fixtures/hp, written for Cables after those shapes), sent
# from another server to bob at b.test through Postfix and the real milter:
# - hp="cipher" without a legacy display element, fields injected into the
#   payload's header (an HCP that also removed Cc outside, as the RFC's
#   hcp_example_hide_cc does), and transport fields an attacker put inside:
#   the protected Subject, From, To, Cc and Date are shown, the body is the
#   payload's byte for byte, and no Received, Return-Path,
#   Authentication-Results, Delivered-To, X-Cables or Bcc comes from inside;
# - hp="cipher" with a legacy display element, text and HTML, and in both
#   renderings of a multipart/alternative (an attachment marked the same
#   way stays whole): the elements are cut and nothing else;
# - hp="clear", signed only, not encrypted: delivered as sent, signature
#   intact;
# - opaque signed-data inside enveloped-data (the RFC's signed-and-encrypted
#   S/MIME samples): decrypted, the signed blob delivered as it came (its
#   protected fields are inside the signature, where the reader's client
#   shows them from), outer "[...]" left, nothing lost;
# - a replay: alice's genuine signed message to bob, re-encrypted by someone
#   else to dave: dave's copy shows alice's signed From and the protected
#   To (bob), and X-Cables says the protected To and Cc name others; the
#   same message encrypted to bob and dave in one copy (dave as a Bcc) says
#   nothing of the kind in the field both see, only in the log.
RIG_PORT=12740
. "$top_srcdir/tests/integration/rig.sh"

BPORT=$((RIG_PORT + 5))
FIX=$top_srcdir/tests/unit/fixtures/hp
inst_config b b.test "DefaultPolicy encrypt"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob dave"
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b export bob@b.test > "$T/bob.pem"
inst_keyctl b generate dave@b.test --smime >/dev/null
inst_keyctl b export dave@b.test > "$T/dave.pem"
inst_milter b
make_signer() {	# NAME ADDRESS: $T/NAME.pem, a self-signed certificate and key for ADDRESS
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/$1.key" -out "$T/$1.crt" -days 30 -subj "/CN=$1" \
		-addext "subjectAltName=email:$2" -addext extendedKeyUsage=emailProtection 2>/dev/null &&
	cat "$T/$1.crt" "$T/$1.key" > "$T/$1.pem"
}

crlf() { tr -d '\r' < "$1" | sed 's/$/\r/'; }
# body_of FILE: what follows the first empty line (CRLF line ends; a Maildir holds LF).
body_of() { $MAILTOOL body "$1"; }
# at ID [USER]: USER's (bob's) copy of message ID (Message-ID as written), once delivered.
at() {
	wait_for 60 sh -c "grep -l '^Message-ID: <$1>' $T/b/mail/${2:-bob}/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$1>" "$T/b/mail/${2:-bob}/Maildir/new"/* | head -n 1
}
# head_of FILE: the header section of FILE.
head_of() { sed '/^\r*$/q' "$1"; }
# encrypted NAME ENTITY: NAME.outer's fields (addresses at receiver.example made bob's) around ENTITY
# encrypted to bob, sent to b.test.
encrypted() {
	openssl cms -encrypt -aes-256-cbc -binary -in "$2" -out "$T/$1.p7" -outform DER "$T/bob.pem" || return 1
	{
		crlf "$FIX/$1.outer" | grep -iv '^Content-Type:\|^MIME-Version:' | sed 's/[a-z]*@receiver\.example/bob@b.test/'
		printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n'
		printf 'Content-Transfer-Encoding: base64\r\n\r\n'
		base64 -w 76 "$T/$1.p7" | sed 's/$/\r/'
	} > "$T/$1.eml"
	inst_send "$BPORT" "$T/$1.eml" sender@sender.example bob@b.test
}

# 1. Injected fields, no legacy display, an HCP that hid Cc, transport fields forged inside.
crlf "$FIX/injected.payload" > "$T/injected.payload"
body_of "$T/injected.payload" > "$T/injected.body"
if encrypted injected "$T/injected.payload" && f=$(at injected-21@sender.example); then
	check "injected: the protected Subject is shown" \
		test "$($MAILTOOL header "$f" Subject)" = "Beehive inspection on Saturday"
	check "injected: the protected From (same address, the sender's display name)" \
		test "$($MAILTOOL header "$f" From)" = "Erin Sender <erin@sender.example>"
	check "injected: the protected To" test "$($MAILTOOL header "$f" To)" = "Bob <bob@b.test>"
	check "injected: the Cc the HCP hid outside is back" \
		test "$($MAILTOOL header "$f" Cc)" = "Frank <frank@sender.example>"
	check "injected: the protected Date" test "$($MAILTOOL header "$f" Date)" = "Fri, 06 Mar 2026 08:45:12 +0100"
	check "injected: a non-structural field (User-Agent) is restored" \
		test "$($MAILTOOL header "$f" User-Agent)" = "Fixture MUA 0.1"
	check "injected: one Subject, one From outside" sh -c \
		"[ \$(sed '/^\r*\$/q' $f | grep -ci '^Subject:') = 1 ] && [ \$(sed '/^\r*\$/q' $f | grep -ci '^From:') = 1 ]"
	head_of "$f" > "$T/injected.head"
	check "injected: nothing from inside names the forger (Received, Return-Path, Delivered-To, Bcc)" \
		sh -c "! grep -qi 'forged\.example\|mallory' $T/injected.head"
	check "injected: no Bcc outside" sh -c "! grep -qi '^Bcc:' $T/injected.head"
	check "injected: the only Authentication-Results are b.test's own, none for ceo" \
		sh -c "! grep -qi 'ceo@b.test' $T/injected.head"
	check "injected: one X-Cables, b.test's own (not the forged key)" sh -c \
		"[ \$(grep -ci '^X-Cables:' $T/injected.head) = 1 ] && ! grep -q 'key=0000000000000000' $T/injected.head"
	check "injected: Return-Path is the envelope sender's" \
		test "$($MAILTOOL header "$f" Return-Path)" = "<sender@sender.example>"
	check "injected: no HP-Outer and no hp parameter outside" sh -c "! grep -qi '^HP-Outer:\|hp=' $T/injected.head"
	check "injected: the content fields are the payload's, hp taken off" \
		test "$($MAILTOOL header "$f" Content-Type)" = 'text/plain; charset="utf-8"'
	body_of "$f" > "$T/injected.got"
	check "injected: the body is the payload's, byte for byte (no legacy display cut)" cmp "$T/injected.got" "$T/injected.body"
	check "injected: the log counts the six refused fields" grep -q 'hp=rfc9788 restored=[1-9][0-9]* refused=6' "$T/b/milter.log"
else
	not_ok "injected: delivered" "$REPLY"
fi

# 2. Legacy display elements, text and HTML: cut, the rest byte for byte.
crlf "$FIX/legacy-text.payload" > "$T/legacy-text.payload"
printf 'We start at seven in the small hall; bring the new scores.\r\n' > "$T/legacy-text.want"
crlf "$FIX/legacy-html.payload" > "$T/legacy-html.payload"
printf '<html><head><title></title></head><body><p>We start at <b>seven</b> in the small hall.</p>\r\n</body></html>\r\n' \
	> "$T/legacy-html.want"
for kind in text html; do
	if encrypted legacy-$kind "$T/legacy-$kind.payload" && f=$(at legacy-$kind-1[12]@sender.example); then
		check "legacy $kind: the protected Subject is shown" \
			test "$($MAILTOOL header "$f" Subject)" = "Choir practice moves to Thursday"
		check "legacy $kind: the protected To, bob's" test "$($MAILTOOL header "$f" To)" = "Dave <dave@receiver.example>"
		body_of "$f" > "$T/legacy-$kind.got"
		check "legacy $kind: the element is cut, the rest is byte for byte" cmp "$T/legacy-$kind.got" "$T/legacy-$kind.want"
		check "legacy $kind: no hp-legacy-display or hp left" sh -c "! grep -qi 'hp-legacy-display\|hp=' $f"
	else
		not_ok "legacy $kind: delivered" "$REPLY"
	fi
done

# The RFC's multipart shape: a legacy display element in both renderings of a multipart/alternative
# under multipart/mixed, cut with their parameters; an attachment marked the same way is not a main
# body part and stays whole.  Its outer From (carol) is not the protected one (alice) and nothing is
# signed: the outer From stays.
crlf "$FIX/nested-legacy.payload" > "$T/nested-legacy.payload"
cat > "$T/nested-legacy.want" <<'EOF_WANT'
--mix-o
Content-Type: multipart/alternative; boundary="alt-i"

--alt-i
Content-Type: text/plain; charset=us-ascii

The gutter on the north side is full of leaves again.
--alt-i
Content-Type: text/html; charset=us-ascii

<html><body><p>The gutter on the north side is full of leaves again.</p>
</body></html>
--alt-i--

--mix-o
Content-Type: text/plain; charset=us-ascii; hp-legacy-display="1"
Content-Disposition: attachment; filename="notes.txt"

Subject: this attachment is not a main body part

and is never cut.
--mix-o--
EOF_WANT
crlf "$T/nested-legacy.want" > "$T/nested-legacy.want.crlf"
if encrypted nested-legacy "$T/nested-legacy.payload" && f=$(at nested-5@sender.example); then
	check "nested: the protected Subject is shown" test "$($MAILTOOL header "$f" Subject)" = "Bring the ladder"
	check "nested: the outer From stays (another address, unsigned)" \
		test "$($MAILTOOL header "$f" From)" = "Carol <carol@sender.example>"
	check "nested: X-Cables says so" grep -q '^X-Cables: decrypted; .*from=outer; protected-identity="alice@sender.example"' "$f"
	body_of "$f" > "$T/nested-legacy.got"
	check "nested: both elements and their parameters cut, the attachment whole, the rest byte for byte" \
		cmp "$T/nested-legacy.got" "$T/nested-legacy.want.crlf"
else
	not_ok "nested: delivered" "$REPLY"
fi

# 3. hp="clear", signed only (multipart/signed, not encrypted): nothing to restore or cut; delivered as signed.
make_signer grace grace@sender.example || echo "Bail out! cannot make grace's certificate"
crlf "$FIX/clear-signed.payload" > "$T/clear-signed.payload"
if openssl cms -sign -binary -crlfeol -in "$T/clear-signed.payload" -signer "$T/grace.pem" -out "$T/clear-signed.smime"; then
	{ crlf "$FIX/clear-signed.outer"; sed 's/\r*$/\r/' "$T/clear-signed.smime"; } > "$T/clear-signed.eml"
	inst_send "$BPORT" "$T/clear-signed.eml" grace@sender.example bob@b.test
fi
if f=$(at clear-signed-31@sender.example); then
	check "clear: the Subject is the one sent" test "$($MAILTOOL header "$f" Subject)" = "Minutes, signed only"
	crlf "$f" > "$T/clear-signed.got"
	check "clear: the signature still verifies, over the payload as sent" \
		openssl cms -verify -in "$T/clear-signed.got" -CAfile "$T/grace.crt" -out "$T/clear-signed.out"
	check "clear: the signed payload (hp=\"clear\" and its fields) is intact" cmp "$T/clear-signed.out" "$T/clear-signed.payload"
else
	not_ok "clear: delivered" "$REPLY"
fi

# 4. Opaque signed-data under enveloped-data, protected fields inside the signed content.
make_signer alice alice@sender.example || echo "Bail out! cannot make alice's certificate"
crlf "$FIX/opaque-signed.payload" > "$T/opaque-signed.payload"
if openssl cms -sign -nodetach -binary -crlfeol -in "$T/opaque-signed.payload" -signer "$T/alice.pem" \
    -out "$T/opaque-signed.smime"; then
	sed 's/\r*$/\r/' "$T/opaque-signed.smime" > "$T/opaque-signed.entity"
	encrypted opaque-signed "$T/opaque-signed.entity"
fi
if f=$(at opaque-signed-41@sender.example); then
	check "opaque: decrypted (X-Cables says so)" grep -q '^X-Cables: decrypted; format=smime' "$f"
	check "opaque: the signed-data entity is delivered" grep -qi '^Content-Type: application/pkcs7-mime; *smime-type="\?signed-data' "$f"
	check "opaque: its signature verifies and holds the protected fields, byte for byte" sh -c \
		"openssl cms -verify -in $f -CAfile $T/alice.crt -binary -out $T/opaque-signed.out && cmp $T/opaque-signed.out $T/opaque-signed.payload"
	check "opaque: the outer Subject is left as it came" test "$($MAILTOOL header "$f" Subject)" = "[...]"
else
	not_ok "opaque: delivered" "$REPLY"
fi

# 5. Replay: alice's signed, header-protected message to bob, re-encrypted to dave by someone else.
# replay ID CERT...: alice's signed payload (protected To: bob) encrypted to CERTs, sent to b.test for the
# local users the certificates belong to.
replay() {
	id=$1
	shift
	printf 'From: Alice <alice@sender.example>\r\nTo: Bob <bob@b.test>\r\nSubject: The contract, as agreed\r\nDate: Mon, 09 Mar 2026 09:00:00 +0000\r\nMessage-ID: <%s@sender.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset="us-ascii"; hp="cipher"\r\n\r\nBob, I sign the contract as agreed.\r\n' \
		"$id" > "$T/$id.payload"
	openssl cms -sign -binary -crlfeol -in "$T/$id.payload" -signer "$T/alice.pem" -out "$T/$id.signed" || return 1
	sed 's/\r*$/\r/' "$T/$id.signed" > "$T/$id.entity"
	certs="" rcpts=""
	for u in "$@"; do
		certs="$certs $T/$u.pem"
		rcpts="$rcpts $u@b.test"
	done
	# shellcheck disable=SC2086
	openssl cms -encrypt -aes-256-cbc -binary -in "$T/$id.entity" -out "$T/$id.p7" -outform DER $certs || return 1
	{
		printf 'From: Alice <alice@sender.example>\r\nTo: %s@b.test\r\nSubject: [...]\r\n' "$1"
		printf 'Date: Mon, 09 Mar 2026 09:00:00 +0000\r\nMessage-ID: <%s@sender.example>\r\nMIME-Version: 1.0\r\n' "$id"
		i=0
		while [ "$i" -lt "${PADFIELDS:-0}" ]; do printf 'X-Pad-%d: x\r\n' "$i"; i=$((i + 1)); done
		printf 'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n'
		printf 'Content-Transfer-Encoding: base64\r\n\r\n'
		base64 -w 76 "$T/$id.p7" | sed 's/$/\r/'
	} > "$T/$id.eml"
	# shellcheck disable=SC2086
	inst_send "$BPORT" "$T/$id.eml" mallory@forged.example $rcpts
}
if replay replay-51 dave && q=$(qid_of_reply) && f=$(at replay-51@sender.example dave); then
	check "replay: dave's copy shows alice's From" test "$($MAILTOOL header "$f" From)" = "Alice <alice@sender.example>"
	check "replay: and the protected To, bob (not the outer one, dave)" test "$($MAILTOOL header "$f" To)" = "Bob <bob@b.test>"
	check "replay: alice's signature is checked and named" \
		grep -q '^Authentication-Results: mx.b.test; smime=.* body.smime-identifier="alice@sender.example"' "$f"
	check "replay: X-Cables says the protected To and Cc name others" \
		grep -q '^X-Cables: decrypted; format=smime; .*; protected-to=others' "$f"
	check "replay: the log line names dave" \
		grep -q "$q: decrypted: .* addressed=elsewhere (not in the protected To or Cc: dave@b.test)" "$T/b/milter.log"
else
	not_ok "replay: delivered to dave" "$REPLY"
fi
# The replay again, with an outer header the restoration refuses (over 1,000 fields): whom the payload
# addressed is then unknown, and the copy is marked as for others all the same (it fails closed).
if PADFIELDS=1001 replay replay-54 dave && q=$(qid_of_reply) && f=$(at replay-54@sender.example dave); then
	check "replay, 1,001 outer fields: not restored" grep -q "$q: decrypted: .*hp=not-restored" "$T/b/milter.log"
	check "replay, 1,001 outer fields: X-Cables still says protected-to=others" \
		grep -q '^X-Cables: decrypted; format=smime; .*; protected-to=others' "$f"
else
	not_ok "replay, 1,001 outer fields: delivered to dave" "$REPLY"
fi
if replay genuine-52 bob && f=$(at genuine-52@sender.example bob); then
	check "genuine: bob's copy, addressed to him, says nothing of the kind" sh -c "! grep -q 'protected-to=' $f"
else
	not_ok "genuine: delivered to bob" "$REPLY"
fi
if replay bcc-53 bob dave && q=$(qid_of_reply) && f=$(at bcc-53@sender.example bob) &&
    g=$(at bcc-53@sender.example dave); then
	check "bcc: one copy for bob and dave, whose X-Cables tells bob of no unnamed recipient" \
		sh -c "! grep -q 'protected-to=' $f && ! grep -q 'protected-to=' $g"
	check "bcc: the log line names dave, and only dave" \
		grep -q "$q: decrypted: .* addressed=elsewhere (not in the protected To or Cc: dave@b.test)" "$T/b/milter.log"
else
	not_ok "bcc: delivered to bob and dave" "$REPLY"
fi

rig_done
