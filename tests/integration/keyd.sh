#!/bin/sh
# cables-keyd over its UNIX socket, with a real nsd on loopback: keys from
# the store; keys a domain publishes in DNSSEC-signed DNS (SMIMEA 3 0 0 and
# OPENPGPKEY), found, checked and stored with their source; NSEC-proven
# absence negative-cached (the second lookup asks no one); unsigned zones
# refused under "DNSSEC require"; nsd down is a temporary failure answered
# in time; malformed requests get an error and the daemon lives on.
# SMIMEA usages: DANE-TA (the domain's own CA), PKIX-EE refused without
# TrustAnchors; an RSA-4096 certificate (truncated over UDP, TCP) through
# to an encrypted message.  Concurrent lookups of one address share one
# query; keys from DNS are handed out for their TTL, then asked for again
# (replaced and withdrawn keys deleted, unconfirmable ones not used).
RIG_PORT=12330
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
KEYD=$BUILD/cables-keyd
SOCK=$T/keyd.sock

# The remote domain r.test publishes its users' keys (made in a store of its own).
R=$T/r
dns_store "$R" r.test
for who in sam@r.test tom@r.test vic@r.test sam@u.test una@u.test; do "$KEYCTL" -c "$R/conf" generate "$who" --smime >/dev/null; done
for who in pia@r.test ula@r.test; do "$KEYCTL" -c "$R/conf" generate "$who" --pgp >/dev/null; done
# Certificates from a CA of r.test's own (cas: DANE-TA; pkx: PKIX-EE, the CA not among anyone's
# TrustAnchors), and a self-signed RSA-4096 one (rsa: DANE-EE, too big for UDP).
printf '[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n[ee]\nbasicConstraints=CA:FALSE\nkeyUsage=keyEncipherment,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=$ENV::SAN\n' > "$T/x509.cnf"
export SAN=email:ca@r.test
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" -subj "/CN=r.test CA" \
	-days 30 -config "$T/x509.cnf" -extensions ca -outform DER -out "$T/ca.der" 2>/dev/null
for who in cas pkx; do
	SAN=email:$who@r.test openssl req -new -newkey rsa:2048 -nodes -keyout "$T/$who.key" -subj "/CN=$who" \
		-config "$T/x509.cnf" -out "$T/$who.csr" 2>/dev/null
	SAN=email:$who@r.test openssl x509 -req -in "$T/$who.csr" -CA "$T/ca.der" -CAform DER -CAkey "$T/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 30 -extfile "$T/x509.cnf" -extensions ee -outform DER -out "$T/$who.der" 2>/dev/null
done
SAN=email:rsa@r.test openssl req -x509 -new -newkey rsa:4096 -nodes -keyout "$T/rsa.key" -subj "/CN=rsa" -days 30 \
	-config "$T/x509.cnf" -extensions ee -outform DER -out "$T/rsa.der" 2>/dev/null
hexof() { xxd -p "$1" | tr -d '\n'; }
r_zone() {	# r.test as its store publishes it, plus the records above; signed
	dns_publish_zone r.test "$R/conf"
	cat >> "$Z/r.test.zone" <<-ZONE
	$(dns_owner cas)._smimecert IN SMIMEA 2 0 0 $(hexof "$T/ca.der")
	$(dns_owner cas)._smimecert IN SMIMEA 1 0 0 $(hexof "$T/cas.der")
	$(dns_owner pkx)._smimecert IN SMIMEA 1 0 0 $(hexof "$T/pkx.der")
	$(dns_owner rsa)._smimecert IN SMIMEA 3 0 0 $(hexof "$T/rsa.der")
	ZONE
	dns_sign_zone r.test 20351231000000 20250101000000
}
r_zone
# u.test: the same kind of record, unsigned.
dns_publish_zone u.test "$R/conf"
cp "$Z/u.test.zone" "$Z/u.test.zone.signed"
dns_start_nsd "$DNSPORT" r.test u.test
check "nsd serves r.test and u.test" test -n "$NSD_PID"

