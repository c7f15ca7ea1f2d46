#!/bin/sh
# Epoch keys through the key exchange (issue 17, doc/key-exchange.md
# "Forward secrecy: epoch keys"), two domains through Postfix: b.test's
# keyd answers with bob's current epoch key next to his long-term key,
# signed with the rest; a.test's keyd checks it against bob's long-term
# certificate in the same answer and keeps it; alice's mail to bob leaves
# a.test encrypted to the epoch key alone and reaches bob decrypted.
# carol's domain offers no epoch key for her (the forged one a compromised
# milter planted in b's store is not served): under ForwardSecrecy prefer
# her long-term key is used, under require her mail waits (4xx) and
# nothing leaves.  A message waiting in a.test's queue while b.test is
# down across a rotation (b's keyholder a week ahead under faketime) is
# decrypted with the old epoch key.  The peer is pinned in a.test's Peer line; nsd serves a
# signed b.test without keys or SRV, so DNS proves there is nothing there
# and the key server is asked.
RIG_PORT=12770
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

APORT=$((RIG_PORT + 3))	# a's Postfix (and +4)
XB=$((RIG_PORT + 5))	# b's key server
DNSPORT=$((RIG_PORT + 6))
BPORT=$((RIG_PORT + 7))	# b's Postfix (and +8)
KEYD=$BUILD/cables-keyd
PY=/usr/bin/python3

printf '[req]\ndistinguished_name=dn\n[dn]\n[srv]\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$T/x509.cnf"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/b.tls.key" -subj "/CN=keys.b.test" \
	-days 30 -config "$T/x509.cnf" -extensions srv -out "$T/b.tls.pem" 2>/dev/null
printf '$ORIGIN b.test.\n$TTL 300\n@ IN SOA ns.b.test. admin.b.test. 1 3600 600 86400 60\n@ IN NS ns.b.test.\nns IN A 127.0.0.1\n' \
	> "$Z/b.test.zone"
dns_sign_zone b.test 20351231000000 20250101000000 >/dev/null
dns_start_nsd "$DNSPORT" b.test
check "nsd serves b.test" test -n "$NSD_PID"
BPIN=$(openssl x509 -in "$T/b.tls.pem" -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)

inst_config b b.test "ExchangeListen inet:$XB@127.0.0.1" "ExchangeCertificate $T/b.tls.pem" \
	"ExchangeCertificateKey $T/b.tls.key" "ExchangeKey $T/b/exchange.key" "Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout 2s"
sed -i "s|^KeydSocket none|KeydSocket $T/b/keyd.sock|" "$T/b/cables.conf"
inst_keyctl b exchange-key generate > "$T/b.txt" 2>/dev/null
B_FPR=$(sed -n 's/.*fp=\([0-9a-f]\{64\}\).*/\1/p' "$T/b.txt")
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate carol@b.test --smime >/dev/null
inst_keyctl b generate zoe@b.test --smime >/dev/null
inst_keyctl b generate erin@b.test --smime >/dev/null

inst_config a a.test "Peer b.test https://127.0.0.1:$XB ExchangeKey=$B_FPR TLSPin=sha256//$BPIN" \
	"Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout 2s" "Policy b.test require" \
	"Policy zoe@b.test ForwardSecrecy=require" "Policy erin@b.test ForwardSecrecy=require" "EncryptToSelf yes"
sed -i "s|^KeydSocket none|KeydSocket $T/a/keyd.sock|" "$T/a/cables.conf"
inst_keyctl a generate alice@a.test --smime >/dev/null	# EncryptToSelf: her key, never beside an epoch key

