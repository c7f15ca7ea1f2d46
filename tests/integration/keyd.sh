#!/bin/sh
# cables-keyd over its UNIX socket, with a real nsd on loopback: keys from
# the store; keys a domain publishes in DNSSEC-signed DNS (SMIMEA 3 0 0 and
# OPENPGPKEY), found, checked and stored with their source; NSEC-proven
# absence negative-cached (the second lookup asks no one); unsigned zones
# refused under "DNSSEC require"; nsd down is a temporary failure answered
# in time; malformed requests get an error and the daemon lives on.
RIG_PORT=12330
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
KEYD=$BUILD/cables-keyd
SOCK=$T/keyd.sock

# The remote domain r.test publishes its users' keys (made in a store of its own).
R=$T/r
dns_store "$R" r.test
for who in sam@r.test tom@r.test vic@r.test sam@u.test; do "$KEYCTL" -c "$R/conf" generate "$who" --smime >/dev/null; done
for who in pia@r.test ula@r.test; do "$KEYCTL" -c "$R/conf" generate "$who" --pgp >/dev/null; done
dns_publish_zone r.test "$R/conf"
dns_sign_zone r.test 20351231000000 20250101000000
# u.test: the same kind of record, unsigned.
dns_publish_zone u.test "$R/conf"
cp "$Z/u.test.zone" "$Z/u.test.zone.signed"
dns_start_nsd "$DNSPORT" r.test u.test
check "nsd serves r.test and u.test" test -n "$NSD_PID"

KEYD_CONF="KeydSocket $SOCK|KeydPidFile $T/keyd.pid|Resolver 127.0.0.1@$DNSPORT|DNSSECTrustAnchor $T/anchors|LookupTimeout 1s|Policy r.test require"
keyd_config() {	# [LINE]: the keyd configuration, plus LINE
	extra=${1:-}
	old_ifs=$IFS
	IFS='|'
	# shellcheck disable=SC2086
	set -- $KEYD_CONF
	IFS=$old_ifs
	if [ -n "$extra" ]; then rig_config "$@" "$extra"; else rig_config "$@"; fi
}
keyd_config
keyctl generate bob@b.test --smime >/dev/null
check "keyd -n: good configuration" sh -c "$KEYD -n -c $CONF | grep -q 'configuration OK'"
printf 'LocalDomains a.test\nResolver 127.0.0.1@99999\n' > "$T/bad.conf"
"$KEYD" -n -c "$T/bad.conf" > "$T/bad.out" 2>&1
check "keyd -n: a bad Resolver fails" test $? = 1
check "keyd -n: it names the file, line and key" grep -q "bad.conf:2: Resolver: '127.0.0.1@99999'" "$T/bad.out"
rig_keyd
check "keyd listens on its socket" test -S "$SOCK"

# ask LINE...: send one request (the lines, then an empty line), the reply in $T/reply.
ask() {
	/usr/bin/python3 - "$SOCK" "$@" > "$T/reply" <<-'PY'
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(10)
	s.connect(sys.argv[1])
	s.sendall(("\n".join(sys.argv[2:]) + "\n\n").encode())
	data = b""
	while not data.endswith(b"\n\n"):
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	sys.stdout.write(data.decode())
	PY
}

ask request=lookup address=bob@b.test
check "a key in the store: found, source and trust" \
	grep -q '^key=bob@b.test format=smime source=generated trust=local fingerprint=[0-9a-f]\{64\} expires=[0-9]*$' "$T/reply"
check "a key in the store: result found" grep -q '^result=bob@b.test found$' "$T/reply"
ask request=lookup address=sam@r.test address=pia@r.test address=nobody@r.test
check "SMIMEA in signed DNS: found, trust dnssec" grep -q '^key=sam@r.test format=smime source=dns-dnssec trust=dnssec ' "$T/reply"
check "OPENPGPKEY in signed DNS: found, trust dnssec" grep -q '^key=pia@r.test format=pgp source=dns-dnssec trust=dnssec ' "$T/reply"
check "no record, NSEC proves it: none, with the reason" grep -q '^result=nobody@r.test none reason=.*proven by NSEC' "$T/reply"
check "results come in the order asked" test "$(sed -n 's/^result=\([^ ]*\).*/\1/p' "$T/reply" | tr '\n' ' ')" = "sam@r.test pia@r.test nobody@r.test "
check "keys found in DNS are in the store now, with their source" sh -c \
	"$KEYCTL -c $CONF list | grep -q '^sam@r.test  *smime .* dns-dnssec'"
"$KEYCTL" -c "$CONF" lookup sam@r.test bob@b.test > "$T/lookup.out" 2>&1
check "keyctl lookup through keyd: exit 0" test $? = 0
check "keyctl lookup: a DNS key, where from and how far trusted" \
	grep -q '^sam@r.test: S/MIME key [0-9a-f]\{16\}, from dns-dnssec (DNSSEC validated), expires ' "$T/lookup.out"
check "keyctl lookup: a key held locally" grep -q '^bob@b.test: S/MIME key [0-9a-f]\{16\}, from generated (held locally)' "$T/lookup.out"
"$KEYCTL" -c "$CONF" lookup nobody@r.test > "$T/lookup2.out" 2>&1
check "keyctl lookup of an address without keys: exit 1 with keyd's reason" sh -c \
	"[ $? = 1 ] && grep -q '^nobody@r.test: none reason=.*NSEC' $T/lookup2.out"