KEYD_CONF="KeydSocket $SOCK|KeydPidFile $T/keyd.pid|Resolver 127.0.0.1@$DNSPORT|DNSSECTrustAnchor $T/anchors|LookupTimeout 1s|Policy r.test require|Policy sam@u.test require|Policy una@u.test encrypt"
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
printf 'LocalDomains a.test\nDNSSECTrustAnchor %s\nExchangeListen inet:1@127.0.0.1\n' "$T/anchors" > "$T/bad.conf"
"$KEYD" -n -c "$T/bad.conf" > "$T/bad.out" 2>&1
check "keyd -n: ExchangeListen without its certificate and key fails, saying what is missing" sh -c \
	"[ $? = 1 ] && grep -q 'ExchangeListen: needs ExchangeCertificate, ExchangeCertificateKey and ExchangeKey' $T/bad.out"
# keyd must not share the milter's uid when cables-keyholder serves it (the keyholder tells clients apart by uid).
printf 'LocalDomains a.test\nUser nobody\nKeyholderSocket %s/kh.sock\n' "$T" > "$T/bad.conf"
"$KEYD" -n -c "$T/bad.conf" > "$T/bad.out" 2>&1
check "keyd -n: KeyholderSocket and User without KeydUser fails, saying why" sh -c \
	"[ $? = 1 ] && grep -q 'User are set but KeydUser is not' $T/bad.out"
printf 'LocalDomains a.test\nUser nobody\nKeydUser nobody\nKeyholderSocket %s/kh.sock\n' "$T" > "$T/bad.conf"
"$KEYD" -n -c "$T/bad.conf" > "$T/bad.out" 2>&1
check "keyd -n: a KeydUser equal to User fails" sh -c "[ $? = 1 ] && grep -q 'KeydUser nobody is the milter' $T/bad.out"
rig_keyd
check "keyd listens on its socket" test -S "$SOCK"

# r.test offered keys through signed DNS: keyd remembers it as encrypting, and
# its results without keys say so (downgrade.sh tests what follows from that).
REMEMBERED='\(encrypting=remembered since=[0-9]* \)\?'
# ask LINE...: one request to keyd, the reply in $T/reply.
ask() { keyd_ask "$SOCK" "$@"; }
ADMIN=$T/keyd-admin.sock	# KeydAdminSocket's default: beside KeydSocket
admin_ask() { keyd_ask "$ADMIN" "$@"; }

ask request=lookup address=bob@b.test
check "a key in the store: found, source and trust" \
	grep -q '^key=bob@b.test format=smime source=generated trust=local fingerprint=[0-9a-f]\{64\} expires=[0-9]*$' "$T/reply"
check "a key in the store: result found" grep -q '^result=bob@b.test found$' "$T/reply"
ask request=lookup address=sam@r.test address=pia@r.test address=nobody@r.test
check "SMIMEA in signed DNS: found, trust dnssec" grep -q '^key=sam@r.test format=smime source=dns-dnssec trust=dnssec ' "$T/reply"
check "OPENPGPKEY in signed DNS: found, trust dnssec" grep -q '^key=pia@r.test format=pgp source=dns-dnssec trust=dnssec ' "$T/reply"
check "no record, NSEC proves it: none, with the reason" grep -q '^result=nobody@r.test none '"$REMEMBERED"'reason=.*proven by NSEC' "$T/reply"
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
ask request=lookup address=cas@r.test address=pkx@r.test address=rsa@r.test
check "SMIMEA 2 0 0 (the domain's CA) with the user's certificate: found, trust dnssec" \
	grep -q "^key=cas@r.test format=smime source=dns-dnssec trust=dnssec fingerprint=$(sha256sum "$T/cas.der" | cut -d' ' -f1) " "$T/reply"
check "SMIMEA 1 0 0 with no TrustAnchors: none, and why" \
	grep -q '^result=pkx@r.test none '"$REMEMBERED"'reason=SMIMEA: secure: usage 1 (PKIX-EE): no TrustAnchors configured' "$T/reply"
check "an RSA-4096 certificate (over TCP): found" \
	grep -q "^key=rsa@r.test format=smime source=dns-dnssec trust=dnssec fingerprint=$(sha256sum "$T/rsa.der" | cut -d' ' -f1) " "$T/reply"
ask request=stats
hits_before=$(sed -n 's/^negative_cache_hits=//p' "$T/reply")
ask request=lookup address=nobody@r.test
check "the second lookup of a proven absence is answered from the cache" grep -q '^result=nobody@r.test none '"$REMEMBERED"'reason=.*(cached)$' "$T/reply"
ask request=stats
check "stats count the cache hit" test "$(sed -n 's/^negative_cache_hits=//p' "$T/reply")" = $((hits_before + 1))
ask request=lookup address=sam@u.test
check "unsigned zone under DNSSEC require: not trusted" grep -q '^result=sam@u.test none reason=.*insecure' "$T/reply"
check "unsigned zone: nothing stored" sh -c "! $KEYCTL -c $CONF list | grep -q '^sam@u.test'"
check "KeydPidFile holds keyd's process ID" test "$(cat "$T/keyd.pid")" = "$KEYD_PID"

