#!/bin/sh
# OpenPGP through cables-keyholder (doc/privsep.md): the milter runs as nobody,
# cannot open KeyStoreKey and never holds an OpenPGP secret key, yet decrypts
# what real gpg encrypts to local users' RSA-3072, Curve25519 and NIST P-256
# keys (the keyholder opens the session-key packet, or answers the ECDH
# shared secret) and signs outbound mail (Ed25519, RSA, ECDSA; gpg verifies);
# its GnuPG home holds no secret key afterwards and a core image of it none of
# the secret keys' bytes, while the keyholder's does (the search works); the
# keyholder refuses OpenPGP requests for a remote address, another address's
# key, a key ID not in the key, an operation the key's algorithm is not for,
# a small-order X25519 point, a malformed fingerprint field, an epoch subkey's seal in a row of another source;
# with the keyholder down the milter temp-fails (inbound
# and signing), and it recovers when the keyholder is back; after
# cables-keyctl delete the key is refused at once and no copy of it is left.
RIG_PORT=12600
. "$top_srcdir/tests/integration/rig.sh"

MUSER=nobody
MUID=$(id -u $MUSER)
MGID=$(id -g $MUSER)
KHUSER=daemon

mkdir -p "$T/store" "$T/tmp"
rig_config "User $MUSER" "KeyholderUser $KHUSER" "KeyStore $T/store/keys.db" "TempDir $T/tmp" \
	"Policy a.test Sign=yes" "SignUnauthenticated yes"
keyctl generate alice@a.test --pgp >/dev/null			# ed25519 / cv25519
keyctl generate dave@a.test --pgp --algo rsa3072 >/dev/null
keyctl generate bob@b.test --pgp >/dev/null			# a remote reader, for outbound
# pat@a.test: NIST P-256 (sign) / P-256 (ECDH), made by gpg and imported with its secret.
GP=$T/gp
gpg_home "$GP"
gpg --homedir "$GP" --batch -q --pinentry-mode loopback --passphrase '' \
	--quick-gen-key '<pat@a.test>' nistp256 sign never 2>/dev/null
pfpr=$(gpg --homedir "$GP" --with-colons -k pat@a.test | awk -F: '$1 == "fpr" {print $10; exit}')
gpg --homedir "$GP" --batch -q --pinentry-mode loopback --passphrase '' --quick-add-key "$pfpr" nistp256 encr never
gpg --homedir "$GP" --batch -q --pinentry-mode loopback --passphrase '' --armor --export-secret-keys pat@a.test \
	> "$T/pat.sec"
keyctl import "$T/pat.sec" >/dev/null
for who in alice dave pat; do
	keyctl export "$who@a.test" --private --out "$T/$who.sec"
	keyctl export "$who@a.test" --out "$T/$who.pub"
done
keyctl export bob@b.test --private --out "$T/bob.sec"
check "setup: keyctl holds the three local keys with their secrets" \
	test "$(keyctl list | awk '$2 == "pgp" && $1 ~ /@a.test$/ && $6 == "yes"' | wc -l)" = 3
