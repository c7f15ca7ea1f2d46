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
# keyd down: a temporary failure, mail flows when it is back.
RIG_PORT=12370
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
conf a a.test "Policy b.test require" "Policy c.test require" "Policy d.test require" "Policy e.test encrypt"
conf b b.test "ExchangeListen inet:$XB@127.0.0.1" "ExchangeCertificate $T/b.tls.pem" \
	"ExchangeCertificateKey $T/b.tls.key" "ExchangeKey $T/b/exchange.key"
conf r "c.test d.test" "ExchangeListen inet:$XR@127.0.0.1" "ExchangeCertificate $T/r.tls.pem" \
	"ExchangeCertificateKey $T/r.tls.key" "ExchangeKey $T/r/exchange.key"
inst_keyctl b exchange-key generate > "$T/b.txt" 2>"$T/b.txt.err"
check "keyctl exchange-key generate: the TXT record for b.test" \
	grep -q '^_cables-keys\._tcp\.b\.test\. IN TXT "v=cables1; k=ed25519; fp=[0-9a-f]\{64\}"$' "$T/b.txt"
check "keyctl exchange-key: the key file is mode 0600" test "$(stat -c %a "$T/b/exchange.key")" = 600
inst_keyctl r exchange-key generate > "$T/r.txt" 2>/dev/null
B_TXT=$(sed -n 's/^_cables-keys\._tcp\.b\.test\. IN TXT //p' "$T/b.txt")
R_TXT=$(sed -n 's/^_cables-keys\._tcp\.c\.test\. IN TXT //p' "$T/r.txt")

# Users' keys, each only in its own domain's store.
inst_keyctl a generate alice@a.test --smime >/dev/null
inst_keyctl b generate bob@b.test --smime >/dev/null
inst_keyctl b generate dan@b.test --pgp >/dev/null
inst_keyctl b generate eve@b.test --smime >/dev/null
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
zone a.test 1 keys.a.test '"v=cables1; k=ed25519; fp=0000000000000000000000000000000000000000000000000000000000000000"'
zone b.test "$XB" keys.b.test "$B_TXT"
zone c.test "$XR" keys.c.test "$B_TXT"
zone d.test "$XR" keys.d.test "$R_TXT"
for z in a.test b.test c.test; do dns_sign_zone $z 20351231000000 20250101000000 >/dev/null; done
cp "$Z/d.test.zone" "$Z/d.test.zone.signed"
dns_start_nsd "$DNSPORT" a.test b.test c.test d.test
check "nsd serves the zones" test -n "$NSD_PID"

keyd_start() {	# NAME
	"$KEYD" -f -c "$T/$1/cables.conf" 2>>"$T/$1/keyd.stderr" &
	echo $! > "$T/$1/keyd.pid"
	echo $! >> "$T/pids"
	wait_for 10 test -S "$T/$1/keyd.sock"
}
keyd_stop() { kill "$(cat "$T/$1/keyd.pid")" 2>/dev/null; wait_for 10 sh -c "! test -S $T/$1/keyd.sock"; }
for n in a b r; do keyd_start $n; done
check "b's keyd serves keys" grep -q "serving keys on inet:$XB@127.0.0.1" "$T/b/milter.log"

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
rig_done