keyd_start() {	# NAME, with its keyholder
	start_keyholder "$T/$1/cables.conf"
	"$KEYD" -f -c "$T/$1/cables.conf" 2>>"$T/$1/keyd.stderr" &
	echo $! > "$T/$1/keyd.pid"
	echo $! >> "$T/pids"
	wait_for 10 test -S "$T/$1/keyd.sock"
}
keyd_stop() { kill "$(cat "$T/$1/keyd.pid")" 2>/dev/null; wait_for 10 sh -c "! test -S $T/$1/keyd.sock"; }
keyd_start b
# b's keyholder started with its users' keys in the store: their epoch keys come first, all in its
# first round (rows are deleted below only once that round is over, or it could make one again).
check "b's keyholder's first round of epoch keys is over" wait_for 30 grep -q 'epoch keys looked after' "$T/b/keyholder.log"
check "b's keyholder made bob's epoch key" grep -q 'epoch key [0-9a-f]\{16\} made for bob@b.test' "$T/b/keyholder.log"
check "b's keyd serves keys" wait_for 10 grep -q "serving keys on inet:$XB@127.0.0.1" "$T/b/milter.log"
# carol's and zoe's epoch keys are taken away: their answers carry none.
$PY -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"DELETE FROM keys WHERE source='epoch' AND address IN ('carol@b.test', 'zoe@b.test')\"); d.commit()" "$T/b/keys.db"
# A compromised milter, which can write keys.db and have carol's long-term key sign any digest, plants an
# epoch key of its own for her: issued by her certificate, expiring late, with a seal it cannot make.
inst_keyctl b export carol@b.test --private > "$T/carol-lt.key"
inst_keyctl b export carol@b.test > "$T/carol-lt.pem"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/forged.key" -subj "/CN=carol@b.test" \
	-addext "subjectAltName=email:carol@b.test" -out "$T/forged.csr" 2>/dev/null
openssl x509 -req -in "$T/forged.csr" -CA "$T/carol-lt.pem" -CAkey "$T/carol-lt.key" -CAcreateserial -days 40 \
	-copy_extensions copy -outform DER -out "$T/forged.der" 2>/dev/null
$PY -c "
import hashlib, sqlite3, sys, time
der = open(sys.argv[2], 'rb').read()
d = sqlite3.connect(sys.argv[1]); now = int(time.time())
d.execute(\"INSERT INTO keys (address, format, fingerprint, public_data, secret_data, not_before, not_after, source, first_seen, last_seen) VALUES ('carol@b.test', 'smime', ?, ?, ?, ?, ?, 'epoch', ?, ?)\",
          (hashlib.sha256(der).hexdigest(), der, b'garbage, not sealed', now - 60, now + 30 * 86400, now, now))
d.commit()" "$T/b/keys.db" "$T/forged.der"
# shellcheck disable=SC2016
check "a forged epoch row for carol is planted (her long-term key signed it)" $PY -c '
import sys
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
lt = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read()).public_key()
f = x509.load_der_x509_certificate(open(sys.argv[2], "rb").read())
if isinstance(lt, rsa.RSAPublicKey):
    lt.verify(f.signature, f.tbs_certificate_bytes, padding.PKCS1v15(), f.signature_hash_algorithm)
else:
    lt.verify(f.signature, f.tbs_certificate_bytes, ec.ECDSA(f.signature_hash_algorithm))
' "$T/carol-lt.pem" "$T/forged.der"
# It plants long-term keys for carol too, whose private keys it holds: one with a seal it cannot make,
# one with none.  Peers would take either from b's signed answer and encrypt carol's mail to it.
openssl req -x509 -new -key "$T/forged.key" -subj "/CN=carol@b.test" -addext "subjectAltName=email:carol@b.test" \
	-addext "extendedKeyUsage=emailProtection" -days 1400 -outform DER -out "$T/forged-lt.der" 2>/dev/null
openssl req -x509 -new -key "$T/forged.key" -subj "/CN=carol@b.test" -addext "subjectAltName=email:carol@b.test" \
	-addext "extendedKeyUsage=emailProtection" -days 1401 -outform DER -out "$T/forged-lt2.der" 2>/dev/null
