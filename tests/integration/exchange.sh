#!/bin/sh
# Key exchange between Cables servers (doc/key-exchange.md), two mail
# domains on loopback: a.test and b.test, each with its own Postfix,
# cables-milter and cables-keyd, nsd serving their DNSSEC-signed zones.
# alice@a.test writes to bob@b.test with no key imported anywhere by hand:
# a's keyd finds b's key server by its signed SRV record, checks the answer
# against b's domain key (signed TXT record), and encrypts; the wire copy
# is S/MIME, b decrypts, bob's Maildir holds what alice sent.  A rogue
# server (an answer signed by another key; unsigned DNS pointing at it; a
# replayed old answer) is refused, and mail under "require" waits.  b's
# keyd down: a temporary failure, mail flows when it is back.  a's keyd
# signs its requests with a.test's exchange key and b's binds it through
# a.test's signed TXT record; requests signed so are answered in full,
# anonymous ones (unsigned, or signed by a key b cannot bind) for their
# first 8 addresses and at a lower rate.
RIG_PORT=12370
RIG_PORTS=13	# two Postfix instances, nsd, three key servers (tests/integration/port_blocks.sh)
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

APORT=$((RIG_PORT + 5))
BPORT=$((RIG_PORT + 7))
DNSPORT=$((RIG_PORT + 9))
XB=$((RIG_PORT + 10))	# b's key server
XR=$((RIG_PORT + 11))	# the rogue's
XP=$((RIG_PORT + 12))	# the replayer
KEYD=$BUILD/cables-keyd

# A test CA and TLS certificates for the key servers' host names.
printf '[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n[srv]\nsubjectAltName=$ENV::SAN\nextendedKeyUsage=serverAuth\n' > "$T/x509.cnf"
export SAN=DNS:ca.test
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" -subj "/CN=Cables test CA" \
	-days 30 -config "$T/x509.cnf" -extensions ca -out "$T/ca.pem" 2>/dev/null
tls_cert() {	# NAME SAN
	SAN=$2 openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.tls.key" -subj "/CN=$1" \
		-config "$T/x509.cnf" -out "$T/$1.csr" 2>/dev/null
	SAN=$2 openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
		-days 30 -extfile "$T/x509.cnf" -extensions srv -out "$T/$1.tls.pem" 2>/dev/null
}
tls_cert b DNS:keys.b.test
tls_cert r DNS:keys.c.test,DNS:keys.d.test
tls_cert p IP:127.0.0.1
tls_cert w DNS:openpgpkey.w.test,DNS:openpgpkey.y.test
tls_cert v DNS:v.test

COMMON="Resolver 127.0.0.1@$DNSPORT|DNSSECTrustAnchor $T/anchors|ExchangeCAFile $T/ca.pem|LookupTimeout 2s"
conf() {	# NAME DOMAINS [LINE...]: NAME's cables.conf, with its keyd
	name=$1 domains=$2
	shift 2
	old_ifs=$IFS
	IFS='|'
	# shellcheck disable=SC2086
	set -- $COMMON "$@"
	IFS=$old_ifs
	inst_config "$name" "$domains" "$@"
	sed -i "s|^KeydSocket none|KeydSocket $T/$name/keyd.sock|" "$T/$name/cables.conf"
}
conf a a.test "ExchangeKey $T/a/exchange.key" "Policy b.test require" "Policy c.test require" "Policy d.test require" "Policy e.test encrypt" \
	"Policy w.test require" "Policy v.test require" "Policy y.test encrypt" \
	"Policy bob@b.test On-KeyChange=tempfail" "CacheMinTTL 0s" "CacheMaxTTL 2s"
conf b b.test "ExchangeListen inet:$XB@127.0.0.1" "ExchangeCertificate $T/b.tls.pem" \
	"ExchangeCertificateKey $T/b.tls.key" "ExchangeKey $T/b/exchange.key"
conf r "c.test d.test" "ExchangeListen inet:$XR@127.0.0.1" "ExchangeCertificate $T/r.tls.pem" \
	"ExchangeCertificateKey $T/r.tls.key" "ExchangeKey $T/r/exchange.key"
inst_keyctl b exchange-key generate > "$T/b.txt" 2>"$T/b.txt.err"
check "keyctl exchange-key generate: the TXT record for b.test" \
	grep -q '^_cables-keys\._tcp\.b\.test\. IN TXT "v=cables1; k=ed25519; fp=[0-9a-f]\{64\}"$' "$T/b.txt"
check "keyctl exchange-key: the key file is mode 0600" test "$(stat -c %a "$T/b/exchange.key")" = 600
inst_keyctl r exchange-key generate > "$T/r.txt" 2>/dev/null
# a.test signs its requests with its own exchange key (no endpoint of its own): b binds it by a.test's TXT record.
inst_keyctl a exchange-key generate > "$T/a.txt" 2>/dev/null
A_TXT=$(sed -n 's/^_cables-keys\._tcp\.a\.test\. IN TXT //p' "$T/a.txt")
B_TXT=$(sed -n 's/^_cables-keys\._tcp\.b\.test\. IN TXT //p' "$T/b.txt")
R_TXT=$(sed -n 's/^_cables-keys\._tcp\.c\.test\. IN TXT //p' "$T/r.txt")