ask request=stats
hits_before=$(sed -n 's/^negative_cache_hits=//p' "$T/reply")
ask request=lookup address=nobody@r.test
check "the second lookup of a proven absence is answered from the cache" grep -q '^result=nobody@r.test none reason=.*(cached)$' "$T/reply"
ask request=stats
check "stats count the cache hit" test "$(sed -n 's/^negative_cache_hits=//p' "$T/reply")" = $((hits_before + 1))
ask request=lookup address=sam@u.test
check "unsigned zone under DNSSEC require: not trusted" grep -q '^result=sam@u.test none reason=.*insecure' "$T/reply"
check "unsigned zone: nothing stored" sh -c "! $KEYCTL -c $CONF list | grep -q '^sam@u.test'"
check "KeydPidFile holds keyd's process ID" test "$(cat "$T/keyd.pid")" = "$KEYD_PID"
# SIGHUP: DNSSEC prefer takes effect without a restart; a broken file leaves the old configuration.
printf 'Ciper x\n' >> "$CONF"
kill -HUP "$KEYD_PID"
wait_for 10 grep -q 'configuration not reloaded' "$MILTER_LOG"
check "SIGHUP with a broken file: the old configuration stays, with the reason" \
	grep -q "configuration not reloaded, the old one stays in force: .*unknown key 'Ciper'" "$MILTER_LOG"
keyd_config "DNSSEC prefer"
kill -HUP "$KEYD_PID"
wait_for 10 grep -q 'configuration reloaded' "$MILTER_LOG"
ask request=lookup address=sam@u.test
check "after SIGHUP, DNSSEC prefer: the unsigned zone's key is used, marked insecure" \
	grep -q '^key=sam@u.test format=smime source=dns-insecure trust=insecure ' "$T/reply"
keyd_config
kill -HUP "$KEYD_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -ge 2 ]"

# The milter asks keyd: recipients whose keys are only in DNS get encrypted mail through the real Postfix.
rig_postfix
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain
rig_send "$T/plain.eml" alice@a.test tom@r.test
check "DNS-only S/MIME recipient under require: accepted" test $? = 0
if wire=$(capture); then
	check "DNS-only S/MIME recipient: the wire copy is S/MIME" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
	check "DNS-only S/MIME recipient: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"
else
	not_ok "DNS-only S/MIME recipient: delivered"
fi
rig_send "$T/plain.eml" alice@a.test ula@r.test
check "DNS-only OpenPGP recipient under require: accepted" test $? = 0
if wire=$(capture); then
	check "DNS-only OpenPGP recipient: the wire copy is PGP/MIME" $MAILTOOL pgp-payload "$wire"
else
	not_ok "DNS-only OpenPGP recipient: delivered"
fi
# keyd killed: On-KeydError (tempfail) keeps the mail; keyd back: it flows.
kill "$KEYD_PID"
wait_for 10 sh -c "! kill -0 $KEYD_PID 2>/dev/null"
held_back "keyd down" vic@r.test 'tempfail: key lookup: cables-keyd at .*(On-KeydError)'
check "keyd down: no plaintext on the wire" test "$(leaks r.test)" = 0
rig_keyd
queue_kick
check "keyd back: the waiting message is delivered" wait_for 60 queue_empty
check "keyd back: vic's copy is encrypted" test "$(grep -l 'vic@r.test' "$SINK"/* | xargs grep -l '^Content-Type: application/pkcs7-mime' | wc -l)" -ge 1
check "nothing leaked to r.test at any point" test "$(leaks r.test)" = 0

# Malformed requests: an error, and the daemon lives on.
ask request=frobnicate
check "unknown request: error reply" grep -q "^error=line 1: unknown request 'frobnicate'" "$T/reply"
ask request=lookup address=not-an-address
check "bad address: error reply" grep -q "^error=line 2: 'not-an-address' is not an email address" "$T/reply"
ask "request=lookup" "garbage line"
check "not name=value: error reply" grep -q '^error=line 2: not name=value' "$T/reply"
/usr/bin/python3 -c "
import socket
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK')
s.sendall(b'request=lookup\n' + b'address=' + b'x' * 70000 + b'\n\n')
print(s.recv(100).decode())" > "$T/big.reply" 2>&1
check "a request over 64 KB: error reply" grep -q '^error=request larger than 64 KB' "$T/big.reply"
check "keyd survived the malformed requests" kill -0 "$KEYD_PID"

dns_stop_nsd
start=$(date +%s%N)
ask request=lookup address=new@r.test
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "nsd down: tempfail" grep -q '^result=new@r.test tempfail reason=' "$T/reply"
check "nsd down: answered within LookupTimeout per query ($ms ms)" test "$ms" -lt 6000
kill "$KEYD_PID"
wait_for 10 sh -c "! kill -0 $KEYD_PID 2>/dev/null"
check "SIGTERM stops keyd and removes its socket" test ! -e "$SOCK"
check "no sanitizer reports from keyd" sh -c "! grep -q 'Sanitizer' $T/keyd.stderr"
rig_done
