#!/bin/sh
# Outbound PGP/MIME through a real Postfix: the wire copy is RFC 3156
# multipart/encrypted, and gpg and rnp (Thunderbird's OpenPGP engine) give
# back the original content entity byte for byte; Format and
# FormatPreference choose between S/MIME and OpenPGP; unusable keys are
# refused with the reason; signed (RFC 3156 6.1) through cables-keyholder, and
# the milter's GnuPG home holds no secret key.
RIG_PORT=12270
. "$top_srcdir/tests/integration/rig.sh"

rig_config
rig_postfix
rig_sink
rig_milter

keyctl generate bob@b.test --pgp >/dev/null
keyctl generate carol@c.test --pgp --algo rsa3072 >/dev/null
keyctl export bob@b.test --private --out "$T/bob.sec"
keyctl export carol@c.test --private --out "$T/carol.sec"

# Bob reads mail with gpg, Carol with rnp.
GB=$T/gb
gpg_home "$GB"
gpg --homedir "$GB" --batch -q --import "$T/bob.sec" 2>/dev/null
RH=$T/rh
mkdir -m 700 "$RH"
rnpkeys --homedir "$RH" --import "$T/carol.sec" >/dev/null 2>&1

gpg_decrypts() {	# WIRE EXPECTED
	$MAILTOOL pgp-payload "$1" > "$T/payload.asc" &&
	gpg --homedir "$GB" --batch -q --pinentry-mode loopback --passphrase '' --decrypt "$T/payload.asc" \
		> "$T/dec.out" 2>"$T/gpg.err" && cmp -s "$T/dec.out" "$2"
}
rnp_decrypts() {	# WIRE EXPECTED
	$MAILTOOL pgp-payload "$1" > "$T/payload.asc" &&
	rm -f "$T/rnp.out" &&
	rnp --homedir "$RH" --password '' --decrypt "$T/payload.asc" --output "$T/rnp.out" >/dev/null 2>"$T/rnp.err" &&
	cmp -s "$T/rnp.out" "$2"
}

for kind in plain html-attachment utf8 latin1; do
	$MAILTOOL make "$T/$kind.eml" "$kind"
	# Every recipient named in To: one not named would be Bcc, and one copy may not show a Bcc key (bcc_privacy.sh).
	sed -i 's/^To: Bob <bob@b.test>\r$/To: Bob <bob@b.test>, Carol <carol@c.test>, Dave <dave@d.test>\r/' "$T/$kind.eml"
	$MAILTOOL entity "$T/$kind.eml" > "$T/$kind.entity"
	if ! rig_send "$T/$kind.eml" alice@a.test bob@b.test carol@c.test; then
		not_ok "$kind: accepted by Postfix" "$REPLY"
		continue
	fi
	ok "$kind: accepted by Postfix ($REPLY)"
	wire=$(capture) || { not_ok "$kind: reached the sink"; continue; }
	check "$kind: wire copy is RFC 3156 multipart/encrypted" $MAILTOOL pgp-payload "$wire"
	if grep -q PLAINTEXT-MARKER "$wire"; then
		not_ok "$kind: no plaintext on the wire"
	else
		ok "$kind: no plaintext on the wire"
	fi
	check "$kind: gpg decrypts the content entity byte for byte" gpg_decrypts "$wire" "$T/$kind.entity"
	check "$kind: rnp decrypts the same wire copy byte for byte" rnp_decrypts "$wire" "$T/$kind.entity"
	check "$kind: Subject stays outside" test "$($MAILTOOL header "$wire" Subject)" = "test $kind"
	qid=$(qid_of_reply)
	check "$kind: one log line with the queue ID" \
		test "$(grep -c "$qid: encrypted: format=pgp recipients=2" "$MILTER_LOG")" = 1
	[ "$kind" = plain ] && cp "$wire" "$T/plain.wire"
done
# What was done is in the log line (checked above), never in a field on the wire.
check "no X-Cables field on the wire" sh -c "! grep -qi '^X-Cables' $T/plain.wire"
gpg --homedir "$GB" --batch --list-packets "$T/payload.asc" > "$T/packets" 2>&1 </dev/null
check "the recipients' key IDs are visible (not a Bcc copy)" grep -q 'pubkey enc packet: version 3, algo 18, keyid [0-9A-F]\{16\}' "$T/packets"