# Users' keys, each only in its own domain's store.
inst_keyctl a generate alice@a.test --smime >/dev/null
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate dan@b.test --pgp >/dev/null
inst_keyctl b generate eve@b.test --smime >/dev/null
for who in fay gus; do inst_keyctl b generate $who@b.test --smime >/dev/null; done
inst_keyctl r generate carol@c.test --smime >/dev/null
inst_keyctl r generate dora@d.test --smime >/dev/null

# Zones: b.test and c.test signed, d.test not.  c.test's SRV leads to the
# rogue, whose key is not the one c.test's TXT record names; d.test's
# records (unsigned) name the rogue and its key.
zone() {	# NAME SRVPORT HOST TXT
	cat > "$Z/$1.zone" <<-ZONE
	\$ORIGIN $1.
	\$TTL 300
	@ IN SOA ns.$1. admin.$1. 1 3600 600 86400 60
	@ IN NS ns.$1.
	ns IN A 127.0.0.1
	keys IN A 127.0.0.1
	_cables-keys._tcp IN SRV 0 0 $2 $3.
	_cables-keys._tcp IN TXT $4
	ZONE
}
# w.test runs no key server but a Web Key Directory at openpgpkey.w.test (nginx, below).
cat > "$Z/w.test.zone" <<-ZONE
\$ORIGIN w.test.
\$TTL 300
@ IN SOA ns.w.test. admin.w.test. 1 3600 600 86400 60
@ IN NS ns.w.test.
ns IN A 127.0.0.1
openpgpkey IN A 127.0.0.37
ZONE
# y.test has a WKD, and a key server (signed SRV) that does not answer: the WKD must not be used then.
zone y.test 1 keys.y.test "$B_TXT"
echo "openpgpkey IN A 127.0.0.37" >> "$Z/y.test.zone"
# v.test has no openpgpkey host: its WKD is at v.test itself (the direct method).
cat > "$Z/v.test.zone" <<-ZONE
\$ORIGIN v.test.
\$TTL 300
@ IN SOA ns.v.test. admin.v.test. 1 3600 600 86400 60
@ IN NS ns.v.test.
@ IN A 127.0.0.38
ns IN A 127.0.0.1
ZONE
zone a.test 1 keys.a.test "$A_TXT"
zone b.test "$XB" keys.b.test "$B_TXT"
zone c.test "$XR" keys.c.test "$B_TXT"
zone d.test "$XR" keys.d.test "$R_TXT"
for z in a.test b.test c.test w.test v.test y.test; do dns_sign_zone $z 20351231000000 20250101000000 >/dev/null; done
cp "$Z/d.test.zone" "$Z/d.test.zone.signed"
dns_start_nsd "$DNSPORT" a.test b.test c.test d.test w.test v.test y.test
check "nsd serves the zones" test -n "$NSD_PID"

keyd_start() {	# NAME; with its keyholder: ExchangeKey is the keyholder's, keyd asks it for every signature
	start_keyholder "$T/$1/cables.conf"
	"$KEYD" -f -c "$T/$1/cables.conf" 2>>"$T/$1/keyd.stderr" &
	echo $! > "$T/$1/keyd.pid"
	echo $! >> "$T/pids"
	wait_for 10 test -S "$T/$1/keyd.sock"
}
keyd_stop() { kill "$(cat "$T/$1/keyd.pid")" 2>/dev/null; wait_for 10 sh -c "! test -S $T/$1/keyd.sock"; }
for n in a b r; do keyd_start $n; done
# keyd's socket is there before the endpoint is up: wait for the endpoint's own log line.
check "b's keyd serves keys" wait_for 10 grep -q "serving keys on inet:$XB@127.0.0.1" "$T/b/milter.log"

rig_sink
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob dan"
inst_milter a
inst_milter b

