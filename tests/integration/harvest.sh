#!/bin/sh
# Harvesting certificates from signed inbound mail (issue 15 item 8),
# through a real Postfix: a.test keeps the certificate of a valid signature
# only for the From address it names, pins it like a discovered key, and
# encrypts alice's replies to it; a certificate for someone else, or a
# second certificate for the same address, does not take over unless
# On-KeyChange says so.  What a.test sends is decrypted with openssl.
RIG_PORT=12560
. "$top_srcdir/tests/integration/rig.sh"

APORT=$((RIG_PORT + 5))

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
fpr() { openssl x509 -in "$T/$1.crt" -outform DER | openssl dgst -sha256 -r | cut -c1-16; }

rig_sink
# config [LINE...]: a.test's configuration (partner.test requires encryption), and its milter (re)started.
config() {
	inst_config a a.test "TrustAnchors $T/ca.pem" "Policy partner.test require" "$@"
	inst_milter a
}
config
inst_postfix a a.test "$APORT" "$SINK_PORT" "alice"

printf 'Content-Type: text/plain; charset=utf-8\r\n\r\nHello Alice, the draft is attached in spirit.\r\n' > "$T/inner.txt"
N=0
# inbound SIGNER: a message From bob@partner.test to alice, signed with $T/SIGNER.pem,
# delivered; the milter's log line for it in $T/line.
inbound() {
	N=$((N + 1))
	openssl cms -sign -binary -in "$T/inner.txt" -signer "$T/$1.pem" -out "$T/in$N.smime" 2>/dev/null
	$MAILTOOL smime-message "$T/in$N.smime" "$T/in$N.eml" --header "From: Bob <bob@partner.test>" \
		--header "To: alice@a.test" --header "Subject: signed by $1 ($N)"
	inst_send "$APORT" "$T/in$N.eml" bob@partner.test alice@a.test || return 1
	qid=$(qid_of_reply)
	wait_for 60 delivered_in "$T/a/pf" "$qid" || return 1
	grep "$qid: " "$T/a/milter.log" > "$T/line"
}

# outbound: alice writes to bob (PLAINTEXT-MARKER in the body); $REPLY, and the wire copy in $T/wire.
outbound() {
	N=$((N + 1))
	printf 'From: Alice <alice@a.test>\r\nTo: bob@partner.test\r\nSubject: reply %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nThe figures: 17. PLAINTEXT-MARKER\r\n' \
		"$N" > "$T/out$N.eml"
	inst_send "$APORT" "$T/out$N.eml" alice@a.test bob@partner.test || return $?
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

# encrypted_to DESCRIPTION NAME OTHER: alice's next message to bob is encrypted to NAME's key, not OTHER's.
encrypted_to() {
	if outbound; then
		check "$1: the copy on the wire is S/MIME, no plaintext" \
			sh -c "grep -q '^Content-Type: application/pkcs7-mime; smime-type=enveloped-data' $T/wire &&
			    ! grep -q PLAINTEXT-MARKER $T/wire"
		check "$1: openssl decrypts it with $2's key" decrypts_with "$2"
		check "$1: $3's key does not open it" sh -c "! openssl cms -decrypt -in $T/wire -recip $T/$3.crt \
		    -inkey $T/$3.key -out /dev/null 2>/dev/null"
	else
		not_ok "$1: alice -> bob sent" "$REPLY"
	fi
}

# stored ADDRESS: the key store's rows for ADDRESS.
stored() { inst_keyctl a list | awk -v a="$1" '$1 == a'; }

# 0. Before any harvest, bob has no key: mail to him waits (require).
outbound
check "no key for bob yet: alice -> bob is refused with 4xx" test $? = 4

# 1. carol's valid certificate on a message From bob: stored for nobody.
if inbound carol; then
	check "carol's certificate, From bob: signature valid, not harvested (address mismatch)" \
		grep -q "signature=valid signer=carol@partner.test .*harvest=refused (address mismatch: certificate $(fpr carol)[0-9a-f]* does not name the From address bob@partner.test)" "$T/line"
	check "carol's certificate, From bob: no key stored for bob" test -z "$(stored bob@partner.test)"
	check "carol's certificate, From bob: none stored for carol either" test -z "$(stored carol@partner.test)"
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
	check "bob's certificate: nothing stored for dave, whom it also names" test -z "$(stored dave@partner.test)"
	check "bob's certificate: pinned" sh -c "\"$KEYCTL\" -c $T/a/cables.conf pins |
	    grep -q '^bob@partner.test *smime *$(fpr bob1) *harvested .* 0 *-\$'"
else
	not_ok "signed by bob1: delivered" "$REPLY"
fi
encrypted_to "after harvesting" bob1 carol

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
rig_done