# keyd writes the store: cables-keyctl imports, deletes and lists public keys through it.
make_cert "$T/imp.pem" imp@x.test 20250101000000Z 20351231000000Z
openssl x509 -in "$T/imp.pem" -out "$T/imp.crt"
make_cert "$T/old.pem" old@x.test 20200101000000Z 20210101000000Z
openssl x509 -in "$T/old.pem" -outform DER -out "$T/old.der"
"$KEYCTL" -c "$R/conf" generate pgpu@x.test --pgp >/dev/null
"$KEYCTL" -c "$R/conf" export pgpu@x.test > "$T/pgpu.asc"
"$KEYCTL" -c "$R/conf" export pgpu@x.test --private > "$T/pgpu.sec.asc"
gpg --dearmor < "$T/pgpu.sec.asc" > "$T/pgpu.sec"
"$KEYCTL" -c "$CONF" import "$T/imp.crt" > "$T/imp.out" 2>&1
check "keyctl import of a certificate: through keyd" sh -c \
	"grep -q '^imported S/MIME certificate for imp@x.test' $T/imp.out && grep -q 'keyd: stored the smime key [0-9a-f]* of imp@x.test' $MILTER_LOG"
"$KEYCTL" -c "$CONF" import "$T/pgpu.asc" > "$T/imp.out" 2>&1
check "keyctl import of an OpenPGP key: through keyd" grep -q 'keyd: stored the pgp key [0-9a-f]* of pgpu@x.test' "$MILTER_LOG"
"$KEYCTL" -c "$CONF" list > "$T/list.out"
check "keyctl list through keyd: both keys, source imported, no private key" sh -c \
	"grep -q '^imp@x.test  *smime .* imported  *no$' $T/list.out && grep -q '^pgpu@x.test  *pgp .* imported  *no$' $T/list.out"
check "keyctl list through keyd: the keys generated here say so" grep -q '^bob@b.test  *smime .* generated  *yes$' "$T/list.out"
ask request=lookup address=imp@x.test
check "an imported key is looked up at once" grep -q '^key=imp@x.test format=smime source=imported trust=local ' "$T/reply"
"$KEYCTL" -c "$CONF" delete imp@x.test > "$T/del.out" 2>&1
check "keyctl delete through keyd" sh -c "grep -q '^deleted 1 key for imp@x.test' $T/del.out && grep -q 'keyd: deleted 1 key of imp@x.test' $MILTER_LOG"
set -- request=import address=old@x.test format=smime $(base64 -w 76 "$T/old.der" | sed 's/^/data=/')
admin_ask "$@"
check "import of an expired certificate: refused with the reason" grep -q '^error=not usable: .*expired.*(force=yes stores it anyway)' "$T/reply"
admin_ask "$@" force=yes
check "import of an expired certificate with force=yes: stored" grep -q '^stored=old@x.test format=smime fingerprint=[0-9a-f]\{64\} expires=' "$T/reply"
set -- request=import address=other@x.test format=smime $(base64 -w 76 "$T/old.der" | sed 's/^/data=/') force=yes
admin_ask "$@"
check "import of a certificate for an address it does not name: refused" grep -q '^error=the certificate does not name other@x.test' "$T/reply"
set -- request=import address=pgpu@x.test format=pgp $(base64 -w 76 "$T/pgpu.sec" | sed 's/^/data=/')
admin_ask "$@"
check "an OpenPGP secret key sent to keyd: refused" grep -q '^error=data holds a secret key; cables-keyd takes public keys only' "$T/reply"
admin_ask request=import address=pgpu@x.test format=pgp data=AAAA
check "import of bytes that are no key: refused" grep -q '^error=data: ' "$T/reply"
admin_ask request=import address=pgpu@x.test format=smime data=AAAA
check "import of bytes that are no certificate: refused" grep -q '^error=data is not a DER X.509 certificate' "$T/reply"
admin_ask request=list
check "list: one line per key, with validity and whether a private key is held" \
	grep -q '^key=old@x.test format=smime source=imported fingerprint=[0-9a-f]\{64\} not_before=1577836800 expires=1609459200 private=no$' "$T/reply"