# send ID TO: a message from alice, with a Message-ID to find it by.
send() {
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: exchange\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nDear %s, PLAINTEXT-MARKER\r\n' \
		"$2" "$1" "$2" > "$T/$1.eml"
	$MAILTOOL entity "$T/$1.eml" > "$T/$1.entity"
	inst_send "$APORT" "$T/$1.eml" alice@a.test "$2"
}
wire() {
	wait_for 60 sh -c "grep -l '^Message-ID: <$1@a.test>' $SINK/* >/dev/null 2>&1" || return 1
	sink_message "$(grep -l "^Message-ID: <$1@a.test>" "$SINK"/* | head -n 1)" > "$T/$1.wire"
	echo "$T/$1.wire"
}
at() {	# USER ID: USER's copy at b.test
	wait_for 60 sh -c "grep -l '^Message-ID: <$2@a.test>' $T/b/mail/$1/Maildir/new/* >/dev/null 2>&1" || return 1
	grep -l "^Message-ID: <$2@a.test>" "$T/b/mail/$1/Maildir/new"/* | head -n 1
}
check "a.test holds no key of bob's before" sh -c "! $KEYCTL -c $T/a/cables.conf list | grep -q '^bob@b.test'"

# 1. First contact: alice -> bob, bob's key from b's key server.
send x1 bob@b.test
check "alice -> bob (require): accepted" test $? = 0
if w=$(wire x1); then
	check "on the wire: S/MIME" grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' "$w"
	check "on the wire: no plaintext" sh -c "! grep -q PLAINTEXT-MARKER $w"
else
	not_ok "the wire copy was captured"
fi
if f=$(at bob x1); then
	check "bob's copy: decrypted at b.test" grep -q '^X-Cables: decrypted; format=smime' "$f"
	$MAILTOOL entity "$f" > "$T/x1.got"
	check "bob's copy: the content alice sent, byte for byte" cmp -s "$T/x1.entity" "$T/x1.got"
else
	not_ok "bob's copy arrived"
fi
check "a's store: bob's key, from the key server (source peer)" \
	sh -c "$KEYCTL -c $T/a/cables.conf list | grep -q '^bob@b.test  *smime .* peer  *no$'"
check "a's keyd logged where the key came from" grep -q 'keyd: bob@b.test: 1 key from the key server of b.test' "$T/a/milter.log"
check "the stored key is bob's own" test "$($KEYCTL -c $T/a/cables.conf list | awk '$1 == "bob@b.test" {print $3}')" = \
	"$($KEYCTL -c $T/b/cables.conf list | awk '$1 == "bob@b.test" {print $3}')"

# 2. OpenPGP too: dan's key.
send x2 dan@b.test
check "alice -> dan (OpenPGP key at b.test): accepted" test $? = 0
if w=$(wire x2); then
	check "dan's copy on the wire: PGP/MIME" $MAILTOOL pgp-payload "$w"
fi

# ask NAME LINE...: a request to NAME's keyd; the reply in $T/reply.
ask() {
	sock=$T/$1/keyd.sock
	shift
	keyd_ask "$sock" "$@"
}

# 2b. One message to two new users of b.test: one exchange for both.
stat_of() { ask "$1" request=stats; sed -n "s/^$2=//p" "$T/reply"; }
answered=$(stat_of b exchange_answered)
asked=$(stat_of b exchange_addresses)
printf 'From: Alice <alice@a.test>\r\nTo: fay@b.test, gus@b.test\r\nSubject: both\r\nMessage-ID: <x2b@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nPLAINTEXT-MARKER\r\n' > "$T/x2b.eml"
inst_send "$APORT" "$T/x2b.eml" alice@a.test fay@b.test gus@b.test
check "alice -> fay and gus (require, both new): accepted" test $? = 0
check "one request to b's key server for both addresses" \
	sh -c "[ $(stat_of b exchange_answered) = $((answered + 1)) ] && [ $(stat_of b exchange_addresses) = $((asked + 2)) ]"
if w=$(wire x2b); then
	check "fay and gus: one S/MIME copy, encrypted to both" sh -c \
		"grep -q 'encrypted: format=smime cipher=aes256-cbc recipients=2' $T/a/milter.log && ! grep -q PLAINTEXT-MARKER $w && grep -q '^Content-Type: application/pkcs7-mime' $w"
	check "fay and gus: no X-Cables field on the wire" sh -c "! grep -qi '^X-Cables' $w"
fi

# 2c. a's keyd signs its requests as a.test, and b's keyd binds the key by a.test's signed TXT record.
stat_of b exchange_signed > "$T/signed.n"
check "b answered a's requests as signed by a.test (exchange_signed=$(cat "$T/signed.n"))" test "$(cat "$T/signed.n")" -gt 0
check "no request of a's was signed by a key b could not bind" test "$(stat_of b exchange_signed_unbound)" = 0
ask a request=stats
check "a's exchange signatures are counted as the keyholder's ok answers" test \
	"$(sed -n 's/^metric=cables_keyd_keyholder_operations_total{operation="exchange-sign",result="ok"} //p' "$T/reply")" -gt 0
# The metric= lines of the same reply (KeydMetricsListen's samples) carry the same numbers.
ask b request=stats
check "stats: cables_keyd_exchange_requests_total{result=answered} is exchange_answered" test \
	"$(sed -n 's/^metric=cables_keyd_exchange_requests_total{result="answered"} //p' "$T/reply")" = \
	"$(sed -n 's/^exchange_answered=//p' "$T/reply")"
check "stats: cables_keyd_exchange_requests_total{result=refused} is exchange_refused" test \
	"$(sed -n 's/^metric=cables_keyd_exchange_requests_total{result="refused"} //p' "$T/reply")" = \
	"$(sed -n 's/^exchange_refused=//p' "$T/reply")"

# 3. A rogue server: c.test's signed SRV leads to it, but it cannot sign with c.test's key.
send x3 carol@c.test
check "rogue (answer signed by another key), require: 4xx" test $? = 4
check "rogue: the reason is the signature" grep -q "keyd: carol@c.test: key server of c.test: .*signed by a key that is not c.test's" "$T/a/milter.log"
check "rogue: nothing sent to c.test" sh -c "! grep -l 'carol@c.test' $SINK/* >/dev/null 2>&1"
check "rogue: carol's (rogue) key not stored" sh -c "! $KEYCTL -c $T/a/cables.conf list | grep -q '^carol@c.test'"
# 4. Unsigned DNS pointing at the rogue (its own key in the unsigned TXT record): not asked at all.
ask r request=stats
rogue_answers=$(sed -n 's/^exchange_answered=//p' "$T/reply")
send x4 dora@d.test
check "unsigned SRV/TXT, require: 4xx" test $? = 4
ask a request=lookup address=dora@d.test
check "unsigned SRV/TXT: no key, and why" grep -q '^result=dora@d.test none reason=' "$T/reply"
ask r request=stats
check "unsigned SRV/TXT: the rogue was never asked (it answered $rogue_answers before, for c.test)" \
	sh -c "[ $rogue_answers -ge 1 ] && [ \$(sed -n 's/^exchange_answered=//p' $T/reply) = $rogue_answers ]"
check "unsigned SRV/TXT: dora's (rogue) key not stored" sh -c "! $KEYCTL -c $T/a/cables.conf list | grep -q '^dora@d.test'"

# 5. A replayed answer: a genuine, signed answer from b for another request, served again by a man in the middle.
/usr/bin/python3 - "$XB" "$T/ca.pem" > "$T/old.json" <<-'PY'
import http.client, json, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
c.request("POST", "/.well-known/cables/keys",
          json.dumps({"v": 1, "domain": "b.test", "nonce": "AAAAAAAAAAAAAAAAAAAAAA", "addresses": ["eve@b.test"]}),
          {"Content-Type": "application/json"})
sys.stdout.write(c.getresponse().read().decode())
PY
check "b's server answers a well-formed request (signed payload)" grep -q '"signature":' "$T/old.json"
/usr/bin/python3 - "$XP" "$T/p.tls.pem" "$T/p.tls.key" "$T/old.json" > /dev/null 2>&1 <<-'PY' &
import http.server, ssl, sys
old = open(sys.argv[4], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(old)))
        self.end_headers()
        self.wfile.write(old)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = ctx.wrap_socket(s.socket, server_side=True)
s.serve_forever()
PY
echo $! >> "$T/pids"
wait_for 10 sh -c "/usr/bin/python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $XP), 1)' 2>/dev/null"
B_FPR=$(echo "$B_TXT" | sed 's/.*fp=\([0-9a-f]*\).*/\1/')
PIN=$(openssl x509 -in "$T/p.tls.pem" -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)
conf m a.test "Peer b.test https://127.0.0.1:$XP ExchangeKey=$B_FPR TLSPin=sha256//$PIN"
keyd_start m
ask m request=lookup address=eve@b.test
check "a replayed answer (signed by b, another request's nonce): refused as a temporary failure" \
	grep -q '^result=eve@b.test tempfail reason=key server: .*nonce.*replay' "$T/reply"
check "a replayed answer: eve's key not stored" sh -c "! $KEYCTL -c $T/m/cables.conf list | grep -q '^eve@b.test'"
keyd_stop m

# 5b. The TLS certificate is checked too: a pin that is not the server's key, a CA that did not issue it.
conf n a.test "Peer b.test https://keys.b.test:$XB ExchangeKey=$B_FPR TLSPin=sha256//$PIN"
sed -i "s|^ExchangeCAFile .*|ExchangeCAFile $T/p.tls.pem|" "$T/n/cables.conf"
keyd_start n
ask n request=lookup address=eve@b.test
check "a TLS key that is not the pinned one: refused (temporary failure)" \
	grep -q '^result=eve@b.test tempfail reason=key server: https://keys.b.test:.*[Pp]inned\|^result=eve@b.test tempfail reason=key server: https://keys.b.test:.*public key' "$T/reply"
keyd_stop n
conf o a.test
sed -i "s|^ExchangeCAFile .*|ExchangeCAFile $T/p.tls.pem|" "$T/o/cables.conf"
keyd_start o
ask o request=lookup address=eve@b.test
check "a certificate no trusted CA issued: refused (temporary failure)" \
	grep -q '^result=eve@b.test tempfail reason=key server: https://keys.b.test:.*[Cc]ertificate' "$T/reply"
keyd_stop o

# 5c. A Peer line as the README and doc/key-exchange.md write it (a URL without a path) reaches b's real
# keyd, by address and TLS pin, without SRV or TXT: the standard path is meant.
BPIN=$(openssl x509 -in "$T/b.tls.pem" -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64)
inst_keyctl b generate hal@b.test --smime >/dev/null
conf q a.test "Peer b.test https://127.0.0.1:$XB ExchangeKey=$B_FPR TLSPin=sha256//$BPIN"
check "keyd -n: the documented Peer form is accepted" "$KEYD" -n -c "$T/q/cables.conf"
keyd_start q
ask q request=lookup address=hal@b.test
check "Peer without a path: hal's key from b's keyd" grep -q '^key=hal@b.test format=smime source=peer ' "$T/reply"
# (b's keyd answers 404 on any other path: the key arriving is the proof.)
check "Peer without a path: a's keyd logged the key server's answer" \
	grep -q "keyd: hal@b.test: 1 key from the key server of b.test" "$T/q/milter.log"
keyd_stop q
conf q2 a.test "Peer b.test https://127.0.0.1:$XB?x=1 ExchangeKey=$B_FPR"
"$KEYD" -n -c "$T/q2/cables.conf" > "$T/q2.out" 2>&1
check "keyd -n: a Peer URL that cannot work is refused" test $? = 1
check "keyd -n: ... with the reason" grep -q "Peer b.test: 'https://127.0.0.1:$XB?x=1' is not an https:// URL keyd can use" "$T/q2.out"

# 6. b's keyd down: a temporary failure; mail flows when it is back.
keyd_stop b
send x6 eve@b.test
check "b's key server down, require: 4xx" test $? = 4
check "b's key server down: the reason" grep -q "keyd: eve@b.test: key server of b.test: https://keys.b.test:$XB/.well-known/cables/keys: .*onnect" "$T/a/milter.log"
# The same message submitted locally waits in a's queue...
PF=$T/a/pf
rig_submit "$T/x6.eml" alice@a.test eve@b.test
wait_for 30 sh -c "[ \$(grep -c 'key server of b.test: .*eve@b.test\|eve@b.test: key server of b.test' $T/a/milter.log) -ge 2 ]"
sleep 1
check "b's key server down, local submission: the message waits in a's queue" test "$(queue_count)" = 1
# ...and goes out, encrypted, once b's key server is back and Postfix retries.
keyd_start b
queue_kick
check "b's key server back: the queue empties" wait_for 60 queue_empty
if w=$(wire x6); then
	check "b's key server back: eve's copy on the wire is S/MIME" grep -q '^Content-Type: application/pkcs7-mime' "$w"
	check "b's key server back: no plaintext" sh -c "! grep -q PLAINTEXT-MARKER $w"
else
	not_ok "eve's copy went out once b's key server was back"
fi

# 8. Key changes at b.test, noticed at a.test once the keys' time is up: eve's is accepted (the
# default), bob's held back (On-KeyChange=tempfail for him) until the pin is cleared.
fpr_at() { "$KEYCTL" -c "$T/$1/cables.conf" list | awk -v a="$2" '$1 == a && $2 == "smime" {print $3}'; }
old_bob=$(fpr_at a bob@b.test)
for who in eve bob; do
	inst_keyctl b delete $who@b.test >/dev/null
	inst_keyctl b generate $who@b.test --smime >/dev/null
done
new_eve=$(fpr_at b eve@b.test)
new_bob=$(fpr_at b bob@b.test)
sleep 2.5
send x8 eve@b.test
check "eve's key changed at b.test, On-KeyChange accept: accepted" test $? = 0
check "eve's key change: logged" grep -q "keyd: eve@b.test: key change: smime key $new_eve.* is pinned: accept (On-KeyChange)" "$T/a/milter.log"
check "eve's key change: a now holds her new key" sh -c "$KEYCTL -c $T/a/cables.conf list | grep -q '^eve@b.test .*$new_eve'"
"$KEYCTL" -c "$T/a/cables.conf" pins > "$T/pins.out"
check "keyctl pins: eve's pin moved once, nothing held back" grep -q "^eve@b.test  *smime  *$new_eve .* 1  *-$" "$T/pins.out"
send x9 bob@b.test
check "bob's key changed, On-KeyChange tempfail: 4xx" test $? = 4
check "bob's key change: logged, with what to do" \
	grep -q "key lookup: bob@b.test tempfail reason=key change: smime key $new_bob offered, $old_bob pinned (On-KeyChange tempfail; cables-keyctl pins clear bob@b.test accepts the new key)" "$T/a/milter.log"
"$KEYCTL" -c "$T/a/cables.conf" pins > "$T/pins.out"
check "keyctl pins: bob's new key is shown as held back" grep -q "^bob@b.test  *smime  *$old_bob .* 0  *$new_bob (peer, " "$T/pins.out"
check "bob's key change: the new key is not stored" sh -c "! $KEYCTL -c $T/a/cables.conf list | grep -q '$new_bob'"
"$KEYCTL" -c "$T/a/cables.conf" pins clear bob@b.test > "$T/clear.out"
check "keyctl pins clear" grep -q '^cleared 1 pin of bob@b.test' "$T/clear.out"
send x9 bob@b.test
check "after pins clear: accepted" test $? = 0
if f=$(at bob x9); then
	check "after pins clear: bob decrypts with his new key" grep -q "^X-Cables: decrypted; format=smime; key=$new_bob" "$f"
else
	not_ok "bob's copy after the key change arrived"
fi

# 9. WKD: w.test publishes walt's OpenPGP key in a Web Key Directory, served by nginx with a test CA's certificate.
inst_config w w.test
inst_keyctl w generate walt@w.test --pgp >/dev/null
inst_keyctl w publish --wkd "$T/wkd" > "$T/wkd.out"
check "keyctl publish --wkd: walt's key at DIR/w.test/hu/HASH, and the policy file" sh -c \
	"[ -s $T/wkd/w.test/hu/$(/usr/bin/python3 -c "import hashlib; a='ybndrfg8ejkmcpqxot1uwisza345h769'; d=int.from_bytes(hashlib.sha1(b'walt').digest(), 'big'); print(''.join(a[(d >> (155 - 5 * i)) & 31] for i in range(32)))") ] && [ -e $T/wkd/w.test/policy ]"
mkdir -p "$T/nginx"
cat > "$T/nginx/nginx.conf" <<-NGINX
daemon off;
user root;
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 64; }
http {
	access_log $T/nginx/access.log;
	client_body_temp_path $T/nginx/body;
	server {
		listen 127.0.0.37:443 ssl;
		server_name openpgpkey.w.test openpgpkey.y.test;
		ssl_certificate $T/w.tls.pem;
		ssl_certificate_key $T/w.tls.key;
		location /.well-known/openpgpkey/ {
			alias $T/wkd/;
			default_type application/octet-stream;
		}
	}
	server {
		listen 127.0.0.38:443 ssl;
		server_name v.test;
		ssl_certificate $T/v.tls.pem;
		ssl_certificate_key $T/v.tls.key;
		location /.well-known/openpgpkey/ {
			alias $T/wkd-direct/;
			default_type application/octet-stream;
		}
	}
}
NGINX
# The direct layout for v.test: DIR/hu/HASH and DIR/policy.
inst_config v v.test
inst_keyctl v generate vera@v.test --pgp >/dev/null
inst_keyctl v publish --wkd "$T/wkd-v" >/dev/null
mkdir -p "$T/wkd-direct"
cp -r "$T/wkd-v/v.test/hu" "$T/wkd-v/v.test/policy" "$T/wkd-direct/"
nginx -e "$T/nginx/error.log" -c "$T/nginx/nginx.conf" &
echo $! >> "$T/pids"
wait_for 10 test -s "$T/nginx/nginx.pid"
check "nginx serves the WKD tree" test -s "$T/nginx/nginx.pid"
send x10 walt@w.test
check "alice -> walt (require; his key only in w.test's WKD): accepted" test $? = 0
if w=$(wire x10); then
	check "walt's copy on the wire: PGP/MIME" $MAILTOOL pgp-payload "$w"