# Format: S/MIME, OpenPGP or either, FormatPreference breaking ties.
keyctl generate carol@c.test --smime >/dev/null
if rig_send "$T/plain.eml" alice@a.test carol@c.test; then
	check "auto, both kinds: S/MIME by default (FormatPreference smime)" \
		grep -q '^Content-Type: application/pkcs7-mime' "$(capture)"
else
	not_ok "auto, both kinds: accepted" "$REPLY"
fi
rig_config "FormatPreference pgp"
rig_milter_restart
if rig_send "$T/plain.eml" alice@a.test carol@c.test; then
	wire=$(capture)
	check "auto, both kinds, FormatPreference pgp: OpenPGP" rnp_decrypts "$wire" "$T/plain.entity"
else
	not_ok "FormatPreference pgp: accepted" "$REPLY"
fi
rig_config "Policy c.test Format=smime" "FormatPreference pgp"
rig_milter_restart
if rig_send "$T/plain.eml" alice@a.test carol@c.test; then
	check "Format=smime wins over FormatPreference" grep -q '^Content-Type: application/pkcs7-mime' "$(capture)"
else
	not_ok "Format=smime: accepted" "$REPLY"
fi
rig_config "Policy b.test require Format=smime"
rig_milter_restart
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "Format=smime, only an OpenPGP key, require: 4xx" test $? = 4
check "Format=smime: the reason names the missing certificate" \
	grep -q 'tempfail: no usable S/MIME certificate for bob@b.test: no certificate (policy require)' "$MILTER_LOG"

# Recipients needing different formats in one copy under require, without ReinjectTo: temp-fail.
rig_config "Policy b.test require" "Policy c.test require Format=smime"
rig_milter_restart
rig_send "$T/plain.eml" alice@a.test bob@b.test carol@c.test
check "S/MIME and OpenPGP recipients under require, no split delivery: 4xx" test $? = 4
check "mixed formats: the log says why" \
	grep -q 'tempfail: S/MIME and OpenPGP recipients in one message (no ReinjectTo for split delivery)' "$MILTER_LOG"
check "mixed formats: nothing on the wire" test "$(leaks c.test)" = 0

# An expired key (made with gpg in the past) and a key without an encryption subkey are refused.
GE=$T/ge
gpg_home "$GE"
gpg --homedir "$GE" --batch -q --faked-system-time 20200101T000000 --pinentry-mode loopback --passphrase '' \
	--quick-gen-key '<erin@e.test>' ed25519 default 2d 2>/dev/null
gpg --homedir "$GE" --batch -q --pinentry-mode loopback --passphrase '' \
	--quick-gen-key '<frank@f.test>' ed25519 sign 1y 2>/dev/null
gpg --homedir "$GE" --batch --export erin@e.test > "$T/erin.gpg" 2>/dev/null
gpg --homedir "$GE" --batch --armor --export frank@f.test > "$T/frank.asc" 2>/dev/null
check "keyctl import refuses an expired OpenPGP key" sh -c "! $KEYCTL -c $CONF import $T/erin.gpg 2>$T/imp.err"
check "keyctl import: the reason is the expiry" grep -q 'expired on 2020-01-03' "$T/imp.err"
keyctl import "$T/erin.gpg" --force >/dev/null 2>&1
check "keyctl show: the expired key is not usable, with the reason" sh -c \
	"$KEYCTL -c $CONF show erin@e.test | grep -q 'usable:      no (OpenPGP key [0-9a-f]* expired on 2020-01-03)'"
check "keyctl import takes a signing-only key, for signatures only" sh -c \
	"$KEYCTL -c $CONF import $T/frank.asc | grep -q 'for signatures only (OpenPGP key [0-9a-f]* has no valid encryption key)'"
check "keyctl show: the signing-only key is not usable to encrypt" sh -c \
	"$KEYCTL -c $CONF show frank@f.test | grep -q 'usable:      no (OpenPGP key [0-9a-f]* has no valid encryption key)'"
rig_config "Policy e.test require" "Policy f.test require"
rig_milter_restart
rig_send "$T/plain.eml" alice@a.test erin@e.test
check "expired key, require: 4xx" test $? = 4
check "expired key: the log gives the reason" \
	grep -q 'tempfail: no usable OpenPGP key for erin@e.test: OpenPGP key [0-9a-f]* expired on 2020-01-03' "$MILTER_LOG"
check "expired key: nothing on the wire" test "$(leaks e.test)" = 0
rig_send "$T/plain.eml" alice@a.test frank@f.test
check "signing-only key, require: 4xx" test $? = 4
check "signing-only key: the log gives the reason" \
	grep -q 'tempfail: no usable OpenPGP key for frank@f.test: OpenPGP key [0-9a-f]* has no valid encryption key' "$MILTER_LOG"

