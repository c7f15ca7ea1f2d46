#!/bin/sh
# Inbound OpenPGP through a real Postfix delivering to Maildirs: what gpg and
# rnp encrypt for local users (PGP/MIME and inline, signed or not, UTF-8 and
# ISO-8859-1, with an attachment) arrives decrypted, byte for byte; what
# cannot or must not be decrypted (another user's key, a hidden recipient,
# corrupt armor, a missing boundary, a huge inline block, a compression bomb) arrives unchanged
# with the reason; signatures are reported against the key store.
RIG_PORT=12280
. "$top_srcdir/tests/integration/rig.sh"

BPORT=$((RIG_PORT + 5))
inst_config b b.test
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob carol dave"
inst_milter b
inst_keyctl b generate bob@b.test --pgp >/dev/null
inst_keyctl b generate carol@b.test --pgp --algo rsa3072 >/dev/null
inst_keyctl b export bob@b.test > "$T/bob.asc"
inst_keyctl b export carol@b.test > "$T/carol.asc"
# Alice (a.test) writes with gpg and signs; b.test holds her public key.
GA=$T/ga
gpg_home "$GA"
gpg --homedir "$GA" --batch -q --pinentry-mode loopback --passphrase '' \
	--quick-gen-key '<alice@a.test>' ed25519 default never 2>/dev/null
gpg --homedir "$GA" --batch -q --import "$T/bob.asc" "$T/carol.asc" 2>/dev/null
gpg --homedir "$GA" --batch --armor --export alice@a.test > "$T/alice.asc"
inst_keyctl b import "$T/alice.asc" >/dev/null
# Mallory's key is nobody's here.
gpg --homedir "$GA" --batch -q --pinentry-mode loopback --passphrase '' \
	--quick-gen-key '<mallory@m.test>' future-default default never 2>/dev/null
# rnp (Thunderbird's engine) writes too.
RA=$T/ra
mkdir -m 700 "$RA"
rnpkeys --homedir "$RA" --import "$T/bob.asc" >/dev/null 2>&1

gpg_enc() {	# IN OUT [gpg options]: armored, encrypted by alice's gpg
	in=$1 out=$2
	shift 2
	gpg --homedir "$GA" --batch -q --yes --trust-model always --armor -o "$out" "$@" --encrypt "$in" 2>/dev/null
}
# message ARMOR NAME [pgp-message options]: a message from alice to $TO.
message() {
	a=$1 name=$2
	shift 2
	$MAILTOOL pgp-message "$a" "$T/$name.eml" --header "From: Alice <alice@a.test>" --header "To: $TO" \
		--header "Subject: $name" "$@"
	echo "$T/$name.eml"
}
deliver() {
	file=$1
	shift
	inst_send "$BPORT" "$file" alice@a.test "$@" || return 1
	# Every recipient's delivery, not the first one's: each is a line of its own.
	wait_for 60 sent_to_all "$T/b/pf" "$(qid_of_reply)" $#
}
sent_to_all() { [ "$(grep -c "$2: .*status=sent" "$1/maillog")" -ge "$3" ]; }
newest() { maildir_file b "$1"; }

printf 'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\303\274\303\237e, Bob! PLAINTEXT-MARKER\r\n\r\n.a line with a dot\r\n' > "$T/utf8.entity"
printf 'Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\374\337e, caf\351 PLAINTEXT-MARKER\r\n' > "$T/latin1.entity"
$MAILTOOL make "$T/att.eml" html-attachment
$MAILTOOL entity "$T/att.eml" > "$T/att.entity"
# What the Maildir copy's content must be: the outer MIME-Version, then the inner entity.
for kind in utf8 latin1; do { printf 'MIME-Version: 1.0\r\n'; cat "$T/$kind.entity"; } > "$T/$kind.expected"; done
cp "$T/att.entity" "$T/att.expected"

