#!/bin/sh
# Harvesting certificates from signed inbound mail (issue 15 item 8),
# through a real Postfix: a.test keeps the certificate of a valid signature
# only for the From address it names, pins it like a discovered key, and
# encrypts alice's replies to it; a certificate for someone else, or a
# second certificate for the same address, does not take over unless
# On-KeyChange says so.  What a.test sends is decrypted with openssl.
#
# A harvested certificate ranks below discovery: a.test's cables-keyd asks
# partner.test's DNSSEC-signed zone (a real nsd on loopback) first.  bob has
# no record there (NSEC proves it), so his harvested certificate is what
# keyd answers with; erin publishes an SMIMEA record, so the certificate an
# attacker (holding one under a.test's TrustAnchors that names erin) got
# harvested before a.test ever looked erin up is never used: mail to erin is
# encrypted to her DNSSEC key, which takes the pin.
RIG_PORT=12560
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

APORT=$((RIG_PORT + 5))
DNSPORT=$((RIG_PORT + 7))

# A CA of partner.test (a.test's TrustAnchors) and the certificates it issues.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 30 \
	-subj "/CN=Partner Test CA" -addext basicConstraints=critical,CA:TRUE \
	-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# issue NAME ADDRESS...: $T/NAME.pem (certificate and key) naming every ADDRESS, issued by the CA.
issue() {
	name=$1
	shift
	sans=$(printf 'email:%s,' "$@")
	printf 'subjectAltName=%s\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=emailProtection\n' \
		"${sans%,}" > "$T/$name.ext"
	if ! openssl req -new -newkey rsa:2048 -nodes -keyout "$T/$name.key" -subj "/CN=$1" -out "$T/$name.csr" \
	    2>/dev/null ||
	    ! openssl x509 -req -in "$T/$name.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
	    -set_serial "0x$(openssl rand -hex 8)" -days 20 -extfile "$T/$name.ext" -out "$T/$name.crt" 2>/dev/null; then
		echo "Bail out! cannot issue a certificate for $*"
		exit 1
	fi
	cat "$T/$name.crt" "$T/$name.key" > "$T/$name.pem"
}
issue bob1 bob@partner.test dave@partner.test
issue bob2 bob@partner.test
issue bob3 bob@partner.test
issue carol carol@partner.test
issue erin erin@partner.test
issue mallory erin@partner.test
issue gus gus@partner.test
fpr() { openssl x509 -in "$T/$1.crt" -outform DER | openssl dgst -sha256 -r | cut -c1-16; }

# partner.test, signed: erin's certificate as SMIMEA 3 0 0; nothing for bob (NSEC proves it); gus's
# record changed after signing (bogus).
hexcert() { openssl x509 -in "$T/$1.crt" -outform DER | xxd -p | tr -d '\n'; }
cat > "$Z/partner.test.zone" <<-ZONE
\$ORIGIN partner.test.
\$TTL 300
@ IN SOA ns.partner.test. admin.partner.test. 1 3600 600 86400 60
@ IN NS ns.partner.test.
ns IN A 127.0.0.1
$(dns_owner erin)._smimecert IN SMIMEA 3 0 0 $(hexcert erin)
$(dns_owner gus)._smimecert IN SMIMEA 3 0 0 $(hexcert carol)
ZONE
dns_sign_zone partner.test 20351231000000 20250101000000 >/dev/null
sed -i "s|^\($(dns_owner gus)\._smimecert\.partner\.test\.[[:space:]].*SMIMEA[[:space:]]*3 0 0[[:space:]]*\).*|\1$(hexcert gus)|" \
	"$Z/partner.test.zone.signed"
dns_start_nsd "$DNSPORT" partner.test
check "nsd serves partner.test" test -n "$NSD_PID"