$PY -c "
import hashlib, sqlite3, sys, time
d = sqlite3.connect(sys.argv[1]); now = int(time.time())
for f, secret, source in ((sys.argv[2], b'garbage, not sealed', 'generated'), (sys.argv[3], None, 'imported')):
    der = open(f, 'rb').read()
    d.execute(\"INSERT INTO keys (address, format, fingerprint, public_data, secret_data, not_before, not_after, source, first_seen, last_seen) VALUES ('carol@b.test', 'smime', ?, ?, ?, ?, ?, ?, ?, ?)\",
              (hashlib.sha256(der).hexdigest(), der, secret, now - 60, now + 1400 * 86400, source, now, now))
d.commit()" "$T/b/keys.db" "$T/forged-lt.der" "$T/forged-lt2.der"
FORGED_LT=$($PY -c "import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],'rb').read()).hexdigest()[:16])" "$T/forged-lt.der")
BOB_EPOCH=$($PY -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT substr(fingerprint,1,16) FROM keys WHERE source='epoch' AND address='bob@b.test'\").fetchone()[0])" "$T/b/keys.db")

# What b's endpoint says, asked by hand: the epoch key next to the long-term one, inside the signed payload.
$PY - "$XB" > "$T/payload.json" <<-'PY'
import base64, json, os, ssl, sys, urllib.request
nonce = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
body = json.dumps({"v": 1, "domain": "b.test", "nonce": nonce, "addresses": ["bob@b.test", "carol@b.test"]}).encode()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request("https://127.0.0.1:%s/.well-known/cables/keys" % sys.argv[1], data=body,
                             headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, context=ctx, timeout=20))
print(base64.b64decode(answer["payload"]).decode())
PY
# shellcheck disable=SC2016
check "the answer carries one epoch key for bob, none for carol" $PY -c '
import json, sys
p = json.load(open(sys.argv[1]))
r = {x["address"]: x for x in p["results"]}
assert len(r["bob@b.test"]["keys"]) == 1, r
assert len(r["bob@b.test"]["epoch"]) == 1 and r["bob@b.test"]["epoch"][0]["format"] == "smime", r
assert "epoch" not in r["carol@b.test"] and len(r["carol@b.test"]["keys"]) == 1, r
' "$T/payload.json"
# shellcheck disable=SC2016
check "carol's key in the answer is her own, not one of the planted ones" $PY -c '
import base64, json, ssl, sys
p = json.load(open(sys.argv[1]))
r = {x["address"]: x for x in p["results"]}
own = ssl.PEM_cert_to_DER_cert(open(sys.argv[2]).read())
assert base64.b64decode(r["carol@b.test"]["keys"][0]["data"]) == own, "a planted key was served"
' "$T/payload.json" "$T/carol-lt.pem"
check "the planted epoch row is not served: the keyholder ignored it" \
	grep -q 'epoch keys: carol@b.test: [0-9a-f]\{16\} ignored .*seal does not open' "$T/b/keyholder.log"
check "carol's planted long-term key is not served: the keyholder does not vouch for it" \
	grep -q "carol@b.test: key $FORGED_LT not vouched for .*seal does not open" "$T/b/keyholder.log"
# The planted long-term rows go again: what follows reads carol's key from b's store.
$PY -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"DELETE FROM keys WHERE address='carol@b.test' AND source IN ('generated', 'imported') AND not_after > strftime('%s','now') + 1000 * 86400\"); d.commit()" "$T/b/keys.db"

keyd_start a
keyd_ask "$T/a/keyd.sock" request=lookup address=bob@b.test
check "a's keyd: bob's long-term key from b's key server" grep -q '^key=bob@b.test format=smime source=peer ' "$T/reply"
check "a's keyd: bob's epoch key from b's key server, with it" grep -q "^key=bob@b.test format=smime source=peer-epoch .*fingerprint=$BOB_EPOCH" "$T/reply"
check "a's keyd kept bob's epoch key" \
	grep -q "keyd: bob@b.test: epoch key $BOB_EPOCH from the key server, valid until" "$T/a/milter.log"