# Signed with the sender's OpenPGP key (RFC 3156 section 6.1: multipart/signed,
# then encrypted): the signature is built by the milter, its private-key step
# done by cables-keyholder; gpg in the milter holds no secret key.
keyctl generate alice@a.test --pgp >/dev/null
keyctl export alice@a.test --out "$T/alice.pub"
keyctl generate dave@a.test --pgp --algo rsa3072 >/dev/null
keyctl export dave@a.test --out "$T/dave.pub"
gpg --homedir "$GB" --batch -q --import "$T/alice.pub" "$T/dave.pub" 2>/dev/null
# A secret key an older milter imported into its GnuPG home: removed at start, and said so.
gpg --homedir "$T/gnupg" --batch -q --import "$T/bob.sec" 2>/dev/null
check "setup: the milter's GnuPG home holds a secret key before the restart" \
	sh -c "gpg --homedir $T/gnupg --batch --list-secret-keys --with-colons 2>/dev/null | grep -q '^sec'"
rig_config "Policy a.test Sign=yes" "SignUnauthenticated yes"
rig_milter_restart
check "start: the log names the secret key removed from GnuPGHome" wait_for 30 \
	grep -q "removed OpenPGP secret key $(keyctl list | awk '$1 == "bob@b.test" && $2 == "pgp" {print $3}')" "$MILTER_LOG"
# signed_ok NAME SENDER: the last wire copy decrypts (gpg) to a multipart/signed entity whose
# first part is utf8.entity, byte for byte, and gpg verifies the detached signature by SENDER's key.
signed_ok() {
	wire=$(capture)
	$MAILTOOL pgp-payload "$wire" > "$T/payload.asc"
	gpg --homedir "$GB" --batch -q --pinentry-mode loopback --passphrase '' --decrypt "$T/payload.asc" \
		> "$T/dec.out" 2>"$T/gpg.err"
	check "$1: gpg decrypts a multipart/signed entity (RFC 3156 6.1)" \
		grep -q '^Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"' "$T/dec.out"
	$MAILTOOL split-pgp-signed "$T/dec.out" "$T/signed.part" "$T/signed.sig"
	check "$1: the signed part is the original content entity, byte for byte" cmp -s "$T/signed.part" "$T/utf8.entity"
	gpg --homedir "$GB" --batch --status-fd 1 --verify "$T/signed.sig" "$T/signed.part" > "$T/status" 2>/dev/null || true
	sfpr=$(keyctl list | awk -v a="$2" '$1 == a && $2 == "pgp" {print $3}')
	check "$1: gpg reports a good signature by $2's key" \
		grep -q "VALIDSIG [0-9A-F]* .* $(echo "$sfpr" | tr a-f A-F)[0-9A-F]*\$" "$T/status"
	check "$1: a v4 text signature (class 01), SHA-256" grep -q "VALIDSIG .* 4 0 [0-9]* 8 01 " "$T/status"
	check "$1: the log line says signed" grep -q "$(qid_of_reply): encrypted: format=pgp recipients=1 signed" "$MILTER_LOG"
	check "$1: no X-Cables field on the wire" sh -c "! grep -qi '^X-Cables' $wire"
}
if rig_send "$T/utf8.eml" alice@a.test bob@b.test; then
	signed_ok "signed by Ed25519" alice@a.test
else
	not_ok "signed by Ed25519: accepted" "$REPLY"
fi
if rig_send "$T/utf8.eml" dave@a.test bob@b.test; then
	signed_ok "signed by RSA-3072" dave@a.test
else
	not_ok "signed by RSA-3072: accepted" "$REPLY"
fi
check "the keyholder signed as alice (Ed25519) and dave (RSA)" sh -c \
	"grep -q 'alice@a.test pgp-sign keyid=[0-9a-f]*: ok' $T/keyholder.log && grep -q 'dave@a.test pgp-sign keyid=[0-9a-f]*: ok' $T/keyholder.log"
check "the milter's GnuPG home holds no secret key" \
	sh -c "! gpg --homedir $T/gnupg --batch --list-secret-keys --with-colons 2>/dev/null | grep -q '^sec'"
check "the milter's GnuPG home has no key file in private-keys-v1.d" \
	sh -c "! ls $T/gnupg/private-keys-v1.d/ 2>/dev/null | grep -q ."

rig_done