# Administration only on KeydAdminSocket, only for root (and AdminGroup): not for the MTA's group.
check "KeydAdminSocket: mode 0600, root's (no AdminGroup)" test "$(stat -c '%a %U' "$ADMIN")" = "600 root"
ask request=import address=imp2@x.test format=smime force=yes data=AAAA
check "import on the lookup socket: refused" grep -q '^error=administration requests are taken on KeydAdminSocket only' "$T/reply"
check "import on the lookup socket: logged with the client's uid" \
	grep -q 'keyd: an administration request (import, delete or list) from uid 0 on KeydSocket: refused' "$MILTER_LOG"
ask request=delete address=old@x.test
check "delete on the lookup socket: refused, nothing deleted" sh -c \
	"grep -q '^error=administration requests' $T/reply && $KEYCTL -c $CONF -o list | grep -q '^old@x.test'"
# A postfix-group client with the socket's file permissions on its side: SO_PEERCRED still says no.
keyd_config "AdminGroup adm"
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
rig_keyd
check "with AdminGroup: the socket is root:adm, 0660" test "$(stat -c '%a %U %G' "$ADMIN")" = "660 root adm"
# (keyd answers a refused client at once and hangs up: read first, then try to ask anyway.)
setpriv --reuid=postfix --regid=postfix --groups=adm /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
print(s.recv(4096).decode())
try:
    s.sendall(b"request=delete\naddress=old@x.test\n\n"); print(s.recv(4096).decode())
except OSError as e:
    print("hung up:", e)' "$ADMIN" > "$T/pf.reply" 2>&1
check "postfix (adm only as a supplementary group of this process): refused" grep -q '^error=not allowed' "$T/pf.reply"
check "postfix refused: logged with its uid" \
	grep -q "keyd: KeydAdminSocket: uid $(id -u postfix) (gid $(id -g postfix)) refused: neither root nor in AdminGroup" "$MILTER_LOG"
check "postfix refused: old@x.test's key is still there" sh -c "$KEYCTL -c $CONF -o list | grep -q '^old@x.test'"
setpriv --reuid=postfix --regid=postfix --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$ADMIN" > "$T/pf2.reply" 2>&1
check "postfix without adm: cannot even connect" grep -q 'PermissionError' "$T/pf2.reply"
setpriv --reuid=nobody --regid=adm --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
s.sendall(b"request=list\n\n"); d = b""
while not d.endswith(b"\n\n"):
    c = s.recv(65536)
    if not c: break
    d += c
print(d.decode())' "$ADMIN" > "$T/adm.reply" 2>&1
check "a client whose group is AdminGroup: served" grep -q '^key=old@x.test format=smime' "$T/adm.reply"
admin_ask request=delete address=old@x.test
check "root: served (delete)" grep -q '^deleted=1$' "$T/reply"
keyd_config
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
rig_keyd

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
rig_send "$T/plain.eml" alice@a.test rsa@r.test
if wire=$(capture); then
	check "RSA-4096 recipient from DNS: openssl cms decrypts the wire copy with rsa's key" sh -c \
		"openssl cms -decrypt -in $wire -inkey $T/rsa.key 2>/dev/null | grep -q PLAINTEXT-MARKER"
else
	not_ok "RSA-4096 recipient from DNS: delivered"
fi
# An unsigned zone under DNSSEC require: its keys are not trusted.
rig_send "$T/plain.eml" alice@a.test sam@u.test
check "unsigned zone, policy require: 4xx, nothing sent" sh -c "[ $? = 4 ] && [ \$(grep -l 'sam@u.test' $SINK/* 2>/dev/null | wc -l) = 0 ]"
check "unsigned zone, policy require: the log says why (keyd's reason)" \
	grep -q 'tempfail: no usable S/MIME certificate for sam@u.test: no certificate (cables-keyd: SMIMEA: insecure: unsigned answer) (policy require)' "$MILTER_LOG"
