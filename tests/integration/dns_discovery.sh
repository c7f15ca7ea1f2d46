#!/bin/sh
# Key discovery in DNS (keyd/dns.c, the first part of cables-keyd) against a
# real nsd on loopback serving ldns-signzone'd zones: OPENPGPKEY and SMIMEA
# records validated up to a trust anchor; NSEC-proven absence; an unsigned
# zone is insecure; a changed record and expired signatures are bogus; a
# record too big for UDP comes over TCP; 32 threads share one resolver; a
# dead server, and one that swallows every query, time out in time.
RIG_PORT=12310
. "$top_srcdir/tests/integration/rig.sh"

DNSPORT=$((RIG_PORT + 5))
LOOKUP=$BUILD/tests/keyd/dnslookup
. "$top_srcdir/tests/integration/dnszone.sh"
rig_config
b64() { base64 -w0 "$1"; }

keyctl generate bob@e.test --pgp >/dev/null
keyctl export bob@e.test > "$T/bob.asc"
gpg_home "$T/g"
gpg --homedir "$T/g" --batch -q --import "$T/bob.asc" 2>/dev/null
gpg --homedir "$T/g" --batch --export bob@e.test > "$T/bob.pgp"
gpgconf --homedir "$T/g" --kill all 2>/dev/null
keyctl generate carol@e.test --smime >/dev/null
keyctl export carol@e.test | openssl x509 -outform DER > "$T/carol.der"
head -c 3000 /dev/urandom > "$T/big.bin"

# zone NAME EXPIRY INCEPTION [MUTATE]: a signed zone with the test records; its DS goes to the anchors.
zone() {
	name=$1
	cat > "$Z/$name.zone" <<-ZONE
	\$ORIGIN $name.
	\$TTL 300
	@ IN SOA ns.$name. admin.$name. 1 3600 600 86400 60
	@ IN NS ns.$name.
	ns IN A 127.0.0.1
	$(dns_owner bob)._openpgpkey IN OPENPGPKEY $(b64 "$T/bob.pgp")
	$(dns_owner carol)._smimecert IN SMIMEA 3 0 0 $(xxd -p "$T/carol.der" | tr -d '\n')
	$(dns_owner big)._openpgpkey IN OPENPGPKEY $(b64 "$T/big.bin")
	ZONE
	[ "$2" = unsigned ] && { cp "$Z/$name.zone" "$Z/$name.zone.signed"; return; }
	dns_sign_zone "$name" "$2" "$3"
}
zone e.test 20351231000000 20250101000000
# pub.test: its users' keys as cables-keyctl publishes them.
keyctl generate dan@pub.test --pgp >/dev/null
keyctl generate erin@pub.test --smime >/dev/null
make_cert "$T/old.pem" old@pub.test 20200101000000Z 20210101000000Z
keyctl import "$T/old.pem" --force >/dev/null 2>&1
dns_publish_zone pub.test "$CONF" 60 2>"$T/publish.err"
check "publish --dns: an expired certificate is left out, with the reason" sh -c \
	"! grep -q '^$(dns_owner old)\._smimecert' $Z/pub.test.zone && grep -q 'not published: smime key .* of old@pub.test: expired' $T/publish.err"
check "publish --dns: an OPENPGPKEY line for dan" grep -q "^$(dns_owner dan)\._openpgpkey\.pub\.test\. IN OPENPGPKEY (" "$Z/pub.test.zone"
check "publish --dns: an SMIMEA 3 0 0 line for erin" grep -q "^$(dns_owner erin)\._smimecert\.pub\.test\. IN SMIMEA 3 0 0 (" "$Z/pub.test.zone"
dns_sign_zone pub.test 20351231000000 20250101000000
zone u.test unsigned
zone x.test 20351231000000 20250101000000
zone old.test 20210201000000 20210101000000
# x.test: bob's record changed after signing.
sed -i "s|^\($(dns_owner bob)\._openpgpkey\.x\.test\.[[:space:]][0-9]*[[:space:]]*IN[[:space:]]*OPENPGPKEY[[:space:]]*\).*|\1$(b64 "$T/big.bin")|" "$Z/x.test.zone.signed"

dns_start_nsd "$DNSPORT" e.test u.test x.test old.test pub.test
check "nsd serves the zones on loopback" test -n "$NSD_PID"

# lookup TYPE ADDRESS [TIMEOUT_MS]: the answer in $T/answer.
lookup() { "$LOOKUP" "127.0.0.1@$DNSPORT" "$T/anchors" "$@" > "$T/answer" 2>&1; }
field() { sed -n "s/^$1=//p" "$T/answer" | head -n 1; }

lookup openpgpkey bob@e.test
check "OPENPGPKEY in a signed zone: secure" test "$(field status)" = secure
check "OPENPGPKEY: the record is bob's key, byte for byte" \
	grep -q "^record=0 0 0 len=$(wc -c < "$T/bob.pgp") sha256=$(sha256sum "$T/bob.pgp" | cut -d' ' -f1)$" "$T/answer"