check "a's keyd refused no epoch key" sh -c "! grep -q 'epoch key offered by the key server refused' $T/a/milter.log"
check "a's store: bob's long-term key, and his epoch key on an epoch line" sh -c \
	"[ \$($KEYCTL -c $T/a/cables.conf list | grep -c '^bob@b.test') = 1 ] && $KEYCTL -c $T/a/cables.conf list | grep -q '^epoch  *bob@b.test  *smime  *$BOB_EPOCH .* peer-epoch  *no\$'"
keyd_ask "$T/a/keyd.sock" request=lookup address=carol@b.test
check "carol, without an epoch key: her long-term key as before" grep -q '^key=carol@b.test format=smime source=peer ' "$T/reply"
check "carol: no epoch key line" sh -c "! grep -q 'source=peer-epoch' $T/reply"

# Mail: a's Postfix relays to b's, with a copy of what goes on the wire to the sink.
rig_sink
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob carol zoe erin"
inst_milter a
inst_milter b
send() {	# ID TO...: a message from alice, found later by its Message-ID
	id=$1
	shift
	to=$(echo "$@" | sed 's/ /, /g')
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: epoch\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nDear %s, PLAINTEXT-MARKER\r\n' \
		"$to" "$id" "$to" > "$T/$id.eml"
	$MAILTOOL entity "$T/$id.eml" > "$T/$id.entity"
	inst_send "$APORT" "$T/$id.eml" alice@a.test "$@"
}
wire() {	# ID: the wire copy's file
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $SINK/* >/dev/null 2>&1" || return 1
	sink_message "$(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* | head -n 1)" > "$T/$1.wire"
	echo "$T/$1.wire"
}
at() {	# USER ID: USER's copy at b.test
	wait_for 60 sh -c "grep -l '^Message-ID: <$2@a.test>' $T/b/mail/$1/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$2@a.test>" "$T/b/mail/$1/Maildir/new"/* | head -n 1
}
# serial_of CERT: its serial number in decimal, as openssl cms -print writes recipients' serials.
serial_of() { $PY -c "import sys; print(int(sys.argv[1], 16))" "$(openssl x509 -noout -serial -in "$1" | sed 's/^serial=//')"; }
# recipients_of WIRE: the serial numbers the CMS envelope's recipients name.
recipients_of() {
	openssl cms -cmsout -print -inform SMIME -in "$1" 2>/dev/null | sed -n 's/^ *serialNumber: *//p'
}
$PY -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT hex(public_data) FROM keys WHERE source='epoch' AND address='bob@b.test'\").fetchone()[0])" "$T/b/keys.db" |
	xxd -r -p | openssl x509 -inform der -out "$T/bob-epoch.pem"
inst_keyctl b export bob@b.test > "$T/bob-lt.pem"

send m1 bob@b.test
if w=$(wire m1); then
	recipients_of "$w" > "$T/m1.rcpts"
	check "alice -> bob: the wire copy names bob's epoch key" grep -qx "$(serial_of "$T/bob-epoch.pem")" "$T/m1.rcpts"
	check "alice -> bob: ... and only it (not his long-term key)" sh -c \
		"[ \$(wc -l < $T/m1.rcpts) = 1 ] && ! grep -qx $(serial_of "$T/bob-lt.pem") $T/m1.rcpts"
	check "alice -> bob: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $w"
	check "alice -> bob: EncryptToSelf left out beside the epoch key, logged" \
		grep -q "encrypted: .* fs=epoch (no self copy beside epoch keys)\$" "$T/a/milter.log"
else
	not_ok "alice -> bob: the wire copy was captured" "$REPLY"
fi
if f=$(at bob m1); then
	$MAILTOOL entity "$f" > "$T/m1.got"
	check "bob's mailbox: what alice sent, byte for byte" cmp "$T/m1.entity" "$T/m1.got"
	check "alice -> bob: logged fs=epoch" grep -q "encrypted: .* fs=epoch" "$T/a/milter.log"
	check "bob's mailbox: decrypted with the epoch key" grep -q "^X-Cables: decrypted; format=smime; key=$BOB_EPOCH" "$f"
else
	not_ok "bob's copy arrived"
fi