rig_send "$T/plain.eml" alice@a.test una@u.test
check "unsigned zone, policy encrypt: accepted" test $? = 0
if wire=$(capture); then
	check "unsigned zone, policy encrypt: sent as it is" grep -q PLAINTEXT-MARKER "$wire"
	check "unsigned zone, policy encrypt: logged, with keyd's reason" \
		grep -q 'plaintext: no usable S/MIME certificate for una@u.test: no certificate (cables-keyd: SMIMEA: insecure: .*) (policy encrypt)' "$MILTER_LOG"
else
	not_ok "unsigned zone, policy encrypt: delivered"
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
"$KEYCTL" -c "$CONF" import "$T/imp.crt" > "$T/imp.out" 2>&1
check "keyd down: keyctl imports into the store directly, and says so" sh -c \
	"[ $? = 0 ] && grep -q 'cables-keyd at .*: cables-keyd is not running; writing the key store directly' $T/imp.out &&
	 grep -q '^imported S/MIME certificate for imp@x.test' $T/imp.out"
"$KEYCTL" -o -c "$CONF" delete imp@x.test > "$T/imp.out" 2>&1
check "keyctl -o: directly, without a word about keyd" sh -c \
	"grep -q '^deleted 1 key for imp@x.test' $T/imp.out && ! grep -q keyd $T/imp.out"
held_back "keyd down" vic@r.test 'tempfail: key lookup: cables-keyd at .*(On-KeydError)'
check "keyd down: no plaintext on the wire" test "$(leaks r.test)" = 0
rig_keyd
queue_kick
check "keyd back: the waiting message is delivered" wait_for 60 queue_empty
check "keyd back: vic's copy is encrypted" test "$(grep -l 'vic@r.test' "$SINK"/* | xargs grep -l '^Content-Type: application/pkcs7-mime' | wc -l)" -ge 1
check "nothing leaked to r.test at any point" test "$(leaks r.test)" = 0

# Keys from DNS are handed out for their TTL (clamped to 1 s here), then DNS is asked again.
stat() { ask request=stats; sed -n "s/^$1=//p" "$T/reply"; }
fpr_of() { sed -n "s/^key=$1 format=smime .* fingerprint=\([0-9a-f]*\) .*/\1/p" "$T/reply"; }
reloads=$(grep -c 'configuration reloaded' "$MILTER_LOG")
keyd_config "CacheMaxTTL 1s"
echo "CacheMinTTL 0s" >> "$CONF"
kill -HUP "$KEYD_PID"
wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -gt $reloads ]"
ask request=lookup address=sam@r.test
old_sam=$(fpr_of sam@r.test)
queries=$(stat dns_lookups)
ask request=lookup address=sam@r.test
check "within its TTL a key from DNS is answered from the store" test "$(fpr_of sam@r.test)" = "$old_sam"
check "within its TTL: no DNS query" test "$(stat dns_lookups)" = "$queries"
# r.test replaces sam's certificate and withdraws tom's.
replaced=$(stat replaced_in_dns)
"$KEYCTL" -c "$R/conf" delete sam@r.test >/dev/null
"$KEYCTL" -c "$R/conf" delete tom@r.test >/dev/null
"$KEYCTL" -c "$R/conf" generate sam@r.test --smime >/dev/null
new_sam=$("$KEYCTL" -c "$R/conf" show sam@r.test | sed -n 's/^fingerprint: \([0-9a-f]*\).*/\1/p')
r_zone
old_nsd=$NSD_PID
dns_stop_nsd
wait_for 10 sh -c "! kill -0 $old_nsd 2>/dev/null"
dns_start_nsd "$DNSPORT" r.test u.test
sleep 2.1
ask request=lookup address=sam@r.test address=tom@r.test
check "after the TTL: the replaced certificate is asked for again and the new one found" \
	test "$(fpr_of sam@r.test)" = "$new_sam"
check "after the TTL: the old certificate is not handed out" sh -c "! grep -q 'fingerprint=$old_sam' $T/reply"
check "after the TTL: a withdrawn key is gone (NSEC proves it)" grep -q '^result=tom@r.test none '"$REMEMBERED"'reason=.*NSEC' "$T/reply"
check "the replaced and the withdrawn key are deleted from the store" sh -c \
	"[ \$($KEYCTL -c $CONF list | grep -c -e '^tom@r.test' -e '$(printf %.16s "$old_sam")') = 0 ]"