check "OPENPGPKEY: its TTL" test "$(field ttl)" = 300
lookup smimea carol@e.test
check "SMIMEA 3 0 0 in a signed zone: secure" test "$(field status)" = secure
check "SMIMEA: usage 3, selector 0, matching 0, carol's certificate" \
	grep -q "^record=3 0 0 len=$(wc -c < "$T/carol.der") sha256=$(sha256sum "$T/carol.der" | cut -d' ' -f1)$" "$T/answer"
lookup openpgpkey big@e.test
check "a 3000-byte record (truncated over UDP, fetched over TCP): secure" test "$(field status)" = secure
check "the big record arrives whole" grep -q "len=3000 sha256=$(sha256sum "$T/big.bin" | cut -d' ' -f1)$" "$T/answer"
lookup openpgpkey nobody@e.test
check "no such name, NSEC proves it: secure-none" test "$(field status)" = secure-none
check "secure-none carries the SOA minimum as its TTL" test "$(field ttl)" = 60
lookup smimea bob@e.test
check "no such type at an existing-looking name: secure-none" test "$(field status)" = secure-none
lookup openpgpkey bob@u.test
check "unsigned zone: insecure" test "$(field status)" = insecure
check "unsigned zone: the reason says so" grep -q '^reason=unsigned answer' "$T/answer"
lookup openpgpkey bob@x.test
check "record changed after signing: bogus" test "$(field status)" = bogus
check "bogus: the reason is the signature" grep -q '^reason=DNSSEC validation failed: .*signature verification failed' "$T/answer"
check "bogus: no record handed out" test "$(field records)" = 0
DNSLOOKUP_SAVE=$T/dan lookup openpgpkey dan@pub.test
check "published OPENPGPKEY: found, secure" test "$(field status)" = secure
gpg_home "$T/g2"
gpg --homedir "$T/g2" --batch -q --import "$T/dan.0" 2>/dev/null
check "published OPENPGPKEY: gpg reads dan's key from it" sh -c \
	"gpg --homedir $T/g2 --batch --with-colons --list-keys dan@pub.test | grep -qi '^fpr:*$(keyctl list | awk '$1 == "dan@pub.test" {print $3}')'"
gpgconf --homedir "$T/g2" --kill all 2>/dev/null
DNSLOOKUP_SAVE=$T/erin lookup smimea erin@pub.test
check "published SMIMEA: found, secure, usage 3 0 0" sh -c "[ \"\$(sed -n 's/^status=//p' $T/answer)\" = secure ] && grep -q '^record=3 0 0 ' $T/answer"
erin_fpr=$(keyctl show erin@pub.test | sed -n 's/^fingerprint: \([0-9a-f]*\).*/\1/p')
check "published SMIMEA: the data is erin's certificate" sh -c \
	"[ \"\$(openssl x509 -inform DER -in $T/erin.0 -noout -fingerprint -sha256 | tr -d : | tr A-F a-f | sed 's/.*=//')\" = $erin_fpr ]"

lookup openpgpkey bob@old.test
check "expired signatures: bogus" test "$(field status)" = bogus
check "expired signatures: the reason says so" grep -q "^reason=DNSSEC validation failed: signature expired" "$T/answer"
lookup openpgpkey bob@none.test
check "a zone nobody serves: tempfail, not insecure" test "$(field status)" = tempfail

DNSLOOKUP_THREADS=32 lookup smimea carol@e.test
check "32 threads at once through one resolver: all secure, all agree" \
	sh -c "[ \"\$(sed -n 's/^status=//p' $T/answer)\" = secure ] && [ \"\$(sed -n 's/^agree=//p' $T/answer)\" = 32 ]"

dns_stop_nsd
wait_for 10 sh -c "! kill -0 $(cat "$T/nsd.pid") 2>/dev/null"
lookup openpgpkey bob@e.test 1000
check "server down: tempfail" test "$(field status)" = tempfail
check "server down: answered within the timeout (1 s, plus one TCP try)" test "$(field milliseconds)" -lt 3500
# A server that swallows every query: each lookup is cancelled at its timeout, none waits longer.
/usr/bin/python3 -c "
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', $DNSPORT))
open(sys.argv[1], 'w').close()
time.sleep(60)" "$T/blackhole.ready" &
echo $! >> "$T/pids"
wait_for 10 test -e "$T/blackhole.ready"
DNSLOOKUP_THREADS=8 lookup openpgpkey bob@e.test 800
check "a server that never answers: tempfail, all 8 at once" \
	sh -c "[ \"\$(sed -n 's/^status=//p' $T/answer)\" = tempfail ] && [ \"\$(sed -n 's/^agree=//p' $T/answer)\" = 8 ]"
check "a server that never answers: the reason says so" grep -q '^reason=no answer within 800 ms' "$T/answer"
check "a server that never answers: answered at the timeout ($(field milliseconds) ms)" \
	sh -c "[ $(field milliseconds) -ge 790 ] && [ $(field milliseconds) -lt 1500 ]"
check "a malformed address is refused, not looked up" sh -c "! $LOOKUP 127.0.0.1@$DNSPORT $T/anchors openpgpkey no-at-sign"
rig_done