rig_sink
# config [LINE...]: a.test's configuration (partner.test requires encryption; its cables-keyd asks
# the nsd above, no key server or WKD), and its milter (re)started.
config() {
	inst_config a a.test "TrustAnchors $T/ca.pem" "Policy partner.test require" "KeydPidFile $T/a/keyd.pid" \
		"Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" "KeyExchange no" "WKD no" "$@"
	sed -i "s|^KeydSocket none\$|KeydSocket $T/a/keyd.sock|" "$T/a/cables.conf"
	inst_milter a
}
config
"$BUILD/cables-keyd" -f -c "$T/a/cables.conf" 2>>"$T/a/keyd.stderr" &
echo $! >> "$T/pids"
if ! wait_for 10 test -S "$T/a/keyd.sock"; then
	echo "Bail out! cables-keyd did not start: $(cat "$T/a/keyd.stderr")"
	exit 1
fi
inst_postfix a a.test "$APORT" "$SINK_PORT" "alice"
# keyd_stat NAME: the counter NAME of a.test's cables-keyd.
keyd_stat() { keyd_ask "$T/a/keyd.sock" request=stats && sed -n "s/^$1=//p" "$T/reply"; }

printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nHello Alice, the draft is attached in spirit.\r\n' > "$T/inner.txt"
N=0
# inbound SIGNER [FROM]: a message From FROM (default bob@partner.test) to alice, signed with
# $T/SIGNER.pem, delivered; the milter's log line for it in $T/line.
inbound() {
	N=$((N + 1))
	from=${2:-bob@partner.test}
	openssl cms -sign -binary -in "$T/inner.txt" -signer "$T/$1.pem" -out "$T/in$N.smime" 2>/dev/null
	$MAILTOOL smime-message "$T/in$N.smime" "$T/in$N.eml" --header "From: <$from>" \
		--header "To: alice@a.test" --header "Subject: signed by $1 ($N)"
	inst_send "$APORT" "$T/in$N.eml" "$from" alice@a.test || return 1
	qid=$(qid_of_reply)
	wait_for 60 delivered_in "$T/a/pf" "$qid" || return 1
	grep "$qid: " "$T/a/milter.log" > "$T/line"
}