# decrypted_ok DESCRIPTION USER ENTITY [RESULT]: the Maildir copy is ENTITY, byte for byte; the
# signature's x-pgp RESULT (pass, policy, fail) in b.test's Authentication-Results, or none unsigned.
decrypted_ok() {
	f=$(newest "$2")
	$MAILTOOL entity "$f" > "$T/got.entity"
	check "$1: the Maildir copy is the original content, byte for byte" cmp -s "$T/got.entity" "$3"
	check "$1: X-Cables says decrypted" grep -q '^X-Cables: decrypted; format=pgp; key=[0-9a-f]\{16\}$' "$f"
	if [ -n "${4:-}" ]; then
		check "$1: signature $4" grep -q "^Authentication-Results: mx.b.test; x-pgp=$4\( \|\$\)" "$f"
	else
		check "$1: no signature result" sh -c "! grep -q '^Authentication-Results: mx.b.test' $f"
	fi
}
not_decrypted_ok() {	# DESCRIPTION USER REASON
	f=$(newest "$2")
	check "$1: no plaintext delivered" sh -c "! grep -q PLAINTEXT-MARKER $f"
	check "$1: X-Cables gives the reason" grep -q "^X-Cables: not-decrypted; format=pgp; reason=\".*$3" "$f"
}

TO=bob@b.test
for kind in utf8 latin1 att; do
	gpg_enc "$T/$kind.entity" "$T/$kind.asc" -r bob@b.test
	if deliver "$(message "$T/$kind.asc" "gpg-$kind")" bob@b.test; then
		decrypted_ok "gpg PGP/MIME $kind" bob "$T/$kind.expected"
	else
		not_ok "gpg PGP/MIME $kind: delivered" "$REPLY"
	fi
done
gpg_enc "$T/utf8.entity" "$T/signed.asc" -r bob@b.test --sign -u alice@a.test
if deliver "$(message "$T/signed.asc" gpg-signed)" bob@b.test; then
	decrypted_ok "gpg signed and encrypted" bob "$T/utf8.expected" pass
	check "gpg signed: the signer is alice" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="alice@a.test"$' "$(newest bob)"
else
	not_ok "gpg signed: delivered" "$REPLY"
fi
gpg_enc "$T/utf8.entity" "$T/msigned.asc" -r bob@b.test --sign -u mallory@m.test
if deliver "$(message "$T/msigned.asc" gpg-msigned)" bob@b.test; then
	decrypted_ok "signed by a key the store does not hold for From" bob "$T/utf8.expected" policy
else
	not_ok "mallory-signed: delivered" "$REPLY"
fi
rnp --homedir "$RA" --encrypt -r bob@b.test --armor "$T/att.entity" --output "$T/rnp.asc" >/dev/null 2>&1
if deliver "$(message "$T/rnp.asc" rnp-att)" bob@b.test; then
	decrypted_ok "rnp PGP/MIME with an attachment" bob "$T/att.expected"
else
	not_ok "rnp: delivered" "$REPLY"
fi

# PGP/MIME signed, not encrypted (RFC 3156 multipart/signed): checked, left in place.
gpg --homedir "$GA" --batch -q --yes -u alice@a.test --armor --detach-sign -o "$T/utf8.sig" "$T/utf8.entity" 2>/dev/null
$MAILTOOL pgp-signed "$T/utf8.entity" "$T/utf8.sig" "$T/signed-only.eml" --header "From: Alice <alice@a.test>" \
	--header "To: bob@b.test" --header "Subject: signed only"
$MAILTOOL body "$T/signed-only.eml" > "$T/signed-only.body"
if deliver "$T/signed-only.eml" bob@b.test; then
	f=$(newest bob)
	check "signed only: signature valid, signer alice" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="alice@a.test"$' "$f"
	check "signed only: no X-Cables field (nothing was decrypted)" sh -c "! grep -q '^X-Cables' $f"
	check "signed only: the body is left as it came" sh -c "$MAILTOOL body $f | cmp -s - $T/signed-only.body"
else
	not_ok "signed only: delivered" "$REPLY"
fi
sed 's/Gr\(.*\)PLAINTEXT-MARKER/Gr\1TAMPERED-MARKER/' "$T/signed-only.eml" > "$T/tampered.eml"
if deliver "$T/tampered.eml" bob@b.test; then
	check "signed, then changed: signature invalid" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=fail reason="bad signature' "$(newest bob)"
