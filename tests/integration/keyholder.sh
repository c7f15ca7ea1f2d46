#!/bin/sh
# Privilege separation (doc/privsep.md): the milter runs as nobody and cannot
# open KeyStoreKey, which only the keyholder's user (daemon) can read, yet decrypts S/MIME mail for local users (RSA PKCS#1,
# RSA-OAEP, EC) and signs outbound mail through cables-keyholder; a core
# image of the milter afterwards holds none of the private keys' bytes (nor
# the store key); the keyholder refuses a remote address, another address's
# certificate, malformed and oversized requests and a peer that is not the
# milter's user; with the keyholder down the milter temp-fails, and it
# recovers when the keyholder is back.
RIG_PORT=12410
. "$top_srcdir/tests/integration/rig.sh"

MUSER=nobody
MUID=$(id -u $MUSER)
MGID=$(id -g $MUSER)
KHUSER=daemon
as_milter_user() { setpriv --reuid="$MUID" --regid="$MGID" --clear-groups "$@"; }

mkdir -p "$T/store" "$T/tmp"
rig_config "User $MUSER" "KeyholderUser $KHUSER" "KeyStore $T/store/keys.db" "TempDir $T/tmp" "Policy a.test Sign=yes" "SignUnauthenticated yes" \
	"KeyholderSocket $T/kh/keyholder.sock" "ExchangeKey $T/exchange.key" "KeydUser sys"
keyctl generate alice@a.test --smime >/dev/null
keyctl generate carol@a.test --smime --algo p256 >/dev/null
keyctl generate bob@b.test --smime >/dev/null
for who in alice carol bob; do
	addr=$who@a.test
	[ "$who" = bob ] && addr=bob@b.test
	keyctl export "$addr" --private --out "$T/$who.pem"
	keyctl export "$addr" > "$T/$who-cert.pem"
	eval "FPR_$who=$(openssl x509 -in "$T/$who-cert.pem" -outform DER | sha256sum | cut -c1-64)"