# outbound [RCPT]: alice writes to RCPT (default bob@partner.test; PLAINTEXT-MARKER in the body);
# $REPLY, and the wire copy in $T/wire.
outbound() {
	N=$((N + 1))
	to=${1:-bob@partner.test}
	printf 'From: Alice <alice@a.test>\r\nTo: %s\r\nSubject: reply %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nThe figures: 17. PLAINTEXT-MARKER\r\n' \
		"$to" "$N" > "$T/out$N.eml"
	inst_send "$APORT" "$T/out$N.eml" alice@a.test "$to" || return $?
	qid=$(qid_of_reply)
	wait_for 60 delivered_in "$T/a/pf" "$qid" || return 1
	f=$(grep -l " id ${qid}[;]*\$" "$SINK"/* | head -n 1)
	sink_message "$f" > "$T/wire"
}

# decrypts_with NAME: the wire copy opens with $T/NAME.pem, to the plaintext.
decrypts_with() {
	openssl cms -decrypt -in "$T/wire" -recip "$T/$1.crt" -inkey "$T/$1.key" -out "$T/opened" &&
	grep -q PLAINTEXT-MARKER "$T/opened"
}

# encrypted_to DESCRIPTION NAME OTHER [RCPT]: alice's next message to RCPT (default bob) is encrypted to
# NAME's key, not OTHER's.
encrypted_to() {
	if outbound "${4:-}"; then
		check "$1: the copy on the wire is S/MIME, no plaintext" \
			sh -c "grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' $T/wire &&
			    ! grep -q PLAINTEXT-MARKER $T/wire"
		check "$1: openssl decrypts it with $2's key" decrypts_with "$2"
		check "$1: $3's key does not open it" sh -c "! openssl cms -decrypt -in $T/wire -recip $T/$3.crt \
		    -inkey $T/$3.key -out /dev/null 2>/dev/null"
	else
		not_ok "$1: alice -> ${4:-bob} sent" "$REPLY"
	fi
}

# stored ADDRESS: the key store's rows for ADDRESS.
stored() { inst_keyctl a list | awk -v a="$1" '$1 == a'; }
# none_stored ADDRESS: cables-keyctl list answers, and has no row for ADDRESS.
none_stored() { inst_keyctl a list > "$T/list" && ! awk -v a="$1" '$1 == a { f = 1 } END { exit !f }' "$T/list"; }

# 0. Before any harvest, bob has no key: mail to him waits (require).
outbound
check "no key for bob yet: alice -> bob is refused with 4xx" test $? = 4

# 1. carol's valid certificate on a message From bob: stored for nobody.
if inbound carol; then
	check "carol's certificate, From bob: signature valid, not harvested (address mismatch)" \
		grep -q "signature=valid signer=carol@partner.test .*harvest=refused (address mismatch: certificate $(fpr carol)[0-9a-f]* does not name the From address bob@partner.test)" "$T/line"
	check "carol's certificate, From bob: no key stored for bob" none_stored bob@partner.test
	check "carol's certificate, From bob: none stored for carol either" none_stored carol@partner.test
else
	not_ok "signed by carol: delivered" "$REPLY"
fi
outbound
check "still no key for bob: alice -> bob is refused with 4xx" test $? = 4

# 2. bob's certificate (which also names dave): harvested for bob, pinned, and used.
if inbound bob1; then
	check "bob's certificate: harvested for bob, pinned" \
		grep -q "harvest=harvested (certificate $(fpr bob1)[0-9a-f]* for bob@partner.test, pinned (first key seen))" "$T/line"
	check "bob's certificate: one row for bob, source harvested" \
		test "$(stored bob@partner.test | awk '{ print $3 "/" $5 }')" = "$(fpr bob1)/harvested"
	check "bob's certificate: nothing stored for dave, whom it also names" none_stored dave@partner.test
	check "bob's certificate: pinned" sh -c "\"$KEYCTL\" -c $T/a/cables.conf pins |
	    grep -q '^bob@partner.test *smime *$(fpr bob1) *harvested .* 0 *-\$'"
else
	not_ok "signed by bob1: delivered" "$REPLY"
fi
encrypted_to "after harvesting" bob1 carol
check "after harvesting: keyd was asked first, found nothing in DNS, and answered with bob's harvested key" \
	test "$(keyd_stat from_harvest)" -ge 1
check "cables-keyctl lookup bob: his harvested key, not called held locally" sh -c \
	"\"$KEYCTL\" -c $T/a/cables.conf lookup bob@partner.test |
	    grep -q '^bob@partner.test: S/MIME key $(fpr bob1), from harvested (from signed mail; its domain publishes none), '"

# 3. The same certificate again: nothing changes.
if inbound bob1; then
	check "the same certificate again: unchanged" \
		grep -q "harvest=unchanged (certificate $(fpr bob1)[0-9a-f]* is held for bob@partner.test already (harvested))" "$T/line"
else
	not_ok "signed by bob1 again: delivered" "$REPLY"
fi

# 4. A second, different valid certificate for bob, On-KeyChange at its default (accept): it takes over.
if inbound bob2; then
	check "a new certificate, On-KeyChange accept: harvested, the change logged" \
		grep -q "harvest=harvested (certificate $(fpr bob2)[0-9a-f]* for bob@partner.test, pinned: key change from $(fpr bob1)[0-9a-f]* (harvested) accepted (On-KeyChange accept))" "$T/line"
	check "a new certificate, accept: the store holds only it for bob" \
		test "$(stored bob@partner.test | awk '{ print $3 }')" = "$(fpr bob2)"
else
	not_ok "signed by bob2: delivered" "$REPLY"
fi
encrypted_to "after an accepted key change" bob2 bob1

# 5. On-KeyChange tempfail, then reject (for bob's address): a third certificate is held back; bob2 stays in use.
for how in "On-KeyChange tempfail" "Policy bob@partner.test On-KeyChange=reject"; do
	action=${how##*[ =]}
	config "$how"
	if inbound bob3; then
		check "On-KeyChange $action: refused, a key change" \
			grep -q "harvest=refused (key change: certificate $(fpr bob3)[0-9a-f]* offered, $(fpr bob2)[0-9a-f]* (harvested) pinned for bob@partner.test: On-KeyChange $action (cables-keyctl pins clear bob@partner.test accepts the new key))" "$T/line"
		check "On-KeyChange $action: the signature itself is still reported valid" \
			grep -q "signature=valid signer=bob@partner.test" "$T/line"
		check "On-KeyChange $action: the store still holds only the pinned certificate" \
			test "$(stored bob@partner.test | awk '{ print $3 }')" = "$(fpr bob2)"
		check "On-KeyChange $action: cables-keyctl pins shows the key held back" \
			sh -c "\"$KEYCTL\" -c $T/a/cables.conf pins | grep -q '^bob@partner.test *smime *$(fpr bob2) *harvested .* 1 *$(fpr bob3) (harvested, '"
	else
		not_ok "signed by bob3 ($action): delivered" "$REPLY"
	fi
	encrypted_to "after a key change refused by On-KeyChange $action" bob2 bob3
done

# 6. mallory's certificate for erin (under TrustAnchors) arrives in signed mail before a.test ever
# looked erin up: harvested and pinned, but a harvested key ranks below discovery.
if inbound mallory erin@partner.test; then
	check "mallory's certificate for erin: harvested, pinned (first key seen)" \
		grep -q "harvest=harvested (certificate $(fpr mallory)[0-9a-f]* for erin@partner.test, pinned (first key seen))" "$T/line"
else
	not_ok "signed by mallory as erin: delivered" "$REPLY"
fi
encrypted_to "to erin, who publishes SMIMEA in signed DNS" erin mallory erin@partner.test
check "to erin: keyd found her DNSSEC key, which took the pin from the harvested one" sh -c \
	"\"$KEYCTL\" -c $T/a/cables.conf pins | grep -q '^erin@partner.test *smime *$(fpr erin) *dns-dnssec '"
# mallory tries again: the DNSSEC pin is never replaced by a harvested certificate.
if inbound mallory erin@partner.test; then
	check "mallory again: refused, erin's pin is from DNSSEC" \
		grep -q "harvest=refused (key change: certificate $(fpr mallory)[0-9a-f]* offered, but erin@partner.test is pinned to $(fpr erin)[0-9a-f]* (dns-dnssec)" "$T/line"
else
	not_ok "signed by mallory as erin again: delivered" "$REPLY"
fi
encrypted_to "to erin, after mallory's second try" erin mallory erin@partner.test

# 7. gus's certificate is harvested, but his zone's answer is bogus (whoever breaks it may be the one
# who got a certificate harvested): a temporary failure, never the harvested key.
if inbound gus gus@partner.test; then
	check "gus's certificate: harvested, pinned" grep -q "harvest=harvested (certificate $(fpr gus)[0-9a-f]* for gus@partner.test, pinned (first key seen))" "$T/line"
else
	not_ok "signed by gus: delivered" "$REPLY"
fi
bogus_before=$(keyd_stat bogus)
outbound gus@partner.test
check "to gus, his zone's answer bogus: refused with 4xx, not sent to the harvested key" test $? = 4
check "to gus: keyd saw the bogus answer" test "$(keyd_stat bogus)" -gt "$bogus_before"
check "to gus: nothing went out for him" sh -c "! grep -ql '^X-Rcpt-Args: <gus@partner.test>' $SINK/*"
check "no sanitizer reports from a.test's cables-keyd" \
	sh -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' $T/a/keyd.stderr"
dns_stop_nsd
rig_done