send m2 carol@b.test
if w=$(wire m2); then
	recipients_of "$w" > "$T/m2.rcpts"
	inst_keyctl b export carol@b.test > "$T/carol-lt.pem"
	check "alice -> carol (prefer, no epoch key): her long-term key" grep -qx "$(serial_of "$T/carol-lt.pem")" "$T/m2.rcpts"
	check "... and alice's own (EncryptToSelf)" test "$(wc -l < "$T/m2.rcpts")" = 2
	check "... logged: fs=long-term" grep -q "encrypted: .* fs=long-term\$" "$T/a/milter.log"
else
	not_ok "alice -> carol: the wire copy was captured" "$REPLY"
fi

before=$(ls "$SINK" | wc -l)
send m3 zoe@b.test
check "alice -> zoe (ForwardSecrecy require, no epoch key): 4xx" test "$(printf %s "$REPLY" | cut -c1)" = 4
check "alice -> zoe: the reason names ForwardSecrecy" grep -q 'zoe@b.test.*ForwardSecrecy require' "$T/a/milter.log"
check "alice -> zoe: nothing went out" sh -c "[ \$(ls $SINK | wc -l) = $before ] && ! grep -l 'Message-ID: <m3@a.test>' $SINK/* 2>/dev/null | grep -q ."

# One copy for bob (epoch key) and carol (long-term key only): a's milter has
# no ReinjectTo to split it, and carol's long-term key beside bob's epoch key
# would open bob's copy once stolen.  Under prefer bob falls back to his
# long-term key, logged; erin's require makes the message wait.
inst_keyctl b export carol@b.test > "$T/carol-lt.pem"
send m5 bob@b.test carol@b.test
if w=$(wire m5); then
	recipients_of "$w" > "$T/m5.rcpts"
	check "bob and carol in one copy: no epoch key in it" sh -c "! grep -qx $(serial_of "$T/bob-epoch.pem") $T/m5.rcpts"
	check "... bob's and carol's long-term keys" sh -c \
		"grep -qx $(serial_of "$T/bob-lt.pem") $T/m5.rcpts && grep -qx $(serial_of "$T/carol-lt.pem") $T/m5.rcpts"
	check "... logged: forward secrecy given up for bob" \
		grep -q "encrypted: .*fs=long-term for bob@b.test (forward secrecy not possible" "$T/a/milter.log"
else
	not_ok "bob and carol in one copy: the wire copy was captured" "$REPLY"
fi
keyd_ask "$T/a/keyd.sock" request=lookup address=erin@b.test
check "erin (ForwardSecrecy require) has an epoch key at a" grep -q '^key=erin@b.test format=smime source=peer-epoch' "$T/reply"
before=$(ls "$SINK" | wc -l)
send m6 erin@b.test carol@b.test
check "erin (require) and carol in one copy: 4xx" test "$(printf %s "$REPLY" | cut -c1)" = 4
check "... the reason: forward secrecy not possible for erin" \
	grep -q 'forward secrecy not possible for erin@b.test (ForwardSecrecy require)' "$T/a/milter.log"
check "... nothing went out" sh -c "[ \$(ls $SINK | wc -l) = $before ]"

# b.test stops offering erin an epoch key: a's keyd, asking again (her long-term key gone from a's store,
# her epoch key kept), removes the stored one and says so.
$PY -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"DELETE FROM keys WHERE source='epoch' AND address='erin@b.test'\"); d.commit()" "$T/b/keys.db"
$PY -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"DELETE FROM keys WHERE source='peer' AND address='erin@b.test'\"); d.commit()" "$T/a/keys.db"
keyd_ask "$T/a/keyd.sock" request=lookup address=erin@b.test
check "erin's answer without an epoch key: a's keyd logs the removal of the stored one" \
	grep -q "keyd: erin@b.test: the key server's answer has no usable epoch key: stored epoch key [0-9a-f]\{16\} removed" "$T/a/milter.log"