fi
check "a's store: walt's key, source wkd" sh -c "$KEYCTL -c $T/a/cables.conf list | grep -q '^walt@w.test  *pgp .* wkd  *no$'"
inst_config y y.test
inst_keyctl y generate yan@y.test --pgp >/dev/null
inst_keyctl y publish --wkd "$T/wkd" >/dev/null
send x12 yan@y.test
check "y.test's key server fails: the mail waits (4xx), even under policy encrypt" test $? = 4
check "y.test: the key server's failure is logged" grep -q 'keyd: yan@y.test: key server of y.test: ' "$T/a/milter.log"
check "y.test: its WKD was not asked instead (a failure does not hand the choice to the web PKI)" \
	sh -c "! grep -q 'l=yan ' $T/nginx/access.log"
check "y.test: yan's WKD key not stored" sh -c "! $KEYCTL -c $T/a/cables.conf list | grep -q '^yan@y.test'"
check "nginx was asked by the advanced method" grep -q 'GET /.well-known/openpgpkey/w.test/hu/[a-z0-9]\{32\}?l=walt ' "$T/nginx/access.log"
send x11 vera@v.test
check "alice -> vera (her key only in v.test's WKD, direct method): accepted" test $? = 0
if w=$(wire x11); then
	check "vera's copy on the wire: PGP/MIME" $MAILTOOL pgp-payload "$w"