else
	not_ok "tampered: delivered" "$REPLY"
fi
$MAILTOOL pgp-signed "$T/utf8.entity" "$T/utf8.sig" "$T/stranger.eml" --header "From: Zed <zed@z.test>" \
	--header "To: bob@b.test" --header "Subject: from a stranger"
if deliver "$T/stranger.eml" bob@b.test; then
	check "signed by a sender the store has no key for: untrusted, with the reason" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=policy reason="no OpenPGP key in the key store for zed@z.test"' "$(newest bob)"
else
	not_ok "stranger: delivered" "$REPLY"
fi
# Signed, then encrypted separately (the multipart/signed entity inside PGP/MIME, as older clients do).
$MAILTOOL entity "$T/signed-only.eml" > "$T/signed-entity"
gpg_enc "$T/signed-entity" "$T/sign-then-encrypt.asc" -r bob@b.test
if deliver "$(message "$T/sign-then-encrypt.asc" sign-then-encrypt)" bob@b.test; then
	check "signed then encrypted: decrypted" grep -q '^X-Cables: decrypted; format=pgp; key=[0-9a-f]*$' "$(newest bob)"
	check "signed then encrypted: inner signature valid, signer alice" \
		grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="alice@a.test"$' "$(newest bob)"
else
	not_ok "sign-then-encrypt: delivered" "$REPLY"
fi

# Inline PGP: the plaintext replaces the armor, the charset stays.
printf 'Gr\374\337e aus K\366ln, PLAINTEXT-MARKER\r\n' > "$T/inline.txt"
gpg_enc "$T/inline.txt" "$T/inline.asc" -r bob@b.test
if deliver "$(message "$T/inline.asc" inline --inline --charset iso-8859-1)" bob@b.test; then
	f=$(newest bob)
	$MAILTOOL body "$f" > "$T/inline.got"
	check "inline: the body is the plaintext, byte for byte" cmp -s "$T/inline.got" "$T/inline.txt"
	check "inline: the charset stays" grep -q '^Content-Type: text/plain; charset=iso-8859-1' "$f"
	check "inline: 8-bit plaintext is labelled 8bit" grep -q '^Content-Transfer-Encoding: 8bit' "$f"
	check "inline: X-Cables says so" grep -q '^X-Cables: decrypted; format=pgp; inline; key=' "$f"
else
	not_ok "inline: delivered" "$REPLY"
fi

# Two local recipients, encrypted to bob only, no ReinjectTo: carol must not
# get bob's plaintext, so it stays encrypted for both, with the reason.
TO="bob@b.test, carol@b.test"
gpg_enc "$T/utf8.entity" "$T/bobonly.asc" -r bob@b.test
if deliver "$(message "$T/bobonly.asc" bobonly)" bob@b.test carol@b.test; then
	not_decrypted_ok "encrypted to bob, sent to bob and carol" carol "carol@b.test is not a recipient of the encryption"
else
	not_ok "bob only: delivered" "$REPLY"
fi
# Encrypted by gpg to bob and carol (different keys), no ReinjectTo: one
# decryption cannot serve both (gpg gets one recipient's session-key packet
# at a time), and there is no split delivery, so it stays encrypted for both.
gpg_enc "$T/utf8.entity" "$T/bobcarol.asc" -r bob@b.test -r carol@b.test
TO="bob@b.test, carol@b.test"
if deliver "$(message "$T/bobcarol.asc" bobcarol-nosplit)" bob@b.test carol@b.test; then
	not_decrypted_ok "to bob and carol, no ReinjectTo: bob" bob "the recipients have different keys (no ReinjectTo"
	not_decrypted_ok "to bob and carol, no ReinjectTo: carol" carol "the recipients have different keys (no ReinjectTo"
else
	not_ok "bob and carol, no split: delivered" "$REPLY"
