#!/bin/sh
# Outbound header protection (RFC 9788) through a real Postfix: the wire
# copy's Subject is "[...]" (hcp_baseline), Keywords gone, the addressing
# fields as they were; the encrypted part carries hp="cipher", the original
# fields and a legacy display element; openssl cms, gpgsm, gpg and rnp
# decrypt it, and the fields they give back equal the originals.  Signed
# then encrypted, the signature covers the protected fields and verifies.
# hcp_shy drops display names outside; HeaderProtection off leaves the
# entity as it was.
RIG_PORT=12700
RIG_PORTS=3
. "$top_srcdir/tests/integration/rig.sh"

rig_config "HeaderProtection baseline" "Padding none"
rig_postfix
rig_sink
rig_milter

keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --pgp >/dev/null
keyctl export bob@b.test --private --out "$T/bob.pem"
keyctl export carol@c.test --private --out "$T/carol.sec"

SUBJECT='Quarterly numbers: do not forward'
printf '%s\r\n' "From: Alice Example <alice@a.test>" "To: Bob <bob@b.test>" "Cc: Carol <carol@c.test>" \
	"Subject: $SUBJECT" "Keywords: merger" "Date: Thu, 03 Dec 2026 09:00:00 +0100" \
	"Message-ID: <hp1@a.test>" "MIME-Version: 1.0" "Content-Type: text/plain; charset=us-ascii" "" \
	"Bob," "" "the numbers are in. PLAINTEXT-MARKER" "" "Alice" > "$T/msg.eml"
$MAILTOOL body "$T/msg.eml" > "$T/msg.body"

# same_fields INNER: the decrypted entity's fields equal the originals.
same_fields() {
	for f in From To Cc Subject Date Message-ID Keywords; do
		[ "$($MAILTOOL header "$1" "$f")" = "$($MAILTOOL header "$T/msg.eml" "$f")" ] ||
			{ echo "$f differs: $($MAILTOOL header "$1" "$f")"; return 1; }
	done
}
# legacy_then_body INNER: the body is the legacy display element (the hidden Subject: Keywords is not a
# user-facing field), an empty line, the original body.
legacy_then_body() {
	$MAILTOOL body "$1" > "$T/inner.body"
	printf 'Subject: %s\r\n\r\n' "$SUBJECT" | cat - "$T/msg.body" | cmp - "$T/inner.body"
}
# outer_ok WIRE: what the world sees.
outer_ok() {
	[ "$($MAILTOOL header "$1" Subject)" = "[...]" ] || { echo "Subject: $($MAILTOOL header "$1" Subject)"; return 1; }
	[ -z "$($MAILTOOL header "$1" Keywords)" ] || { echo "Keywords still outside"; return 1; }
	for f in From To Cc Date Message-ID; do
		[ "$($MAILTOOL header "$1" "$f")" = "$($MAILTOOL header "$T/msg.eml" "$f")" ] || { echo "$f changed"; return 1; }
	done
	! grep -q "$SUBJECT" "$1" || { echo "the Subject is on the wire"; return 1; }
}

# 1. S/MIME.
if rig_send "$T/msg.eml" alice@a.test bob@b.test; then
	wire=$(capture)
	check "smime: the outer header is hcp_baseline's" outer_ok "$wire"
	check "smime: openssl cms decrypts" \
		openssl cms -decrypt -in "$wire" -recip "$T/bob.pem" -inkey "$T/bob.pem" -binary -out "$T/smime.inner"
	check "smime: the payload is marked hp=\"cipher\" with a legacy display element" grep -q \
		'^Content-Type: text/plain; charset=us-ascii; hp-legacy-display="1"; hp="cipher"' "$T/smime.inner"
	check "smime: the protected fields equal the originals" same_fields "$T/smime.inner"
	check "smime: HP-Outer says what the world sees" grep -q '^HP-Outer: Subject: \[\.\.\.\]' "$T/smime.inner"
	check "smime: no trace field inside" sh -c "! grep -qi '^Received:' $T/smime.inner"
	check "smime: legacy display element, then the body byte for byte" legacy_then_body "$T/smime.inner"
	check "smime: the log line says hp=baseline" grep -q "$(qid_of_reply): encrypted: .* hp=baseline hidden=1 legacy=text" "$MILTER_LOG"
	cp "$wire" "$T/smime.wire"
else
	not_ok "smime: accepted" "$REPLY"
fi

# gpgsm decrypts the same wire copy.
G=$T/g
mkdir -m 700 "$G"
printf 'disable-crl-checks\ndisable-dirmngr\n' > "$G/gpgsm.conf"
openssl pkcs12 -export -legacy -in "$T/bob.pem" -passout pass: -out "$T/bob.p12"
GNUPGHOME=$G gpgsm --batch --pinentry-mode loopback --passphrase '' --import "$T/bob.p12" >/dev/null 2>&1
$MAILTOOL body "$T/smime.wire" | tr -d '\r' | base64 -d > "$T/smime.der"
check "smime: gpgsm decrypts it to the same payload" sh -c \
	"GNUPGHOME=$G gpgsm --batch --pinentry-mode loopback --passphrase '' --decrypt $T/smime.der > $T/gpgsm.out 2>$T/gpgsm.err && cmp $T/gpgsm.out $T/smime.inner"
GNUPGHOME=$G gpgconf --kill gpg-agent 2>/dev/null