chown -R "$MUSER:$(id -gn $KHUSER)" "$T/store"
chmod 2770 "$T/store"
chmod 660 "$T/store"/*
chown "$MUSER" "$T/tmp"
chown "$KHUSER" "$T/store.key"
rig_postfix
rig_sink
rig_milter

check "as the milter's user ($MUSER), KeyStoreKey cannot be opened" \
	sh -c "! setpriv --reuid=$MUID --regid=$MGID --clear-groups cat $T/store.key"
check "the milter runs as $MUSER" test "$(ps -o uid= -p "$MILTER_PID" | tr -d ' ')" = "$MUID"

# Eve (e.test) writes with gpg to the local users, and reads as bob.
GE=$T/ge
gpg_home "$GE"
gpg --homedir "$GE" --batch -q --import "$T/alice.pub" "$T/dave.pub" "$T/pat.pub" "$T/bob.sec" 2>/dev/null
printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nthe plan PLAINTEXT-MARKER\r\n' > "$T/inner.txt"

# inbound NAME RCPT: PGP/MIME encrypted by gpg to RCPT, sent from eve.
inbound() {
	gpg --homedir "$GE" --batch -q --yes --trust-model always --armor -o "$T/$1.asc" -r "$2" \
		--encrypt "$T/inner.txt" 2>/dev/null || return 1
	$MAILTOOL pgp-message "$T/$1.asc" "$T/$1.eml" --header "From: <eve@e.test>" --header "To: <$2>" \
		--header "Subject: $1"
	rig_send "$T/$1.eml" eve@e.test "$2"
}
decrypted() {	# NAME RCPT
	inbound "$1" "$2" || { not_ok "$1: accepted" "$REPLY"; return; }
	w=$(capture) || { not_ok "$1: reached the sink"; return; }
	check "$1: decrypted through the keyholder" grep -q '^X-Cables: decrypted; format=pgp; key=' "$w"
	check "$1: the plaintext arrived" grep -q PLAINTEXT-MARKER "$w"
}
decrypted "RSA-3072" dave@a.test
decrypted "Curve25519 (ECDH)" alice@a.test
decrypted "NIST P-256 (ECDH)" pat@a.test

$MAILTOOL make "$T/out.eml" plain
$MAILTOOL entity "$T/out.eml" > "$T/out.entity"
signed() {	# NAME SENDER: signed by SENDER through the keyholder, encrypted to bob; gpg verifies
	if ! rig_send "$T/out.eml" "$2" bob@b.test || ! w=$(capture); then
		not_ok "$1: sent" "$REPLY"
		return
	fi
	$MAILTOOL pgp-payload "$w" > "$T/payload.asc"
	gpg --homedir "$GE" --batch -q --decrypt "$T/payload.asc" > "$T/dec.out" 2>/dev/null
	$MAILTOOL split-pgp-signed "$T/dec.out" "$T/part" "$T/sig.asc"
	check "$1: the signed part is the content entity, byte for byte" cmp -s "$T/part" "$T/out.entity"
	gpg --homedir "$GE" --batch --status-fd 1 --verify "$T/sig.asc" "$T/part" > "$T/status" 2>/dev/null
	check "$1: gpg verifies the signature" grep -q '^\[GNUPG:\] VALIDSIG ' "$T/status"
}
signed "signed by Ed25519" alice@a.test
signed "signed by RSA-3072" dave@a.test
signed "signed by ECDSA P-256" pat@a.test

KH_LOG=$T/keyholder.log
check "the keyholder logged each OpenPGP operation with the milter's uid" \
	sh -c "grep -q 'uid=$MUID dave@a.test pgp-rsa-decrypt keyid=[0-9a-f]*: ok' $KH_LOG &&
	grep -q 'uid=$MUID alice@a.test pgp-ecdh-unwrap keyid=[0-9a-f]*: ok' $KH_LOG &&
	grep -q 'uid=$MUID pat@a.test pgp-ecdh-unwrap keyid=[0-9a-f]*: ok' $KH_LOG &&
	grep -q 'uid=$MUID alice@a.test pgp-sign keyid=[0-9a-f]*: ok' $KH_LOG &&
	grep -q 'uid=$MUID dave@a.test pgp-sign keyid=[0-9a-f]*: ok' $KH_LOG &&
	grep -q 'uid=$MUID pat@a.test pgp-sign keyid=[0-9a-f]*: ok' $KH_LOG"
# gpg as the milter's user on its home (as root it would leave root's files there).
as_milter_user() { (cd / && setpriv --reuid="$MUID" --regid="$MGID" --clear-groups "$@"); }
secrets_in_home() {	# the count, or "gpg failed" (so that a broken listing is no "0")
	out=$(as_milter_user gpg --homedir "$T/gnupg" --batch --list-secret-keys --with-colons 2>/dev/null) ||
		{ echo "gpg failed"; return; }
	printf '%s\n' "$out" | grep -c '^sec'
}
check "the milter's GnuPG home holds no secret key" test "$(secrets_in_home)" = 0
check "the milter's GnuPG home: private-keys-v1.d is empty" \
	sh -c "! ls -A $T/gnupg/private-keys-v1.d 2>/dev/null | grep -q ."

# --- A core image of the milter holds no byte of the secret keys. ---
# needles SECRET-KEY-FILE OUT: each secret MPI of each (sub)key (RSA d, p, q, u; the EC, Curve25519
# and Ed25519 scalars), big-endian and reversed (OpenSSL's limb order, and RFC 7748's for Curve25519),
# and the binary transferable secret key; one hex line each.
needles() {
	gpg --dearmor < "$1" > "$T/needle.bin"
	$PY - "$T/needle.bin" > "$2" <<-'PY'
	import sys
	data = open(sys.argv[1], "rb").read()
	print(data.hex())
	def mpis(b, pos, n):
	    out = []
	    for _ in range(n):
	        bits = b[pos] << 8 | b[pos + 1]
	        ln = (bits + 7) // 8
	        out.append(b[pos + 2:pos + 2 + ln])
	        pos += 2 + ln
	    return out, pos
	pos = 0
	while pos < len(data):
	    ctb = data[pos]
	    if ctb & 0x40:
	        tag, l0 = ctb & 0x3f, data[pos + 1]
	        if l0 < 192: hl, ln = 2, l0
	        elif l0 < 224: hl, ln = 3, ((l0 - 192) << 8) + data[pos + 2] + 192
	        else: hl, ln = 6, int.from_bytes(data[pos + 2:pos + 6], "big")
	    else:
	        tag, lt = (ctb >> 2) & 0xf, ctb & 3
	        hl = {0: 2, 1: 3, 2: 5}[lt]
	        ln = int.from_bytes(data[pos + 1:pos + hl], "big")
	    body = data[pos + hl:pos + hl + ln]
	    pos += hl + ln
	    if tag not in (5, 7):
	        continue
	    algo, p = body[5], 6
	    if algo in (1, 2, 3):
	        _, p = mpis(body, p, 2)
	        count = 4
	    else:
	        p += 1 + body[p]
	        _, p = mpis(body, p, 1)
	        if algo == 18:
	            p += 1 + body[p]
	        count = 1
	    assert body[p] == 0, "protected secret key"
	    secret, _ = mpis(body, p + 1, count)
	    for v in secret:
	        print(v.hex())
	        print(v[::-1].hex())
	PY
}
found() {	# CORE NEEDLES: how many needles occur in CORE
	$PY - "$1" "$2" <<-'PY'
	import sys
	core = open(sys.argv[1], "rb").read()
	print(sum(1 for line in open(sys.argv[2]) if line.strip() and bytes.fromhex(line.strip()) in core))
	PY
}
for who in alice dave pat; do needles "$T/$who.sec" "$T/$who.needles"; done
check "needles: ed25519+cv25519 (1 + 2x2), RSA primary and subkey (1 + 2x8), P-256 twice (1 + 2x2)" \
	test "$(wc -l < "$T/alice.needles"):$(wc -l < "$T/dave.needles"):$(wc -l < "$T/pat.needles")" = "5:17:5"
if ldd "$MILTER" | grep -q libasan; then
	ok "# SKIP core images in a sanitizer build"
elif command -v gcore >/dev/null 2>&1; then
	gcore -o "$T/milter.core" "$MILTER_PID" >/dev/null 2>&1
	core=$T/milter.core.$MILTER_PID
	if [ -s "$core" ]; then
		for who in alice dave pat; do
			check "core of the milter: no byte string of $who's OpenPGP secret key" \
				test "$(found "$core" "$T/$who.needles")" = 0
		done
		KH_PID=$(cat "$T/keyholder.sock.rigpid")
		gcore -o "$T/kh.core" "$KH_PID" >/dev/null 2>&1
		check "the search works: the keyholder's core holds alice's, dave's and pat's secrets" sh -c \
			"test $(found "$T/kh.core.$KH_PID" "$T/alice.needles") -gt 0 &&
			test $(found "$T/kh.core.$KH_PID" "$T/dave.needles") -gt 0 &&
			test $(found "$T/kh.core.$KH_PID" "$T/pat.needles") -gt 0"
		rm -f "$T"/*.core.*
	else
		not_ok "gcore wrote a core image of the milter"
	fi
else
	ok "# SKIP gcore is not installed (tools/install-deps)"
fi

# --- The keyholder's refusals of OpenPGP requests. ---
# kh_ask OP KIND NID ADDRESS FPR-FIELD DATA-HEX: one request; prints "status=N" or "closed".
kh_ask() {
	$PY - "${KH_SOCK:-$T/keyholder.sock}" "$@" <<-'PY'
	import socket, struct, sys
	sock, (op, kind, nid, addr, fpr, data) = sys.argv[1], sys.argv[2:]
	addr, fpr, data = addr.encode(), fpr.encode(), bytes.fromhex(data)
	frame = b"CKH1" + struct.pack(">BBHHH", int(op), int(kind), int(nid), len(addr), len(data)) + fpr
	frame += addr + b"\0" * (256 - len(addr)) + data + b"\0" * (1024 - len(data))
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(10)
	try:
	    s.connect(sock)
	    s.sendall(frame)
	    rep = b""
	    while len(rep) < 1032:
	        chunk = s.recv(2048)
	        if not chunk:
	            break
	        rep += chunk
	except OSError as e:
	    print("closed", e)
	    sys.exit(0)
	print("status=%d" % rep[4] if len(rep) == 1032 else "closed")
	PY
}
# field WHO [SUB]: the fingerprint field for WHO's primary key and its primary (or first subkey's) key ID.
field() {
	gpg --homedir "$GE" --with-colons --fingerprint --fingerprint "$1@a.test" 2>/dev/null |
		awk -F: -v sub_="${2:-}" '$1 == "fpr" { f[n++] = tolower($10) }
			END { k = sub_ ? f[1] : f[0]; print f[0] substr(k, 25) "00000000" }'
}
DIGEST=$(printf 'x' | sha256sum | cut -c1-64)
# An OpenPGP key signs no bare digest (it could be a subkey binding's or a certification's): only the content's
# hash state with a document signature's hashed part (pgp_sign.h), which the milter's signing checks use.
check "keyholder: a bare digest is not signed with alice's Ed25519 primary key, not even for root" \
	test "$(kh_ask 4 1 0 alice@a.test "$(field alice)" "$DIGEST")" = status=2
check "keyholder: a remote address is refused" \
	test "$(kh_ask 4 1 0 bob@b.test "$(field alice)" "$DIGEST")" = status=1
check "keyholder: another address's key is refused" \
	test "$(kh_ask 4 1 672 alice@a.test "$(field dave)" "$DIGEST")" = status=1
check "keyholder: a key ID that is not one of the key's is not used" \
	test "$(kh_ask 4 1 0 alice@a.test "$(field alice | cut -c1-40)$(field dave | cut -c41-56)00000000" "$DIGEST")" = status=2
check "keyholder: a small-order X25519 point (u = 0) gets no answer" \
	test "$(kh_ask 3 1 0 alice@a.test "$(field alice sub)" "$(printf '%064d' 0)")" = status=2
# ECDH with the unwrap in the keyholder (ecdh-unwrap, op 6): a junk session-key packet (a random ephemeral
# key, a random wrapped key), as anyone can send, fails in the keyholder, where it is charged as a failure.
junk_unwrap() { echo "$(head -c 32 /dev/urandom | xxd -p | tr -d '\n')$(head -c 40 /dev/urandom | xxd -p | tr -d '\n')"; }
check "keyholder: a junk Curve25519 session-key packet does not unwrap (ecdh-unwrap: failed)" \
	test "$(kh_ask 6 1 0 alice@a.test "$(field alice sub)" "$(junk_unwrap)")" = status=2
check "... logged as a failed pgp-ecdh-unwrap" \
	grep -q "alice@a.test pgp-ecdh-unwrap keyid=[0-9a-f]*: failed: OpenPGP ECDH: the session key does not unwrap" "$T/keyholder.log"
check "keyholder: ecdh-unwrap is for OpenPGP keys only" \
	test "$(kh_ask 6 0 0 alice@a.test "$(field alice sub | cut -c1-56)00000000" "$(junk_unwrap)")" != status=0
# With a decrypt bucket of 1 and a failure bucket of 2: junk within the failure bucket does not spend the
# decrypt bucket (else the second would be rate-limited); past it, junk costs a decrypt token, as a
# success does (the third), and then the bucket limits (the fourth).
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/kb.sock|" -e "s|^KeyholderLogFile .*|KeyholderLogFile $T/kb.log|" \
	"$CONF" > "$T/kb.conf"
printf 'KeyholderDecryptRateLimit 1\nKeyholderFailureRateLimit 2\n' >> "$T/kb.conf"
start_keyholder "$T/kb.conf"
kb=""
for i in 1 2 3 4; do kb="$kb $(KH_SOCK=$T/kb.sock kh_ask 6 1 0 alice@a.test "$(field alice sub)" "$(junk_unwrap)")"; done
check "keyholder: four junk Curve25519 packets, KeyholderDecryptRateLimit 1, KeyholderFailureRateLimit 2: failed three times, then rate-limited" \
	test "$kb" = " status=2 status=2 status=2 status=3"
stop_keyholder "$T/kb.conf"
check "keyholder: an ECDH key does not sign (P-256 ECDH subkey asked for ECDSA)" \
	test "$(kh_ask 4 1 0 pat@a.test "$(field pat sub)" "$DIGEST")" = status=1
check "keyholder: a signing key does no ECDH (P-256 ECDSA primary)" \
	test "$(kh_ask 3 1 0 pat@a.test "$(field pat)" "04$(head -c 64 /dev/urandom | xxd -p | tr -d '\n')")" = status=1
check "keyholder: no raw OAEP-checked RSA decryption with an OpenPGP key" \
	test "$(kh_ask 2 1 0 dave@a.test "$(field dave sub)" "00$(head -c 383 /dev/urandom | xxd -p | tr -d '\n')")" = status=1
check "keyholder: Ed25519 signs no 20-byte digest" \
	test "$(kh_ask 4 1 0 alice@a.test "$(field alice)" "$(echo "$DIGEST" | cut -c1-40)")" = status=2
# Key flags: dave's RSA primary certifies and signs (no decryption: no padding oracle on the key that
# certifies), his RSA subkey encrypts (no signatures): refused before any RSA operation.
check "keyholder: dave's RSA primary key (certify, sign) decrypts nothing" \
	test "$(kh_ask 1 1 0 dave@a.test "$(field dave)" "00$(head -c 383 /dev/urandom | xxd -p | tr -d '\n')")" = status=1
check "keyholder: dave's RSA encryption subkey signs nothing" \
	test "$(kh_ask 4 1 672 dave@a.test "$(field dave sub)" "$DIGEST")" = status=1
check "keyholder: the key-flag refusals are logged" \
	grep -q 'dave@a.test pgp-sign keyid=[0-9a-f]*: refused: sign is not a use of this OpenPGP key' "$KH_LOG"
check "keyholder: a random RSA block is not decrypted (PKCS#1 v1.5 checked there)" \
	test "$(kh_ask 1 1 0 dave@a.test "$(field dave sub)" "00$(head -c 383 /dev/urandom | xxd -p | tr -d '\n')")" = status=2
check "keyholder: an OpenPGP fingerprint field with non-zero padding drops the peer" \
	test "$(kh_ask 4 1 0 alice@a.test "$(field alice | cut -c1-56)00000001" "$DIGEST")" = closed
check "keyholder: an unknown key kind drops the peer" \
	test "$(kh_ask 4 7 0 alice@a.test "$(field alice)" "$DIGEST")" = closed
check "keyholder: the refusals are logged with the key ID" \
	grep -q 'bob@b.test pgp-sign keyid=[0-9a-f]*: refused: not a local address' "$KH_LOG"

# An epoch subkey's seal in a row of another source (a copy, not the keyholder's epoch row): its secret is
# no primary key, so no grace check or deletion would ever apply to it: refused.
epoch_row() {	# SOURCE-NOW [SOURCE-NEW]: print alice's OpenPGP epoch row's fingerprint, or move it to SOURCE-NEW
	as_milter_user $PY - "$T/store/keys.db" "$@" <<-'PY'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	q = " WHERE address = 'alice@a.test' AND format = 'pgp' AND source = ?"
	if len(sys.argv) > 3:
	    db.execute("UPDATE keys SET source = ?" + q, (sys.argv[3], sys.argv[2]))
	    db.commit()
	else:
	    r = db.execute("SELECT fingerprint FROM keys" + q, (sys.argv[2],)).fetchone()
	    print(r[0] if r else "")
	PY
}
efpr=$(epoch_row epoch)
if [ -n "$efpr" ]; then
	epoch_row epoch imported
	kh_ask 6 1 0 alice@a.test "$efpr$(echo "$efpr" | cut -c25-40)00000000" "$(junk_unwrap)" > "$T/copied.status"
	epoch_row imported epoch
	check "keyholder: an epoch subkey's seal in a non-epoch row is refused (its secret is no primary key)" sh -c \
		"[ \"\$(cat $T/copied.status)\" != status=0 ] && grep -q 'alice@a.test pgp-ecdh-unwrap keyid=[0-9a-f]*: .*its secret is no primary secret key' $KH_LOG"
else
	not_ok "keyholder: alice has an OpenPGP epoch row" "$(keyctl list)"
fi

# --- Keyholder down: temp-fail, never plaintext, never dropped; back: works again. ---
stop_keyholder "$CONF"
inbound down alice@a.test
check "keyholder down: the OpenPGP message is temp-failed (4xx)" test $? = 4
check "keyholder down: the milter says why" grep -q "keyholder" "$MILTER_LOG"
rig_send "$T/out.eml" alice@a.test bob@b.test
check "keyholder down: mail alice must sign is temp-failed too (4xx), not sent unsigned" test $? = 4
start_keyholder "$CONF"
decrypted "keyholder back" alice@a.test
signed "keyholder back, signed" alice@a.test

# An expired OpenPGP key does not sign, whoever asks (the store row's expiry; put back afterwards).
pat_expiry() {	# [NEW]: print pat's OpenPGP row's not_after, or set it to NEW (as the milter's user, who owns the store)
	as_milter_user $PY - "$T/store/keys.db" "$@" <<-'PY'
	import sqlite3, sys
	db = sqlite3.connect(sys.argv[1])
	if len(sys.argv) > 2:
	    db.execute("UPDATE keys SET not_after = ? WHERE address = 'pat@a.test' AND format = 'pgp'", (int(sys.argv[2]),))
	    db.commit()
	else:
	    print(db.execute("SELECT not_after FROM keys WHERE address = 'pat@a.test' AND format = 'pgp'").fetchone()[0])
	PY
}
pat_na=$(pat_expiry)
pat_expiry 1000
check "keyholder: an expired OpenPGP key is refused for signing" \
	test "$(kh_ask 4 1 0 pat@a.test "$(field pat)" "$DIGEST")" = status=1
check "keyholder: the refusal says expired" grep -q 'pat@a.test pgp-sign keyid=[0-9a-f]*: refused: the OpenPGP key expired' "$KH_LOG"
pat_expiry "$pat_na"

# --- cables-keyctl delete: refused at once, no copy anywhere. ---
keyctl -o delete pat@a.test >/dev/null
check "keyctl delete: the keyholder refuses pat's key at once" \
	test "$(kh_ask 4 1 0 pat@a.test "$(field pat)" "$DIGEST")" = status=1
check "keyctl delete: the store holds no row of pat" test "$(keyctl list | grep -c '^pat@a.test')" = 0
check "keyctl delete: no secret key in the milter's GnuPG home" test "$(secrets_in_home)" = 0
check "keyctl delete: no GnuPG home left in TempDir" sh -c "! ls -A $T/tmp | grep -q '^cables-gpg'"
rig_done