fi
# Encrypted to carol's key, sent to bob: bob never gets carol's plaintext.
TO=bob@b.test
gpg_enc "$T/utf8.entity" "$T/forcarol.asc" -r carol@b.test
if deliver "$(message "$T/forcarol.asc" forcarol)" bob@b.test; then
	not_decrypted_ok "another local user's mail re-sent to bob" bob "bob@b.test is not a recipient of the encryption"
else
	not_ok "for carol, to bob: delivered" "$REPLY"
fi
# Issue 15 item 1, the spliced message: carol (a local user) takes bob's
# ciphertext (seen on the wire), keeps bob's session-key packet first, adds
# one naming her own encryption subkey, and mails it to herself.  Only the
# packet naming carol's key is opened (by the keyholder, with carol's key,
# for carol), and it does not hold bob's session key, so carol gets the
# message still encrypted, never bob's plaintext, with the reason.
cid=$(gpg --homedir "$GA" --list-keys --with-colons carol@b.test | awk -F: '$1 == "sub" {print $5; exit}')
/usr/bin/python3 - "$T/bobonly.asc" "$T/spliced.asc" "$cid" <<'PY'
import base64, sys
src, dst, keyid = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
lines = open(src).read().splitlines()
body = lines[lines.index("") + 1:]
data = base64.b64decode("".join(l for l in body if l and not l.startswith(("=", "-"))))
def header(p):
    """Tag and total length of the packet at p (old or new format, definite lengths)."""
    b = data[p]
    if b & 0x40:
        l = data[p + 1]
        if l < 192: return b & 0x3f, 2 + l
        if l < 224: return b & 0x3f, 3 + ((l - 192) << 8) + data[p + 2] + 192
        return b & 0x3f, 6 + int.from_bytes(data[p + 2:p + 6], "big")
    n = {0: 1, 1: 2, 2: 4}[b & 3]
    return (b >> 2) & 15, 1 + n + int.from_bytes(data[p + 1:p + 1 + n], "big")
