#!/bin/sh
# Outbound S/MIME through a real Postfix: the wire copy is application/pkcs7-mime
# and the recipients' keys give back the original content entity byte for byte.
RIG_PORT=12010
. "$top_srcdir/tests/integration/rig.sh"

rig_config
rig_postfix
rig_sink
rig_milter

keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --smime --algo p256 >/dev/null
keyctl generate dave@d.test --smime >/dev/null
for who in bob@b.test carol@c.test dave@d.test; do
	keyctl export "$who" --private --out "$T/${who%@*}.pem"
done


# decrypts_to WIRE KEYFILE EXPECTED: openssl cms gives back EXPECTED exactly.
decrypts_to() {
	openssl cms -decrypt -in "$1" -recip "$2" -inkey "$2" -binary -out "$T/dec.out" &&
	cmp "$T/dec.out" "$3"
}

for kind in plain html-attachment utf8 big; do
	$MAILTOOL make "$T/$kind.eml" "$kind"
	# Every recipient named in To: one not named would be Bcc, and one copy may not show a Bcc key (bcc_privacy.sh).
	sed -i 's/^To: Bob <bob@b.test>\r$/To: Bob <bob@b.test>, Carol <carol@c.test>, Dave <dave@d.test>\r/' "$T/$kind.eml"
	$MAILTOOL entity "$T/$kind.eml" > "$T/$kind.entity"
	if ! rig_send "$T/$kind.eml" alice@a.test bob@b.test; then
		not_ok "$kind: accepted by Postfix" "$REPLY"
		continue
	fi
	ok "$kind: accepted by Postfix ($REPLY)"
	wire=$(capture) || { not_ok "$kind: reached the sink"; continue; }
	ct=$($MAILTOOL header "$wire" Content-Type)
	case "$ct" in
	"application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m") ok "$kind: wire copy is S/MIME enveloped-data" ;;
	*) not_ok "$kind: wire copy is S/MIME enveloped-data" "Content-Type: $ct" ;;
	esac
	if grep -q PLAINTEXT-MARKER "$wire"; then
		not_ok "$kind: no plaintext on the wire"
	else
		ok "$kind: no plaintext on the wire"
	fi
	check "$kind: openssl cms -decrypt gives back the content entity byte for byte" \
		decrypts_to "$wire" "$T/bob.pem" "$T/$kind.entity"
	check "$kind: Subject stays outside" test "$($MAILTOOL header "$wire" Subject)" = "test $kind"
	qid=$(qid_of_reply)
	check "$kind: one log line with the queue ID" \
		test "$(grep -c "$qid: encrypted: format=smime cipher=aes256-cbc recipients=1" "$MILTER_LOG")" = 1
	[ "$kind" = plain ] && cp "$wire" "$T/plain.wire"
done

# What was done is in the log line (checked above), never in a field on the wire.
check "no X-Cables field on the wire" sh -c "! grep -qi '^X-Cables' $T/plain.wire"

# Three recipients, RSA and EC: one wire copy that each of them can decrypt.
if rig_send "$T/plain.eml" alice@a.test bob@b.test carol@c.test dave@d.test; then
	wire=$(capture)
	for who in bob carol dave; do
		check "three recipients: $who decrypts the same wire copy" decrypts_to "$wire" "$T/$who.pem" "$T/plain.entity"
	done
	check "three recipients: the log line counts 3" \
		grep -q "$(qid_of_reply): encrypted: format=smime cipher=aes256-cbc recipients=3" "$MILTER_LOG"
	check "three recipients: no X-Cables field on the wire" sh -c "! grep -qi '^X-Cables' $wire"
else
	not_ok "three recipients: accepted" "$REPLY"
fi

# gpgsm (GnuPG's S/MIME) decrypts the default output.
if command -v gpgsm >/dev/null 2>&1; then
	G=$T/g
	mkdir -m 700 "$G"
	printf 'disable-crl-checks\ndisable-dirmngr\n' > "$G/gpgsm.conf"
	echo allow-loopback-pinentry > "$G/gpg-agent.conf"
	openssl pkcs12 -export -legacy -in "$T/bob.pem" -passout pass: -out "$T/bob.p12"
	GNUPGHOME=$G gpgsm --batch --pinentry-mode loopback --passphrase '' --import "$T/bob.p12" >/dev/null 2>&1
	$MAILTOOL body "$T/plain.wire" | tr -d '\r' | base64 -d > "$T/plain.der"
	check "gpgsm decrypts the default output" sh -c \
		"GNUPGHOME=$G gpgsm --batch --pinentry-mode loopback --passphrase '' --decrypt $T/plain.der > $T/gpgsm.out 2>$T/gpgsm.err && cmp $T/gpgsm.out $T/plain.entity"
	GNUPGHOME=$G gpgconf --kill gpg-agent 2>/dev/null
else
	ok "# SKIP gpgsm is not installed"
fi

# Cipher aes256-gcm and RSA-OAEP: AuthEnvelopedData, labelled as such, still decrypts.
rig_config "Cipher aes256-gcm" "RSAPadding oaep"
rig_milter_restart
if rig_send "$T/utf8.eml" alice@a.test bob@b.test carol@c.test; then
	wire=$(capture)
	check "aes256-gcm: labelled authEnveloped-data" test "$($MAILTOOL header "$wire" Content-Type)" = \
		"application/pkcs7-mime; smime-type=authEnveloped-data; name=smime.p7m"
	openssl cms -cmsout -print -in "$wire" > "$T/gcm.print" 2>&1
	check "aes256-gcm: the CMS is AuthEnvelopedData" grep -q 'contentType: id-smime-ct-authEnvelopedData' "$T/gcm.print"
	check "oaep: the RSA recipient uses RSAES-OAEP" grep -q 'algorithm: rsaesOaep' "$T/gcm.print"
	check "aes256-gcm: RSA recipient decrypts" decrypts_to "$wire" "$T/bob.pem" "$T/utf8.entity"
	check "aes256-gcm: EC recipient decrypts" decrypts_to "$wire" "$T/carol.pem" "$T/utf8.entity"
else
	not_ok "aes256-gcm: accepted" "$REPLY"
fi

rig_done