fi
check "nginx was asked by the direct method at v.test" grep -q 'GET /.well-known/openpgpkey/hu/[a-z0-9]\{32\}?l=vera ' "$T/nginx/access.log"
kill "$(cat "$T/nginx/nginx.pid")" 2>/dev/null

# 7. The endpoint itself: no enumeration, limits, malformed requests.
# post OUT PATH BODY [METHOD]: "STATUS BODY" of one request to b's server, in $T/OUT.
post() {
	out=$1
	shift
	printf '%s' "$2" > "$T/body"
	/usr/bin/python3 - "$XB" "$T/ca.pem" "$1" "$T/body" "${3:-}" > "$T/$out" <<-'PY'
	import http.client, ssl, sys
	ctx = ssl.create_default_context(cafile=sys.argv[2])
	ctx.check_hostname = False
	c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
	c.request(sys.argv[5] or "POST", sys.argv[3], open(sys.argv[4], "rb").read(), {"Content-Type": "application/json"})
	r = c.getresponse()
	print(r.status, r.read().decode())
	PY
}
payload_of() { /usr/bin/python3 -c 'import base64, json, sys; print(base64.b64decode(json.loads(sys.stdin.read().split(" ", 1)[1])["payload"]).decode())'; }
req() { printf '{"v":1,"domain":"%s","nonce":"BBBBBBBBBBBBBBBBBBBBBB","addresses":[%s]}' "${2:-b.test}" "$1"; }
# alice@b.test has a key in b's store, but an expired one: she must look like an unknown address.
make_cert "$T/expired.pem" alice@b.test 20200101000000Z 20210101000000Z
openssl x509 -in "$T/expired.pem" -out "$T/expired.crt"
inst_keyctl b import "$T/expired.crt" --force >/dev/null 2>&1
check "b's store holds alice's (expired) certificate" sh -c "$KEYCTL -c $T/b/cables.conf list | grep -q '^alice@b.test'"
post unknown.out /.well-known/cables/keys "$(req '"nobody@b.test"')"
post known.out /.well-known/cables/keys "$(req '"alice@b.test"')"
check "unknown address: 200, a signed answer" grep -q '^200 {"payload"' "$T/unknown.out"
check "no enumeration: an unknown address gets the answer of a known one without usable keys" \
	test "$(payload_of < "$T/unknown.out" | sed 's/"issued":[0-9]*//; s/nobody/X/')" = "$(payload_of < "$T/known.out" | sed 's/"issued":[0-9]*//; s/alice/X/')"