tag, first = header(0)
assert tag == 1, tag
# A PKESK v3 naming carol's subkey (RSA, a junk MPI): only its key ID matters.
fake_body = bytes([3]) + keyid + bytes([1, 0, 8, 0x5a])
fake = bytes([0xc1, len(fake_body)]) + fake_body
out = data[:first] + fake + data[first:]
b64 = base64.b64encode(out).decode()
with open(dst, "w") as f:
    f.write("-----BEGIN PGP MESSAGE-----\n\n")
    f.write("\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)))
    f.write("\n-----END PGP MESSAGE-----\n")
PY
TO=carol@b.test
if [ -n "$cid" ] && deliver "$(message "$T/spliced.asc" spliced)" carol@b.test; then
	not_decrypted_ok "spliced: bob's packet first, one naming carol's key added, sent to carol" carol \
		"OpenPGP decryption failed"
	check "spliced: carol's copy still holds bob's ciphertext" \
		sh -c "$MAILTOOL pgp-payload $(newest carol) | grep -q 'BEGIN PGP MESSAGE'"
	check "spliced: the log names the refusal" grep -q 'not-decrypted: OpenPGP decryption failed' "$T/b/milter.log"
	check "spliced: gpg never used bob's key for carol" \
		sh -c "! grep -q 'decrypted with key [0-9a-f]\{16\}, which is not a key of every recipient' $T/b/milter.log"
else
	not_ok "spliced: delivered" "$REPLY"
fi
TO=bob@b.test
# A hidden recipient (--throw-keyids, bob's only packet names key ID 0):
# Cables cannot tell whom it is for, so it does not try (a wildcard packet
# is never given to gpg, and the GnuPG home skips hidden recipients): bob
# gets the message as it came, with the reason, and opens it himself.
gpg_enc "$T/utf8.entity" "$T/hidden.asc" -R bob@b.test
if deliver "$(message "$T/hidden.asc" hidden)" bob@b.test; then
	not_decrypted_ok "hidden recipient" bob "hides its recipients' key IDs"
	check "hidden recipient: bob's copy still holds the ciphertext" \
		sh -c "$MAILTOOL pgp-payload $(newest bob) | grep -q 'BEGIN PGP MESSAGE'"
else
	not_ok "hidden: delivered" "$REPLY"
fi

# Bad input: delivered unchanged with a reason, nothing lost, no crash.
sed '4y/ABCDEFGHIJKLMNOPQRSTUVWXYZ/NOPQRSTUVWXYZABCDEFGHIJKLM/' "$T/utf8.asc" > "$T/corrupt.asc"
if deliver "$(message "$T/corrupt.asc" corrupt)" bob@b.test; then
	not_decrypted_ok "corrupt armor" bob "OpenPGP"
else
	not_ok "corrupt armor: delivered" "$REPLY"
fi
gpg --homedir "$GA" --batch -q --yes --trust-model always --armor -o "$T/mallory.asc" -r mallory@m.test \
	--encrypt "$T/utf8.entity" 2>/dev/null
if deliver "$(message "$T/mallory.asc" nokey)" bob@b.test; then
	not_decrypted_ok "a message for a key we do not have" bob "not a recipient of the encryption"
else
	not_ok "no key: delivered" "$REPLY"
fi
message "$T/utf8.asc" noclose >/dev/null
sed '$d' "$T/noclose.eml" > "$T/noclose2.eml"
if deliver "$T/noclose2.eml" bob@b.test; then
	not_decrypted_ok "PGP/MIME without its closing boundary" bob "not well-formed PGP/MIME"
else
	not_ok "missing boundary: delivered" "$REPLY"
fi
/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(b'PLAINTEXT-MARKER ' * 300000 + b'\\r\\n')" > "$T/huge.txt"
gpg_enc "$T/huge.txt" "$T/huge.asc" -r bob@b.test -z 0
if deliver "$(message "$T/huge.asc" huge --inline)" bob@b.test; then
	f=$(newest bob)
	check "huge inline block (7 MB armored): decrypted" grep -q '^X-Cables: decrypted; format=pgp; inline' "$f"
	check "huge inline block: the whole plaintext, byte for byte" sh -c "$MAILTOOL body $f | cmp -s - $T/huge.txt"
else
	not_ok "huge inline: delivered" "$REPLY"
fi
check "the milter is still running" kill -0 "$(cat "$T/b/milter.pid")"

# A compression bomb: a few kilobytes that gpg inflates to 3 MB, past MaxMessageSize (1M here): the
# plaintext is not spooled without bound (TempDir, disk) but refused, the message delivered as it came.
inst_config b b.test "MaxMessageSize 1M"
inst_milter b
/usr/bin/python3 -c "import sys; sys.stdout.buffer.write(b'Content-Type: text/plain\r\n\r\nPLAINTEXT-MARKER\r\n' + b'A' * 3000000)" > "$T/bomb.txt"
gpg_enc "$T/bomb.txt" "$T/bomb.asc" -r bob@b.test -z 9
check "bomb: the ciphertext is small (compressed)" test "$(wc -c < "$T/bomb.asc")" -lt 100000
if deliver "$(message "$T/bomb.asc" bomb)" bob@b.test; then
	not_decrypted_ok "bomb" bob ""
	check "bomb: the reason is MaxMessageSize" grep -q "MaxMessageSize" "$(newest bob)"
else
	not_ok "bomb: delivered" "$REPLY"
fi
check "bomb: the milter is still running" kill -0 "$(cat "$T/b/milter.pid")"

# With split delivery (ReinjectTo): a message gpg encrypted to bob and carol,
# who have different keys, is decrypted for each with their own key alone:
# bob's in the transaction, carol's in a copy of her own.
inst_config b b.test "ReinjectTo inet:$((BPORT + 1))@127.0.0.1" "ReinjectKey $T/b/reinject.key"
inst_milter b
# by_subject USER SUBJECT: USER's Maildir file of the message with SUBJECT (waits for it).
by_subject() {
	wait_for 60 sh -c "grep -l '^Subject: $2\$' $T/b/mail/$1/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Subject: $2\$" "$T/b/mail/$1/Maildir/new"/* | head -n 1
}
fpr16() { gpg --homedir "$GA" --list-keys --with-colons "$1" | awk -F: '$1 == "fpr" {print tolower(substr($10, 1, 16)); exit}'; }
TO="bob@b.test, carol@b.test"
for signed in "" signed; do
	name=bobcarol${signed:+-$signed}
	if [ -n "$signed" ]; then
		gpg_enc "$T/utf8.entity" "$T/$name.asc" -r bob@b.test -r carol@b.test --sign -u alice@a.test
	else
		cp "$T/bobcarol.asc" "$T/$name.asc"
	fi
	inst_send "$BPORT" "$(message "$T/$name.asc" "$name")" alice@a.test bob@b.test carol@b.test
	check "$name: accepted ($REPLY)" test $? = 0
	for user in bob carol; do
		if f=$(by_subject "$user" "$name"); then
			$MAILTOOL entity "$f" > "$T/got.entity"
			check "$name: $user's copy is the plaintext, byte for byte" cmp -s "$T/got.entity" "$T/utf8.expected"
			check "$name: $user's copy says decrypted with $user's own key" \
				grep -q "^X-Cables: decrypted; format=pgp; key=$(fpr16 "$user@b.test")\$" "$f"
			check "$name: $user's copy has one Content-Type field" test "$(grep -ci '^Content-Type:' "$f")" = 1
			check "$name: $user got one copy" \
				test "$(grep -l "^Subject: $name\$" "$T/b/mail/$user/Maildir/new"/* | wc -l)" = 1
			if [ -n "$signed" ]; then
				check "$name: $user's copy reports alice's signature" \
					grep -q '^Authentication-Results: mx.b.test; x-pgp=pass body.pgp-identifier="alice@a.test"$' "$f"
			else
				check "$name: $user's copy has no signature result" sh -c "! grep -q '^Authentication-Results: mx.b.test' $f"
			fi
		else
			not_ok "$name: $user got a copy"
		fi
	done
done
# Inline PGP to both: each gets the plaintext body, labelled 8bit, the charset kept.
gpg_enc "$T/inline.txt" "$T/inline-bc.asc" -r bob@b.test -r carol@b.test
inst_send "$BPORT" "$(message "$T/inline-bc.asc" inline-bobcarol --inline --charset iso-8859-1)" alice@a.test \
	bob@b.test carol@b.test
check "inline-bobcarol: accepted ($REPLY)" test $? = 0
for user in bob carol; do
	if f=$(by_subject "$user" inline-bobcarol); then
		check "inline-bobcarol: $user's body is the plaintext, byte for byte" \
			sh -c "$MAILTOOL body $f | cmp -s - $T/inline.txt"
		check "inline-bobcarol: $user's copy keeps the charset" grep -q '^Content-Type: text/plain; charset=iso-8859-1' "$f"
		check "inline-bobcarol: $user's copy is labelled 8bit" grep -q '^Content-Transfer-Encoding: 8bit' "$f"
		check "inline-bobcarol: $user's copy has one Content-Type and one Content-Transfer-Encoding" \
			test "$(grep -ci '^Content-Type:' "$f") $(grep -ci '^Content-Transfer-Encoding:' "$f")" = "1 1"
		check "inline-bobcarol: $user's copy says decrypted with $user's own key" \
			grep -q "^X-Cables: decrypted; format=pgp; inline; key=$(fpr16 "$user@b.test")\$" "$f"
	else
		not_ok "inline-bobcarol: $user got a copy"
	fi
done
check "bob and carol: the log says carol got her own copy" \
	grep -q 'split by key: copy decrypted with its own key to carol@b.test as' "$T/b/milter.log"
check "bob and carol: gpg was never refused a key" \
	sh -c "! grep -q 'which is not a key of every recipient' $T/b/milter.log"
# The spliced message with split delivery too: still nothing for carol.
TO=carol@b.test
if [ -n "$cid" ] && deliver "$(message "$T/spliced.asc" spliced-split)" carol@b.test; then
	not_decrypted_ok "spliced, with split delivery" carol "OpenPGP decryption failed"
else
	not_ok "spliced, split: delivered" "$REPLY"
fi
check "the milter is still running" kill -0 "$(cat "$T/b/milter.pid")"
rig_done