done
# The milter's user owns the store (it harvests certificates), the keyholder's group reads it (SQLite's
# WAL files take the database's mode and, in a setgid directory, its group); only the keyholder's
# user reads the store key.
chown -R "$MUSER:$(id -gn $KHUSER)" "$T/store"
chmod 2770 "$T/store"
chmod 660 "$T/store"/*
chown "$MUSER" "$T/tmp"
chown "$KHUSER" "$T/store.key"
openssl genpkey -algorithm ed25519 -out "$T/exchange.key" 2>/dev/null
chown "$KHUSER" "$T/exchange.key"
chmod 600 "$T/exchange.key"
# The keyholder's socket in a runtime directory of its own, as README says (root, the milter's group, 0750).
install -d -m 750 -g "$MGID" "$T/kh"
rig_postfix
rig_sink
rig_milter

check "KeyStoreKey is mode 0600, the keyholder's user's" test "$(stat -c %a:%U "$T/store.key")" = 600:$KHUSER
check "as the milter's user ($MUSER), KeyStoreKey cannot be opened" \
	sh -c "! setpriv --reuid=$MUID --regid=$MGID --clear-groups cat $T/store.key"
check "the milter runs as $MUSER" test "$(ps -o uid= -p "$MILTER_PID" | tr -d ' ')" = "$MUID"
check "the keyholder runs as $KHUSER" test "$(ps -o uid= -p "$(cat "$T/kh/keyholder.sock.rigpid")" | tr -d ' ')" = "$(id -u $KHUSER)"

printf 'Content-Type: text/plain\r\n\r\nthe plan PLAINTEXT-MARKER\r\n' > "$T/inner.txt"

# inbound NAME RCPT OPENSSL-ARGS...: encrypt to RCPT with openssl, send; sets $WIRE.
inbound() {
	name=$1 rcpt=$2
	shift 2
	openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/$name.p7m" "$@" || return 1
	$MAILTOOL smime-message "$T/$name.p7m" "$T/$name.eml" --header "From: <eve@e.test>" \
		--header "To: <$rcpt>" --header "Subject: $name"
	rig_send "$T/$name.eml" eve@e.test "$rcpt"
}

decrypted() {
	inbound "$1" "$2" -recip "$3" ${4:+-keyopt "$4"} || { not_ok "$1: accepted" "$REPLY"; return; }
	w=$(capture) || { not_ok "$1: reached the sink"; return; }
	check "$1: decrypted through the keyholder" grep -q '^X-Cables: decrypted; format=smime' "$w"
	check "$1: the plaintext arrived" grep -q PLAINTEXT-MARKER "$w"
}
decrypted "RSA PKCS#1 v1.5" alice@a.test "$T/alice-cert.pem"
decrypted "RSA-OAEP" alice@a.test "$T/alice-cert.pem" rsa_padding_mode:oaep
decrypted "EC P-256 (ECDH)" carol@a.test "$T/carol-cert.pem"

$MAILTOOL make "$T/out.eml" plain
if rig_send "$T/out.eml" alice@a.test bob@b.test && w=$(capture); then
	# The wire copy carries no trace field: the milter's log line for it says what was done.
	qid=$(qid_of_reply)
	check "outbound: encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$w"
	check "outbound: signed (by the keyholder) and encrypted" \
		grep -q "$qid: encrypted: format=smime cipher=aes256-cbc recipients=1 signed" "$MILTER_LOG"
else
	not_ok "outbound signed: sent" "$REPLY"
fi
KH_LOG=$T/keyholder.log
check "the keyholder logged the operations, with the milter's uid" \
	sh -c "grep -q 'uid=$MUID alice@a.test rsa-decrypt fingerprint=$(echo "$FPR_alice" | cut -c1-16): ok' $KH_LOG &&
	grep -q 'uid=$MUID alice@a.test rsa-decrypt-oaep ' $KH_LOG && grep -q 'uid=$MUID carol@a.test ecdh ' $KH_LOG &&
	grep -q 'uid=$MUID alice@a.test sign ' $KH_LOG"

# --- A core image of the milter holds no private key bytes. ---
# needles KEYFILE OUT: the PKCS#8 DER, and each secret number (RSA d, p, q, dp, dq, qinv; EC scalar)
# big-endian and as OpenSSL keeps BIGNUMs on this machine (little-endian limbs: reversed), one hex line each.
needles() {
	openssl pkey -in "$1" -outform DER | xxd -p | tr -d '\n' > "$2"
	echo >> "$2"
	openssl pkey -in "$1" -text -noout | awk '
		/^[a-zA-Z0-9]+:/ { name = $1; next }
		/^ / { if (name ~ /^(privateExponent|prime1|prime2|exponent1|exponent2|coefficient|priv):$/) v[name] = v[name] $0 }
		END { for (n in v) { gsub(/[ :]/, "", v[n]); sub(/^(00)+/, "", v[n]); print v[n] } }' |
	while read -r hex; do
		echo "$hex"
		echo "$hex" | sed 's/../& /g' | tr ' ' '\n' | grep . | tac | tr -d '\n'
		echo
	done >> "$2"
}
# found CORE NEEDLES: how many needles occur in CORE.
found() {
	$PY - "$1" "$2" <<-'PY'
	import sys
	core = open(sys.argv[1], "rb").read()
	hits = sum(1 for line in open(sys.argv[2]) if line.strip() and bytes.fromhex(line.strip()) in core)
	print(hits)
	PY
}
needles "$T/alice.pem" "$T/alice.needles"
needles "$T/carol.pem" "$T/carol.needles"
tr -d '\n' < "$T/store.key" > "$T/storekey.needles"
echo >> "$T/storekey.needles"
check "needles: PKCS#8 DER and 6 RSA numbers both ways (13), EC: DER and the scalar (3)" \
	test "$(wc -l < "$T/alice.needles"):$(wc -l < "$T/carol.needles")" = "13:3"
if ldd "$MILTER" | grep -q libasan; then
	# AddressSanitizer's shadow memory makes a core image of terabytes: the normal build checks this.
	ok "# SKIP core images in a sanitizer build"
elif command -v gcore >/dev/null 2>&1; then
	gcore -o "$T/milter.core" "$MILTER_PID" >/dev/null 2>&1
	core=$T/milter.core.$MILTER_PID
	if [ -s "$core" ]; then
		check "core of the milter: no byte string of alice's RSA key" test "$(found "$core" "$T/alice.needles")" = 0
		check "core of the milter: no byte string of carol's EC key" test "$(found "$core" "$T/carol.needles")" = 0
		check "core of the milter: not the store key" test "$(found "$core" "$T/storekey.needles")" = 0
		KH_PID=$(cat "$T/kh/keyholder.sock.rigpid")
		gcore -o "$T/kh.core" "$KH_PID" >/dev/null 2>&1
		check "the search works: the keyholder's core holds alice's key" \
			test "$(found "$T/kh.core.$KH_PID" "$T/alice.needles")" -gt 0
		rm -f "$T"/*.core.*
	else
		not_ok "gcore wrote a core image of the milter"
	fi
else
	ok "# SKIP gcore is not installed (tools/install-deps)"
fi

# --- The keyholder's refusals. ---
# kh_ask [RAW-HEX] OP NID ADDRESS FPR DATA-HEX: one request to the keyholder; prints "status=N" or "closed".
kh_ask() {
	${KH_AS:-} $PY - "${KH_SOCK:-$T/kh/keyholder.sock}" "$@" <<-'PY'
	import socket, struct, sys
	sock, args = sys.argv[1], sys.argv[2:]
	if args[0] == "raw":
	    frame = bytes.fromhex(args[1]) if args[1] != "-" else b""
	    frame = frame + (int(args[2]) and b"\0" * int(args[2]) or b"")
	else:
	    op, nid, addr, fpr, data = int(args[0]), int(args[1]), args[2].encode(), args[3].encode(), bytes.fromhex(args[4])
	    frame = b"CKH1" + struct.pack(">BBHHH", op, 0, nid, len(addr), len(data)) + fpr
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
	if len(rep) != 1032:
	    print("closed")
	elif len(sys.argv) and __import__("os").environ.get("KH_DATA"):
	    print("status=%d data=%s" % (rep[4], rep[8:8 + struct.unpack(">H", rep[6:8])[0]].hex()))
	else:
	    print("status=%d" % rep[4])
	PY
}
DIGEST=$(printf 'x' | sha256sum | cut -c1-64)
check "keyholder: root may sign a digest for a local address with its key" \
	test "$(kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST")" = status=0
check "keyholder: a remote address is refused" \
	test "$(kh_ask 4 672 bob@b.test "$FPR_bob" "$DIGEST")" = status=1
check "keyholder: another address's certificate is refused" \
	test "$(kh_ask 4 672 alice@a.test "$FPR_carol" "$DIGEST")" = status=1
check "keyholder: an unknown digest is not signed" \
	test "$(kh_ask 4 4 alice@a.test "$FPR_alice" "$(echo "$DIGEST" | cut -c1-32)")" = status=2
check "keyholder: a raw RSA block that is no OAEP encoding is not decrypted" \
	test "$(kh_ask 2 0 alice@a.test "$FPR_alice" "00$(head -c 383 /dev/urandom | xxd -p | tr -d '\n')")" = status=2
# SIGN checks the certificate: a key usage without digitalSignature/nonRepudiation, or outside its validity.
make_cert "$T/dave.pem" dave@a.test 20250101000000Z 20351231000000Z keyEncipherment
make_cert "$T/erin.pem" erin@a.test 20200101000000Z 20210101000000Z
make_cert "$T/fred.pem" fred@a.test 20250101000000Z 20351231000000Z nonRepudiation
for who in dave erin fred; do
	keyctl import "$T/$who.pem" --force >/dev/null 2>&1
	eval "FPR_$who=$(openssl x509 -in "$T/$who.pem" -outform DER | sha256sum | cut -c1-64)"
done
check "keyholder: a certificate whose key usage has no digitalSignature does not sign" \
	test "$(kh_ask 4 672 dave@a.test "$FPR_dave" "$DIGEST")" = status=1
check "... logged with why" grep -q "dave@a.test sign fingerprint=[0-9a-f]*: refused: the certificate may not sign: key usage does not allow digitalSignature" "$KH_LOG"
check "keyholder: an expired certificate does not sign" \
	test "$(kh_ask 4 672 erin@a.test "$FPR_erin" "$DIGEST")" = status=1
check "... logged with why" grep -q "erin@a.test sign fingerprint=[0-9a-f]*: refused: the certificate may not sign: expired on" "$KH_LOG"
check "keyholder: nonRepudiation alone allows signing" \
	test "$(kh_ask 4 672 fred@a.test "$FPR_fred" "$DIGEST")" = status=0
check "keyholder: decryption is not refused for the expired certificate (old mail stays readable): a bad block fails, not refused" \
	test "$(kh_ask 1 0 erin@a.test "$FPR_erin" "00$(head -c 255 /dev/urandom | xxd -p | tr -d '\n')")" = status=2
check "keyholder: a frame with a wrong magic drops the peer" test "$(kh_ask raw 58585858 1352)" = closed
check "keyholder: an oversized data length drops the peer" \
	test "$(kh_ask raw "434b48310400"02a0000c"$(printf '%04x' 2000)" 1344)" = closed
check "keyholder: malformed and oversized requests are logged" \
	test "$(grep -c 'dropped: malformed request' "$KH_LOG")" -ge 2
check "keyholder: the milter's user may still connect after that" \
	test "$(as_milter_user "$PY" -c "import socket; s = socket.socket(socket.AF_UNIX); s.connect('$T/kh/keyholder.sock'); print('ok')")" = ok
OTHER=$(id -u bin)
cat > "$T/peer.py" <<-'PY'
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(10)
	s.connect(sys.argv[1])
	try:
	    s.sendall(b"\0" * 1356)
	    print("closed" if s.recv(2048) == b"" else "answered")
	except OSError:
	    print("closed")
	PY
chmod 0666 "$T/kh/keyholder.sock"	# let bin reach the socket: SO_PEERCRED must refuse it
check "keyholder: a peer that is neither root nor the milter's user is refused" \
	test "$(cd / && setpriv --reuid="$OTHER" --regid="$MGID" --clear-groups "$PY" "$T/peer.py" "$T/kh/keyholder.sock")" = closed
check "keyholder: the refused peer is logged with its uid" grep -q "peer uid $OTHER pid [0-9]* refused" "$KH_LOG"

# --- Exchange signatures (ExchangeKey moved from keyd to the keyholder): keyd's KeydUser only. ---
# xsign [USER] DOMAIN: an exchange-sign request for a made-up answer, as USER (root by default); prints
# "status=N" and, when signed, verifies the signature over lib/xsign.h's message with the key answered.
KEYD_UID=$(id -u sys)
cat > "$T/xsign.py" <<-'PY'
	import hashlib, socket, struct, subprocess, sys
	path, domain, tmp = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
	payload = b'{"v":1,"domain":"b.test","results":[]}'
	digest = hashlib.sha512(b"cables-keys-v1\0" + payload).digest()
	data, fpr = b"\x01" + digest, b"0" * 64
	frame = b"CKH1" + struct.pack(">BBHHH", 5, 0, 674, len(domain), len(data)) + fpr
	frame += domain + b"\0" * (256 - len(domain)) + data + b"\0" * (1024 - len(data))
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(10)
	s.connect(path)
	s.sendall(frame)
	rep = b""
	while len(rep) < 1032:
	    chunk = s.recv(2048)
	    if not chunk:
	        break
	    rep += chunk
	if len(rep) != 1032:
	    print("closed")
	    sys.exit(0)
	n = struct.unpack(">H", rep[6:8])[0]
	out = "status=%d" % rep[4]
	if rep[4] == 0:
	    sig, pub = rep[8:8 + 64], rep[8 + 64:8 + n]
	    open(tmp + "/x.msg", "wb").write(b"cables-keys-v1-sha512\0" + digest)
	    open(tmp + "/x.sig", "wb").write(sig)
	    # SubjectPublicKeyInfo for Ed25519: a fixed 12-byte prefix, then the raw key.
	    open(tmp + "/x.pub", "wb").write(bytes.fromhex("302a300506032b6570032100") + pub)
	    ok = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", tmp + "/x.pub", "-keyform", "DER",
	        "-rawin", "-in", tmp + "/x.msg", "-sigfile", tmp + "/x.sig"], capture_output=True).returncode == 0
	    out += " verified" if ok else " not-verified"
	print(out)
	PY
mkdir -p "$T/xs"
chmod 777 "$T/xs"
xsign() {
	if [ $# = 2 ]; then
		(cd / && setpriv --reuid="$(id -u "$1")" --regid="$MGID" --clear-groups "$PY" "$T/xsign.py" "$T/kh/keyholder.sock" "$2" "$T/xs")
	else
		"$PY" "$T/xsign.py" "$T/kh/keyholder.sock" "$1" "$T/xs"
	fi
}
check "exchange-sign: keyd's KeydUser (sys) gets a signature that verifies over the prehashed message" \
	test "$(xsign sys @a.test)" = "status=0 verified"
check "exchange-sign: root too" test "$(xsign @a.test)" = "status=0 verified"
check "exchange-sign: the milter's User ($MUSER) is refused" test "$(xsign $MUSER @a.test)" = status=1
check "exchange-sign: the refusal is logged with the milter's uid and why" \
	grep -q "uid=$MUID @a.test exchange-sign fingerprint=0000000000000000: refused: exchange signatures are for keyd's KeydUser only" "$KH_LOG"
check "exchange-sign: a domain that is not local is refused" test "$(xsign sys @b.test)" = status=1
# shellcheck disable=SC2086
check "keyd's KeydUser may not sign as a local user (exchange signatures only)" \
	test "$(KH_AS="setpriv --reuid=$KEYD_UID --regid=$MGID --clear-groups" kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST")" = status=1
check "... and that refusal is logged" grep -q "uid=$KEYD_UID alice@a.test sign .*refused: keyd's KeydUser may ask for exchange signatures, epoch keys and vouches only" "$KH_LOG"

# --- Held messages' keys (lib/heldseal.h): the milter's User and root only, never keyd's KeydUser. ---
# held_ask [USER] ADDRESS DATA-HEX [NID]: a held-key request (op 9, fingerprint zeros), as USER (root by default).
HELD_ID=0123456789abcdef
HELD_SALT=$(seq 0 31 | xargs printf '%02x')
held_ask() {
	as=""
	if [ $# -ge 3 ] && [ "${2#@}" != "$2" ]; then
		as="setpriv --reuid=$(id -u "$1") --regid=$MGID --clear-groups"
		shift
	fi
	KH_AS=$as KH_DATA=1 kh_ask 9 "${3:-0}" "$1" "$(printf '%064d' 0)" "$2"
}
hexof() { printf '%s' "$1" | xxd -p | tr -d '\n'; }
# The expected key, computed apart from lib/heldseal.c: M = HMAC-SHA256(KeyStoreKey, label), K = HMAC-SHA256(M, ID || salt).
HELD_WANT=$($PY - "$T/store.key" "$HELD_ID" "$HELD_SALT" <<-'PY'
	import hashlib, hmac, sys
	key = bytes.fromhex(open(sys.argv[1]).read().strip())
	m = hmac.new(key, b"cables held-message keys v1", hashlib.sha256).digest()
	print(hmac.new(m, sys.argv[2].encode() + bytes.fromhex(sys.argv[3]), hashlib.sha256).hexdigest())
	PY
)
HELD_DATA=$(hexof $HELD_ID)$HELD_SALT
check "held-key: the milter's User ($MUSER) gets the record's key, as derived from KeyStoreKey" \
	test "$(held_ask $MUSER @held "$HELD_DATA")" = "status=0 data=$HELD_WANT"
check "held-key: root too" test "$(held_ask @held "$HELD_DATA")" = "status=0 data=$HELD_WANT"
check "held-key: another salt, another key" \
	test "$(held_ask $MUSER @held "$(hexof $HELD_ID)$(printf '%064d' 0)" | cut -d' ' -f1) $(held_ask $MUSER @held "$(hexof $HELD_ID)$(printf '%064d' 0)" | grep -c "$HELD_WANT")" = "status=0 0"
check "held-key: keyd's KeydUser (sys) is refused" test "$(held_ask sys @held "$HELD_DATA")" = "status=1 data="
check "held-key: ... logged with keyd's uid and why" \
	grep -q "uid=$KEYD_UID @held held-key fingerprint=0000000000000000: refused: held-message keys are for the milter's User only (cables-keyd must not read held messages)" "$KH_LOG"
check "held-key: an address other than @held is refused" test "$(held_ask $MUSER @a.test "$HELD_DATA")" = "status=1 data="
check "held-key: an ID with capitals is refused" \
	test "$(held_ask $MUSER @held "$(hexof 0123456789ABCDEF)$HELD_SALT")" = "status=1 data="
check "held-key: an ID that is not hex is refused" \
	test "$(held_ask $MUSER @held "$(hexof 0123456789abcdeg)$HELD_SALT")" = "status=1 data="
check "held-key: ... logged with why" \
	grep -q "uid=$MUID @held held-key fingerprint=0000000000000000: refused: not a held message ID (16 lowercase hex digits)" "$KH_LOG"
check "held-key: a salt one byte short is refused" \
	test "$(held_ask $MUSER @held "$(echo "$HELD_DATA" | cut -c1-94)")" = "status=1 data="
check "held-key: a byte too many is refused" test "$(held_ask $MUSER @held "${HELD_DATA}00")" = "status=1 data="
check "held-key: a digest NID is refused" test "$(held_ask $MUSER @held "$HELD_DATA" 672)" = "status=1 data="
check "held-key: neither the key nor the salt is logged" \
	test "$(grep -c -e "$HELD_WANT" -e "$HELD_SALT" "$KH_LOG")" = 0

KH_PID=$(cat "$T/kh/keyholder.sock.rigpid")
kill -HUP "$KH_PID"
wait_for 10 grep -q 'SIGHUP: unsealed keys, the store key and the exchange key forgotten' "$KH_LOG"
check "keyholder: after SIGHUP it still runs and serves, reading the store key again" \
	test "$(kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST") $(grep -c 'store key .* loaded' "$KH_LOG")" = "status=0 2"
check "keyholder: no core files (RLIMIT_CORE 0)" grep -q '^Max core file size *0 *0 ' "/proc/$KH_PID/limits"

# --- The rate limit: a second keyholder allowing 2 operations a minute per address. ---
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/rl.sock|" -e "s|^KeyholderLogFile .*|KeyholderLogFile $T/rl.log|" \
	"$CONF" > "$T/rl.conf"
echo "KeyholderRateLimit 2" >> "$T/rl.conf"
start_keyholder "$T/rl.conf"
rl="$(KH_SOCK=$T/rl.sock kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST") $(KH_SOCK=$T/rl.sock kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST")"
rl="$rl $(KH_SOCK=$T/rl.sock kh_ask 4 672 alice@a.test "$FPR_alice" "$DIGEST") $(KH_SOCK=$T/rl.sock kh_ask 4 672 carol@a.test "$FPR_carol" "$DIGEST")"
check "keyholder: KeyholderRateLimit 2: two operations, the third rate-limited, another address unaffected" \
	test "$rl" = "status=0 status=0 status=3 status=0"
check "keyholder: the rate limit is logged" grep -q 'alice@a.test sign fingerprint=[0-9a-f]*: rate-limited: more than 2 signatures a minute (KeyholderSignRateLimit)' "$T/rl.log"
stop_keyholder "$T/rl.conf"

# --- Separate buckets (issue 14): junk that fails to unwrap spends the failure bucket first. ---
# Decrypt bucket 4, failure bucket 2: two junk blocks are answered failed and charged to the failure
# bucket; then junk gets substitute keys, each costing a decrypt token as a block that decrypts would
# (a bucket that paid only for conforming blocks would tell the padding).
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/rb.sock|" -e "s|^KeyholderLogFile .*|KeyholderLogFile $T/rb.log|" \
	"$CONF" > "$T/rb.conf"
printf 'KeyholderSignRateLimit 2\nKeyholderDecryptRateLimit 4\nKeyholderFailureRateLimit 2\n' >> "$T/rb.conf"
start_keyholder "$T/rb.conf"
rb() { KH_SOCK=$T/rb.sock KH_DATA=1 kh_ask "$@"; }
openssl x509 -in "$T/alice-cert.pem" -noout -pubkey > "$T/alice-pub.pem"
head -c 32 /dev/urandom > "$T/cek"
pkcs1() { openssl pkeyutl -encrypt -pubin -inkey "$T/alice-pub.pem" -pkeyopt rsa_padding_mode:pkcs1 -in "$T/cek" | xxd -p | tr -d '\n'; }
BLOCK_HEX=$(pkcs1)
VALID_HEX=$(pkcs1)
junk() { echo "00$(head -c $((${#BLOCK_HEX} / 2 - 1)) /dev/urandom | xxd -p | tr -d '\n')"; }
JUNK=$(junk)
OAEP_JUNK=$(junk)
answers=""
for i in 1 2; do
	answers="$answers $(rb 1 0 alice@a.test "$FPR_alice" "$(junk)" | cut -d' ' -f1)"
done
s1=$(rb 1 0 alice@a.test "$FPR_alice" "$JUNK")
s2=$(rb 1 0 alice@a.test "$FPR_alice" "$JUNK")
valid=$(rb 1 0 alice@a.test "$FPR_alice" "$VALID_HEX")
sig=$(rb 4 672 alice@a.test "$FPR_alice" "$DIGEST" | cut -d' ' -f1)
oaep=$(rb 2 0 alice@a.test "$FPR_alice" "$OAEP_JUNK" | cut -d' ' -f1)
fifth=$(rb 1 0 alice@a.test "$FPR_alice" "$VALID_HEX" | cut -d' ' -f1)
check "buckets: junk PKCS#1 v1.5 blocks: two answered failed (KeyholderFailureRateLimit 2), then substitute keys" \
	test "$answers ${s1%% *}" = " status=2 status=2 status=0"
check "buckets: a junk block asked twice gets the same substitute (as a block that decrypts would)" \
	test "${s1%% *}:$s1" = "status=0:$s2"
check "buckets: the substitute is logged as a failure" \
	grep -q 'alice@a.test rsa-decrypt fingerprint=[0-9a-f]*: failed: .*(over KeyholderFailureRateLimit: answered with a substitute key)' "$T/rb.log"
check "buckets: with the failure bucket empty, a valid decryption for the same user succeeds, with the right key" \
	test "$valid" = "status=0 data=$(xxd -p "$T/cek" | tr -d '\n')"
check "buckets: ... and a signature for the same user" test "$sig" = status=0
check "buckets: an OAEP block that is no encoding is still answered failed (it tells nothing about the key)" \
	test "$oaep" = status=2
check "buckets: the two substitutes cost decrypt tokens as successes do: the fifth decryption is rate-limited (KeyholderDecryptRateLimit 4)" \
	test "$fifth" = status=3
check "buckets: ... logged with its limit" \
	grep -q 'alice@a.test rsa-decrypt fingerprint=[0-9a-f]*: rate-limited: more than 4 decryptions a minute (KeyholderDecryptRateLimit)' "$T/rb.log"
check "buckets: with the decrypt bucket empty, junk is limited too (never performed)" \
	test "$(rb 1 0 alice@a.test "$FPR_alice" "$(junk)" | cut -d' ' -f1)" = status=3
check "buckets: the sign bucket is its own: one more signature, then rate-limited (KeyholderSignRateLimit 2)" \
	test "$(rb 4 672 alice@a.test "$FPR_alice" "$DIGEST" | cut -d' ' -f1) $(rb 4 672 alice@a.test "$FPR_alice" "$DIGEST" | cut -d' ' -f1)" = "status=0 status=3"
check "buckets: another user's buckets are untouched" \
	test "$(rb 4 672 carol@a.test "$FPR_carol" "$DIGEST" | cut -d' ' -f1)" = status=0
stop_keyholder "$T/rb.conf"
# A key deleted from the store is refused at once, although the keyholder has it unsealed in memory.
check "keyholder: carol's key works before it is deleted" \
	test "$(kh_ask 4 672 carol@a.test "$FPR_carol" "$DIGEST")" = status=0
keyctl -o delete carol@a.test >/dev/null
check "keyholder: a key deleted with cables-keyctl is refused at once" \
	test "$(kh_ask 4 672 carol@a.test "$FPR_carol" "$DIGEST")" = status=1

# --- Keyholder down: temp-fail, never plaintext, never dropped; back: works again. ---
stop_keyholder "$CONF"
inbound down alice@a.test -recip "$T/alice-cert.pem"
check "keyholder down: the encrypted message is temp-failed (4xx)" test $? = 4
check "keyholder down: the milter says why" grep -q "keyholder" "$MILTER_LOG"
rig_send "$T/out.eml" alice@a.test bob@b.test
check "keyholder down: mail alice must sign is temp-failed too (4xx), not sent unsigned" test $? = 4
start_keyholder "$CONF"
decrypted "keyholder back" alice@a.test "$T/alice-cert.pem"

# -n reads ExchangeKey: a key that is not Ed25519 is refused with a clear message.
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/notx.key" 2>/dev/null
sed -e "s|^ExchangeKey .*|ExchangeKey $T/notx.key|" "$CONF" > "$T/notx.conf"
out=$("$BUILD/cables-keyholder" -n -c "$T/notx.conf" 2>&1)
check "keyholder -n: an ExchangeKey that is not Ed25519 fails the check, saying so" \
	test "$?:$(echo "$out" | grep -c "ExchangeKey $T/notx.key: not an Ed25519 private key in PEM")" = "1:1"
check "keyholder -n: the test configuration (with its Ed25519 ExchangeKey) passes" "$BUILD/cables-keyholder" -n -c "$CONF"
sed -e "s|^ExchangeKey .*|ExchangeKey $T/none.key|" "$CONF" > "$T/nox.conf"
out=$("$BUILD/cables-keyholder" -n -c "$T/nox.conf" 2>&1)
check "keyholder -n: an ExchangeKey not made yet is a warning, not a failure (private keys need not wait)" \
	test "$?:$(echo "$out" | grep -c "warning: ExchangeKey $T/none.key: No such file")" = "0:1"

# --- Its runtime directory: made when missing, refused when others could write there. ---
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/khnew/kh.sock|" -e "s|^KeyholderLogFile .*|KeyholderLogFile $T/khnew.log|" \
	"$CONF" > "$T/khnew.conf"
"$BUILD/cables-keyholder" -f -c "$T/khnew.conf" >"$T/khnew.stderr" 2>&1 &
echo $! >> "$T/pids"
KHNEW=$!
wait_for 10 test -S "$T/khnew/kh.sock"
check "keyholder: a missing socket directory is made 0750 with the milter's group" \
	test "$(stat -c %a:%g "$T/khnew")" = "750:$MGID"
check "keyholder: its socket there is 0660 with the milter's group" \
	test "$(stat -c %a:%g "$T/khnew/kh.sock")" = "660:$MGID"
kill "$KHNEW"
wait "$KHNEW" 2>/dev/null
mkdir -p "$T/khopen"
chmod 0777 "$T/khopen"
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/khopen/kh.sock|" -e "s|^KeyholderLogFile .*|KeyholderLogFile $T/khopen.log|" \
	"$CONF" > "$T/khopen.conf"
"$BUILD/cables-keyholder" -f -c "$T/khopen.conf" >"$T/khopen.stderr" 2>&1 &
echo $! >> "$T/pids"
wait $!
check "keyholder: a socket directory writable by others is refused at start" test $? = 1
check "keyholder: ... with a message that says why" \
	grep -q "KeyholderSocket $T/khopen/kh.sock: directory $T/khopen: writable by group or others" "$T/khopen.log"
check "keyholder: ... and no socket was made there" test ! -e "$T/khopen/kh.sock"

if command -v systemd-analyze >/dev/null 2>&1; then
	sed -e "s|/usr/local/sbin/cables-keyholder|$BUILD/cables-keyholder|" -e '/^Documentation=/d' \
		"$SRC/etc/cables-keyholder.service" > "$T/cables-keyholder.service"
	check "etc/cables-keyholder.service: systemd-analyze verify" systemd-analyze verify "$T/cables-keyholder.service"
fi
rig_done