post r.out /.well-known/cables/keys '{"v":1,'
check "bad JSON: 400 with the reason" grep -q '^400 {"error":"not JSON' "$T/r.out"
post r.out /.well-known/cables/keys "$(req '"x@a.test"')"
check "an address of another domain: 400 with the reason" grep -q '^400 .*not an address in b.test' "$T/r.out"
post r.out /.well-known/cables/keys "$(req '"a@z.test"' z.test)"
check "a domain not served here: 404" grep -q '^404 ' "$T/r.out"
post r.out /etc/passwd ''
check "another path: 404" grep -q '^404 ' "$T/r.out"
post r.out /.well-known/cables/keys '' GET
check "GET: 405" grep -q '^405 ' "$T/r.out"
post r.out /.well-known/cables/keys "$(head -c 20000 /dev/zero | tr '\0' x)"
check "a 20 KB body: 413" grep -q '^413 ' "$T/r.out"
# 7b. Who gets what: signed requests in full, anonymous ones for their first 8 addresses.
# signed KEYFILE [FROM] [NONCE]: a signed request (from a.test by default) for u0..u9@b.test.
ten='"u0@b.test","u1@b.test","u2@b.test","u3@b.test","u4@b.test","u5@b.test","u6@b.test","u7@b.test","u8@b.test","u9@b.test"'
signed() {
	printf '{"v":1,"domain":"b.test","nonce":"%s","addresses":[%s],"from":"%s","issued":%s}' \
		"${3:-CCCCCCCCCCCCCCCCCCCCCC}" "$ten" "${2:-a.test}" "$(date +%s)" > "$T/inner.json"
	# What is signed (lib/xsign.h): the context with -sha512, NUL, SHA-512 of the context, NUL, the request.
	{ printf 'cables-keys-request-v1-sha512\0'
	  { printf 'cables-keys-request-v1\0'; cat "$T/inner.json"; } | openssl dgst -sha512 -binary; } > "$T/tbs.bin"
	openssl pkeyutl -sign -inkey "$1" -rawin -in "$T/tbs.bin" -out "$T/sig.bin" &&
	openssl pkey -in "$1" -pubout -outform DER 2>/dev/null | tail -c 32 > "$T/pub.bin" &&
	/usr/bin/python3 -c 'import base64, json, sys
b = lambda p: base64.b64encode(open(p, "rb").read()).decode()
print(json.dumps({"request": b(sys.argv[1]), "key": b(sys.argv[2]), "signature": b(sys.argv[3])}))' \
		"$T/inner.json" "$T/pub.bin" "$T/sig.bin"
}
# answered OUT N: the request in OUT got 200 with results for exactly its first N addresses.
answered() {
	grep -q '^200 ' "$T/$1" &&
	[ "$(payload_of < "$T/$1" | /usr/bin/python3 -c 'import json, sys; print(" ".join(r["address"] for r in json.load(sys.stdin)["results"]))')" = \
	  "$(echo u0@b.test u1@b.test u2@b.test u3@b.test u4@b.test u5@b.test u6@b.test u7@b.test u8@b.test u9@b.test | cut -d' ' -f1-"$2")" ]
}
post anon.out /.well-known/cables/keys "$(req "$ten")"
check "anonymous, 10 addresses: 200, answered for the first 8 only" answered anon.out 8
unbound_before=$(stat_of b exchange_signed_unbound)
post signed.out /.well-known/cables/keys "$(signed "$T/a/exchange.key")"
check "signed by a.test's key (bound by its signed TXT record), 10 addresses: all 10 answered" answered signed.out 10
openssl genpkey -algorithm ed25519 -out "$T/stranger.key" 2>/dev/null
post stranger.out /.well-known/cables/keys "$(signed "$T/stranger.key")"
check "signed by a key that is not a.test's: treated as anonymous, 8 answered" answered stranger.out 8
check "b counts the signature it could not bind" test "$(stat_of b exchange_signed_unbound)" = "$((unbound_before + 1))"
post nodomain.out /.well-known/cables/keys "$(signed "$T/stranger.key" nokeys.test)"
check "signed as a domain with no exchange key in DNS: treated as anonymous, 8 answered" answered nodomain.out 8
signed "$T/a/exchange.key" | /usr/bin/python3 -c 'import base64, json, sys
o = json.load(sys.stdin)
s = bytearray(base64.b64decode(o["signature"]))
s[0] ^= 1
o["signature"] = base64.b64encode(bytes(s)).decode()
print(json.dumps(o))' > "$T/tampered.json"
post tampered.out /.well-known/cables/keys "$(cat "$T/tampered.json")"
check "a signature that does not verify: 400 with the reason" grep -q '^400 .*signature does not verify' "$T/tampered.out"
/usr/bin/python3 - "$XB" "$T/ca.pem" "$(req '"u1@b.test"')" > "$T/anonburst.out" <<-'PY'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
codes = {}
for i in range(14):
    c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
    c.request("POST", "/.well-known/cables/keys", sys.argv[3].encode(), {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read().decode()
    codes[r.status] = codes.get(r.status, 0) + 1
    if r.status == 429 and "unsigned" not in body:
        codes["wrong reason"] = 1
    c.close()
print(" ".join("%s=%d" % kv for kv in sorted(codes.items(), key=str)))
PY
check "14 anonymous requests at once: the anonymous rate answers 429 ($(cat "$T/anonburst.out"))" \
	sh -c "grep -q '429=' $T/anonburst.out && ! grep -q 'wrong reason' $T/anonburst.out"
post signed2.out /.well-known/cables/keys "$(signed "$T/a/exchange.key" a.test DDDDDDDDDDDDDDDDDDDDDD)"
check "a signing domain is still answered in full meanwhile" answered signed2.out 10

/usr/bin/python3 - "$XB" "$T/ca.pem" > "$T/burst.out" <<-'PY'
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
codes = {}
for i in range(80):
    c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
    c.request("POST", "/.well-known/cables/keys", b"{}", {"Content-Type": "application/json"})
    s = c.getresponse().status
    codes[s] = codes.get(s, 0) + 1
    c.close()
print(" ".join("%d=%d" % kv for kv in sorted(codes.items())))
PY
check "a burst of 80 requests from one client: the rate limit answers 429 ($(cat "$T/burst.out"))" grep -q '429=' "$T/burst.out"
check "b's keyd survived all of it" kill -0 "$(cat "$T/b/keyd.pid")"

# 7c. Keys only for signing domains: ExchangeAnonymousAddresses 0.
keyd_stop b
echo "ExchangeAnonymousAddresses 0" >> "$T/b/cables.conf"
served=$(grep -c "serving keys on inet:$XB@127.0.0.1" "$T/b/milter.log")
keyd_start b
wait_for 10 sh -c "[ \$(grep -c 'serving keys on inet:$XB@127.0.0.1' $T/b/milter.log) -gt $served ]"
post anon0.out /.well-known/cables/keys "$(req '"bob@b.test"')"
check "ExchangeAnonymousAddresses 0: an anonymous request gets 403 with the reason" \
	grep -q '^403 .*only requests signed by the asking domain' "$T/anon0.out"
post signed0.out /.well-known/cables/keys "$(signed "$T/a/exchange.key" a.test EEEEEEEEEEEEEEEEEEEEEE)"
check "ExchangeAnonymousAddresses 0: a.test's signed request is answered in full" answered signed0.out 10
# ExchangeKey is the keyholders': they signed b's answers and a's requests, keyd asked them.
check "b's keyholder signed b's answers (exchange-sign as @b.test)" \
	grep -q '@b.test exchange-sign fingerprint=0000000000000000: ok' "$T/b/keyholder.log"
check "a's keyholder signed a's requests (exchange-sign as @a.test)" \
	grep -q '@a.test exchange-sign fingerprint=0000000000000000: ok' "$T/a/keyholder.log"
for n in a b r; do
	check "no sanitizer reports from $n's keyd" sh -c "! grep -q Sanitizer $T/$n/keyd.stderr"
done
rig_done