# With split delivery (ReinjectTo: a's Postfix's second smtpd, which skips the milter) bob's epoch key
# gets a copy of its own and carol's long-term key another.
printf 'ReinjectTo inet:%s@127.0.0.1\nReinjectKey %s\n' "$((APORT + 1))" "$T/a/reinject.key" >> "$T/a/cables.conf"
inst_milter a
send m7 bob@b.test carol@b.test
check "split: two copies of bob's and carol's message on the wire" wait_for 60 sh -c \
	"[ \$(grep -l '^Message-ID: <m7@a.test>' $SINK/* 2>/dev/null | wc -l) -ge 2 ]"
for f in $(grep -l '^Message-ID: <m7@a.test>' "$SINK"/*); do
	sink_message "$f" > "$T/m7.wire"
	recipients_of "$T/m7.wire" | sort | tr '\n' ' '
	echo
done > "$T/m7.copies"
check "split: bob's copy names his epoch key alone" grep -qx "$(serial_of "$T/bob-epoch.pem") " "$T/m7.copies"
check "split: carol's copy names her long-term key, not bob's epoch key" sh -c \
	"grep -q '$(serial_of "$T/carol-lt.pem")' $T/m7.copies && [ \$(grep -c '$(serial_of "$T/bob-epoch.pem")' $T/m7.copies) = 1 ]"

# Rotation with a message in a's queue across it: b's Postfix and keyd are
# down, alice's mail to bob (encrypted to his epoch key at a) waits at
# a.test; b's keyholder, a week on (faketime), makes bob's next epoch key;
# then b is back, a's queue is flushed, and bob gets the plaintext (the old
# epoch key is kept until EpochKeyGrace after its expiry).
if [ -n "$FAKETIME_LIB" ]; then
	postfix -c "$T/b/pf" stop >/dev/null 2>&1
	keyd_stop b
	send m4 bob@b.test
	check "alice -> bob while b is down: accepted at a.test" test "$(printf %s "$REPLY" | cut -c1)" = 2
	check "... and waiting in a's queue" wait_for 30 sh -c \
		"[ \$(find $T/a/pf/queue/deferred $T/a/pf/queue/active -type f 2>/dev/null | wc -l) -ge 1 ]"
	if w=$(wire m4); then
		check "... encrypted to bob's epoch key of before the rotation" grep -qx "$(serial_of "$T/bob-epoch.pem")" \
			"$(recipients_of "$w" > "$T/m4.rcpts"; echo "$T/m4.rcpts")"
	else
		not_ok "alice -> bob while b is down: the wire copy was captured"
	fi
	made=$(grep -c 'epoch key [0-9a-f]\{16\} made for bob@b.test' "$T/b/keyholder.log")
	stop_keyholder "$T/b/cables.conf"
	KEYHOLDER_WRAPPER=$(clock_ahead +7d) start_keyholder "$T/b/cables.conf"
	check "a week on, b's keyholder made bob's next epoch key" wait_for 30 sh -c \
		"[ \$(grep -c 'epoch key [0-9a-f]\{16\} made for bob@b.test' $T/b/keyholder.log) -gt $made ]"
	check "... and kept the old one" sh -c "$KEYCTL -c $T/b/cables.conf list | grep -q '^epoch  *bob@b.test .*$BOB_EPOCH'"
	keyd_start b
	postfix -c "$T/b/pf" start >/dev/null 2>&1
	postqueue -c "$T/a/pf" -f >/dev/null 2>&1
	if f=$(at bob m4); then
		$MAILTOOL entity "$f" > "$T/m4.got"
		check "after the rotation: bob gets what alice sent" cmp "$T/m4.entity" "$T/m4.got"
		check "... decrypted with the old epoch key" grep -q "^X-Cables: decrypted; format=smime; key=$BOB_EPOCH" "$f"
	else
		not_ok "after the rotation: bob's copy arrived" "$(tail -n 5 "$T/a/pf/maillog")"
	fi
else
	diag "faketime (Debian package faketime, tools/install-deps) is missing: rotation across a queued message not tested"
fi

rig_done