check "stats count both" test "$(stat replaced_in_dns)" = $((replaced + 2))

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
head = b'request=lookup\naddress='
s.sendall(head + b'x' * (1024 * 1024 - len(head)))  # exactly the limit, no end: keyd reads it all, then refuses
print(s.recv(100).decode())" > "$T/big.reply" 2>&1
check "a request over 1 MB: error reply" grep -q '^error=request larger than 1 MB' "$T/big.reply"
check "keyd survived the malformed requests" kill -0 "$KEYD_PID"

dns_stop_nsd
sleep 2.1
ask request=lookup address=sam@r.test
check "nsd down after the TTL: the stored key from DNS is not used unconfirmed (tempfail)" \
	grep -q '^result=sam@r.test tempfail '"$REMEMBERED"'reason=' "$T/reply"
sent_to_sam=$(grep -l 'sam@r.test' "$SINK"/* 2>/dev/null | wc -l)
rig_send "$T/plain.eml" alice@a.test sam@r.test
check "nsd down after the TTL: the milter does not use the stored key from DNS either (4xx)" test $? = 4
check "nsd down after the TTL: nothing sent to sam" test "$(grep -l 'sam@r.test' "$SINK"/* 2>/dev/null | wc -l)" = "$sent_to_sam"

# Concurrent lookups: of one address, one DNS query; of others, side by side; the store is not held up.
# ask_parallel [DELAY_MS:]ADDRESS...: a connection each, all at once; "ADDRESS MS RESULT" lines in $T/par.
ask_parallel() {
	/usr/bin/python3 - "$SOCK" "$@" > "$T/par" <<-'PY'
	import socket, sys, threading, time
	def one(arg, out, i):
	    delay, _, addr = arg.rpartition(":")
	    time.sleep(int(delay or 0) / 1000)
	    t0 = time.monotonic()
	    s = socket.socket(socket.AF_UNIX)
	    s.settimeout(20)
	    s.connect(sys.argv[1])
	    s.sendall(("request=lookup\naddress=%s\n\n" % addr).encode())
	    data = b""
	    while not data.endswith(b"\n\n"):
	        chunk = s.recv(65536)
	        if not chunk:
	            break
	        data += chunk
	    res = [l for l in data.decode().splitlines() if l.startswith("result=")]
	    out[i] = "%s %d %s" % (addr, (time.monotonic() - t0) * 1000, res[0] if res else "(none)")
	out = [""] * (len(sys.argv) - 2)
	threads = [threading.Thread(target=one, args=(a, out, i)) for i, a in enumerate(sys.argv[2:])]
	for t in threads:
	    t.start()
	for t in threads:
	    t.join()
	print("\n".join(out))
	PY
}
queries=$(stat dns_lookups)
shared=$(stat shared_lookups)
ask_parallel same@r.test same@r.test same@r.test same@r.test same@r.test same@r.test 200:bob@b.test
check "six concurrent lookups of one address: all tempfail" test "$(grep -c '^same@r.test [0-9]* result=same@r.test tempfail' "$T/par")" = 6
check "six concurrent lookups of one address: one DNS lookup" test "$(stat dns_lookups)" = $((queries + 1))
check "six concurrent lookups of one address: five shared it" test "$(stat shared_lookups)" = $((shared + 5))
check "a store lookup meanwhile is answered at once ($(awk '$1 == "bob@b.test" {print $2}' "$T/par") ms)" \
	awk '$1 == "bob@b.test" { ok = $2 < 500 && / found$/ } END { exit !ok }' "$T/par"
ask_parallel d1@r.test d2@r.test d3@r.test d4@r.test
check "four addresses at once: looked up side by side (slowest $(awk '{print $2}' "$T/par" | sort -n | tail -1) ms, LookupTimeout 1 s)" \
	awk '{ n++; if ($2 > max) max = $2 } END { exit !(n == 4 && max < 2500) }' "$T/par"
start=$(date +%s%N)
ask request=lookup address=new@r.test
ms=$(( ($(date +%s%N) - start) / 1000000 ))
check "nsd down: tempfail" grep -q '^result=new@r.test tempfail '"$REMEMBERED"'reason=' "$T/reply"
check "nsd down: answered within LookupTimeout per query ($ms ms)" test "$ms" -lt 6000
kill "$KEYD_PID"
wait_for 10 sh -c "! kill -0 $KEYD_PID 2>/dev/null"
check "SIGTERM stops keyd and removes its socket" test ! -e "$SOCK"
check "no sanitizer reports from keyd" sh -c "! grep -q 'Sanitizer' $T/keyd.stderr"
rig_done