# 2. PGP/MIME: gpg and rnp.
GB=$T/gb
gpg_home "$GB"
gpg --homedir "$GB" --batch -q --import "$T/carol.sec" 2>/dev/null
RH=$T/rh
mkdir -m 700 "$RH"
rnpkeys --homedir "$RH" --import "$T/carol.sec" >/dev/null 2>&1
if rig_send "$T/msg.eml" alice@a.test carol@c.test; then
	wire=$(capture)
	check "pgp: the outer header is hcp_baseline's" outer_ok "$wire"
	$MAILTOOL pgp-payload "$wire" > "$T/pgp.asc"
	check "pgp: gpg decrypts" sh -c "gpg --homedir $GB --batch -q --pinentry-mode loopback --passphrase '' --decrypt $T/pgp.asc > $T/pgp.inner 2>$T/gpg.err"
	check "pgp: the payload is marked hp=\"cipher\"" grep -q '; hp="cipher"' "$T/pgp.inner"
	check "pgp: the protected fields equal the originals" same_fields "$T/pgp.inner"
	check "pgp: legacy display element, then the body byte for byte" legacy_then_body "$T/pgp.inner"
	check "pgp: rnp decrypts it to the same payload" sh -c \
		"rnp --homedir $RH --password '' --decrypt $T/pgp.asc --output $T/rnp.out >/dev/null 2>$T/rnp.err && cmp $T/rnp.out $T/pgp.inner"
else
	not_ok "pgp: accepted" "$REPLY"
fi

# 3. Signed then encrypted (S/MIME): the signed part is the protected payload, and it verifies.
keyctl generate alice@a.test --smime >/dev/null
keyctl export alice@a.test --out "$T/alice.crt"
rig_config "HeaderProtection baseline" "Padding none" "Policy a.test Sign=yes" "SignUnauthenticated yes"
rig_milter_restart
if rig_send "$T/msg.eml" alice@a.test bob@b.test; then
	wire=$(capture)
	check "signed: the outer header is hcp_baseline's" outer_ok "$wire"
	openssl cms -decrypt -in "$wire" -recip "$T/bob.pem" -inkey "$T/bob.pem" -binary -out "$T/signed.dec"
	check "signed: the signature verifies" sh -c \
		"openssl cms -verify -in $T/signed.dec -noverify -out $T/signed.inner 2>$T/verify.err"
	check "signed: the signed payload carries the protected fields" same_fields "$T/signed.inner"
	check "signed: and hp=\"cipher\"" grep -q '; hp="cipher"' "$T/signed.inner"
else
	not_ok "signed: accepted" "$REPLY"
fi

# 4. hcp_shy: no display names outside, the same instant in UTC.
rig_config "HeaderProtection shy" "Padding none"
rig_milter_restart
if rig_send "$T/msg.eml" alice@a.test bob@b.test; then
	wire=$(capture)
	check "shy: From without the display name" test "$($MAILTOOL header "$wire" From)" = "alice@a.test"
	check "shy: To without the display name" test "$($MAILTOOL header "$wire" To)" = "bob@b.test"
	check "shy: Date in UTC" sh -c "$MAILTOOL header $wire Date | grep -q '08:00:00'"
	openssl cms -decrypt -in "$wire" -recip "$T/bob.pem" -inkey "$T/bob.pem" -binary -out "$T/shy.inner"
	check "shy: the protected fields equal the originals" same_fields "$T/shy.inner"
else
	not_ok "shy: accepted" "$REPLY"
fi

# 5. A recipient whose entry says off: the entity is encrypted as it was, Subject outside.
rig_config "HeaderProtection baseline" "Padding none" "Policy b.test HeaderProtection=off"
rig_milter_restart
$MAILTOOL entity "$T/msg.eml" > "$T/msg.entity"
if rig_send "$T/msg.eml" alice@a.test bob@b.test; then
	wire=$(capture)
	check "off: Subject stays outside" test "$($MAILTOOL header "$wire" Subject)" = "$SUBJECT"
	check "off: the content entity byte for byte" sh -c \
		"openssl cms -decrypt -in $wire -recip $T/bob.pem -inkey $T/bob.pem -binary | cmp - $T/msg.entity"
else
	not_ok "off: accepted" "$REPLY"
fi

# 6. Split delivery: a Bcc recipient's re-injected copy is protected the same way (its header edited in the copy).
keyctl generate dave@d.test --smime >/dev/null
keyctl export dave@d.test --private --out "$T/dave.pem"
rig_config "HeaderProtection baseline" "Padding none" "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key"
rig_milter_restart
if rig_send "$T/msg.eml" alice@a.test bob@b.test dave@d.test; then
	wait_for 60 sh -c "[ \$(grep -l '^Message-ID: <hp1@a.test>' $SINK/* 2>/dev/null | wc -l) -ge 2 ]"
	d=
	for f in $(grep -l '^Message-ID: <hp1@a.test>' "$SINK"/*); do
		sink_message "$f" > "$f.eml"
		grep -q '^X-Rcpt-Args: <dave@d.test>' "$f" && d=$f.eml
	done
	if [ -n "$d" ]; then
		check "split: dave's re-injected copy is hcp_baseline's outside" outer_ok "$d"
		openssl cms -decrypt -in "$d" -recip "$T/dave.pem" -inkey "$T/dave.pem" -binary -out "$T/dave.inner"
		check "split: dave's copy carries the protected fields" same_fields "$T/dave.inner"
		check "split: and no Bcc field inside" sh -c "! grep -qi '^Bcc:' $T/dave.inner"
	else
		not_ok "split: dave's copy arrived" "$(ls "$SINK")"
	fi
else
	not_ok "split: accepted" "$REPLY"
fi

rig_done
