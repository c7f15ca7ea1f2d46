#!/bin/sh
# DNSSEC from the root, on a DNS tree shaped like the internet's, served by
# one nsd on loopback: a signed root (keyd's only trust anchor), "test."
# signed with NSEC3, and children of each kind a validator must tell apart:
#
#   n1.test     signed, NSEC; cn's SMIMEA is a CNAME into n3.test, and
#               _smimecert.dn.n1.test a DNAME to n3.test's
#   n3.test     signed, NSEC3 (RFC 9276: no salt, no extra iterations)
#   oo.test     signed, NSEC3 with opt-out; delegates uo.oo.test unsigned
#   uo.oo.test  unsigned, no DS: insecure, proven by oo.test's opt-out
#   plain.test  unsigned, no DS: insecure, proven by test.'s NSEC3
#   strip.test  a DS in test., served without signatures (an attacker's
#               keys in it): bogus
#   dsx.test    signed, but test.'s DS matches none of its keys: bogus
#   exp.test    signed, signatures expired: bogus
#   wild.test   signed, NSEC3, a wildcard *._smimecert
#   it.test     signed, NSEC3 with 200 extra iterations: unbound would call
#               its denials insecure (RFC 9276 allows it), and a replayed
#               one would make a signed domain look unsigned; keyd checks
#               them up to RFC 5155's 2500
#   huge.test   signed, NSEC3 with 3000 iterations: its denials cannot be
#               checked, and are taken as nothing (a temporary failure)
#
# First each name's class (secure / secure-none / insecure / bogus) through
# keyd/dns.c alone; then end to end through Postfix, cables-milter and
# cables-keyd under "DNSSEC require" and "DNSSEC prefer", with recipients
# under the policies require and encrypt: what reaches the wire (encrypted
# to the right key, plaintext, or nothing: 4xx) and what keyd logs.
RIG_PORT=12500
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"
. "$top_srcdir/tests/integration/dnstree.sh"

DNSPORT=$((RIG_PORT + 5))
LOOKUP=$BUILD/tests/keyd/dnslookup
SOCK=$T/keyd.sock

# R: the keys the domains publish; A: keys placed by hand (an attacker's, a
# wildcard's, a CNAME target's).  Private keys in $T/priv for decrypting.
R=$T/r
A=$T/hand
dns_store "$R" n1.test
dns_store "$A" strip.test
mkdir -p "$T/priv"
for who in ann@n1.test kim@n3.test oli@oo.test usr@uo.oo.test pat@plain.test paul@plain.test \
	dan@dsx.test old@exp.test ivy@it.test; do
	"$KEYCTL" -c "$R/conf" generate "$who" --smime >/dev/null
	"$KEYCTL" -c "$R/conf" export "$who" --private > "$T/priv/$who.pem" 2>/dev/null
done
for who in eve@strip.test eva@strip.test wes@wild.test cn@n1.test; do
	"$KEYCTL" -c "$A/conf" generate "$who" --smime >/dev/null
	"$KEYCTL" -c "$A/conf" export "$who" --private > "$T/priv/$who.pem" 2>/dev/null
	"$KEYCTL" -c "$A/conf" export "$who" > "$T/$who.crt"
done

# The children first (their DS go into test.), then test. (its DS into the root), then the root.
tree_zone n1.test "$R/conf"
echo "$(dns_owner cn)._smimecert.n1.test. IN CNAME $(dns_owner cn)._smimecert.n3.test." >> "$Z/n1.test.zone"
echo "host.n1.test. IN CNAME ns.n3.test." >> "$Z/n1.test.zone"
echo "_smimecert.dn.n1.test. IN DNAME _smimecert.n3.test." >> "$Z/n1.test.zone"
tree_sign n1.test nsec
tree_zone n3.test "$R/conf"
tree_smimea "$(dns_owner cn)._smimecert.n3.test." "$T/cn@n1.test.crt" >> "$Z/n3.test.zone"
tree_sign n3.test nsec3
tree_zone uo.oo.test "$R/conf"
tree_unsigned uo.oo.test
tree_zone oo.test "$R/conf"
tree_delegate oo.test uo.oo.test
tree_sign oo.test optout
tree_zone plain.test "$R/conf"
tree_unsigned plain.test
tree_keys strip.test
tree_zone strip.test "$A/conf"
tree_unsigned strip.test
tree_zone dsx.test "$R/conf"
tree_sign dsx.test nsec3
mkdir -p "$Z/stray"
( cd "$Z/stray" && ldns-keygen -a ECDSAP256SHA256 -k dsx.test > ksk && cp "$(cat ksk).ds" ../dsx.test.stray.ds )
tree_zone exp.test "$R/conf"
tree_sign exp.test nsec 20210201000000 20210101000000
tree_zone wild.test
tree_smimea "*._smimecert.wild.test." "$T/wes@wild.test.crt" >> "$Z/wild.test.zone"
tree_sign wild.test nsec3
tree_zone it.test "$R/conf"
tree_sign it.test iter
tree_zone huge.test
tree_sign huge.test huge
tree_zone test
for child in n1 n3 oo strip exp wild it huge; do tree_delegate test "$child.test" "$Z/$child.test.ds"; done
tree_delegate test plain.test
tree_delegate test dsx.test "$Z/dsx.test.stray.ds"
tree_sign test nsec3
tree_zone .
tree_delegate . test "$Z/test.ds"
tree_sign . nsec
cp "$Z/..ds" "$T/root.ds"
dns_start_nsd "$DNSPORT" . test n1.test n3.test oo.test uo.oo.test plain.test strip.test dsx.test exp.test wild.test \
	it.test huge.test
check "nsd serves the tree on loopback" test -n "$NSD_PID"
check "the root's DS is the only anchor" test "$(grep -c . "$T/root.ds")" = 1

# lookup KIND ADDRESS|NAME: the answer in $T/answer.
lookup() { "$LOOKUP" "127.0.0.1@$DNSPORT" "$T/root.ds" "$@" > "$T/answer" 2>&1; }
field() { sed -n "s/^$1=//p" "$T/answer" | head -n 1; }
der_sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
# class KIND NAME STATUS RECORDS WHAT: one lookup, its class and its number of records.
class() {
	lookup "$1" "$2"
	check "$5: $3, $4 record(s)" sh -c "[ '$(field status)' = '$3' ] && [ '$(field records)' = '$4' ]" ||
		diag "$(cat "$T/answer")"
}

class smimea ann@n1.test secure 1 "NSEC zone, a key"
class smimea nobody@n1.test secure-none 0 "NSEC zone, no such name"
check "NSEC zone: the reason names the proof" grep -q '^reason=no such record (proven by NSEC)' "$T/answer"
class smimea kim@n3.test secure 1 "NSEC3 zone, a key"
class smimea nok@n3.test secure-none 0 "NSEC3 zone, no such name"
check "NSEC3 zone: the reason names the proof" grep -q '^reason=no such record (proven by NSEC3)' "$T/answer"
check "NSEC3 zone: the negative TTL (the SOA's) comes with the proof" test "$(field ttl)" = 60
class openpgpkey kim@n3.test secure-none 0 "NSEC3 zone, a name without that type"
class smimea oli@oo.test secure 1 "NSEC3 opt-out zone, a key"
# An opt-out NSEC3 covering the next closer name leaves room for an unsigned delegation: not proven.
class smimea nobody@oo.test insecure 0 "NSEC3 opt-out zone, no such name (opt-out proves no more)"
class smimea ivy@it.test secure 1 "NSEC3 with 200 iterations, a key (signatures still validate)"
class smimea nobody@it.test secure-none 0 "NSEC3 with 200 iterations, no such name (checked: not insecure)"
class smimea nobody@huge.test tempfail 0 "NSEC3 with 3000 iterations, no such name (cannot be checked)"
check "3000 iterations: the reason" grep -q '^reason=an NSEC3 denial with 3000 iterations' "$T/answer"
# An attacker on the path answers ivy's query with it.test's genuine denial of another name.
RPORT=$((RIG_PORT + 6))
$PY "$SRC/tests/integration/dnsreplay.py" "$RPORT" "$DNSPORT" "$(dns_owner ivy)" "$(dns_owner nobody)" \
	2>"$T/replay.log" &
echo $! >> "$T/pids"
wait_for 10 grep -q listening "$T/replay.log" || not_ok "the replaying attacker listens"
"$LOOKUP" "127.0.0.1@$RPORT" "$T/root.ds" smimea ivy@it.test > "$T/answer" 2>&1
check "a replayed NSEC3 denial (200 iterations) for ivy, who has a key: bogus, not insecure" \
	sh -c "[ '$(field status)' = bogus ] && grep -q 'replayed a denial' $T/replay.log" || diag "$(cat "$T/answer")"
class smimea usr@uo.oo.test insecure 1 "unsigned child of an opt-out zone"
class smimea pat@plain.test insecure 1 "unsigned child, no DS proven by NSEC3"
class smimea nobody@plain.test insecure 0 "unsigned child, no such name"
class smimea eve@strip.test bogus 0 "stripped child (DS in the parent, no signatures)"
check "stripped: the reason (the DS asks for keys the zone does not have)" \
	grep -q '^reason=DNSSEC validation failed: No DNSKEY record .*strip.test' "$T/answer"
class smimea dan@dsx.test bogus 0 "a DS that matches no key"
check "a DS that matches no key: the reason" grep -q '^reason=DNSSEC validation failed: no keys have a DS' "$T/answer"
class smimea old@exp.test bogus 0 "expired signatures"
check "expired: the reason says so" grep -q '^reason=DNSSEC validation failed: .*expired' "$T/answer"
class smimea wes@wild.test secure 1 "wildcard SMIMEA"
check "wildcard: the record is the wildcard's certificate" grep -q "sha256=$(der_sha "$T/wes@wild.test.crt")\$" "$T/answer"
class smimea cn@n1.test secure 1 "SMIMEA through a CNAME into another zone"
check "CNAME: the record is the target's certificate" grep -q "sha256=$(der_sha "$T/cn@n1.test.crt")\$" "$T/answer"
class smimea kim@dn.n1.test secure 1 "SMIMEA through a DNAME into another zone"
check "DNAME: the record is kim's of n3.test" grep -q "sha256=$(openssl x509 -in "$T/priv/kim@n3.test.pem" -outform DER | sha256sum | cut -d' ' -f1)\$" "$T/answer"
class a host.n1.test secure 1 "A through a CNAME into another zone"
check "CNAME: only the A record, in text" grep -q '^record=127.0.0.1$' "$T/answer"
class smimea bob@none.test secure-none 0 "a TLD's missing child"
class smimea bob@nowhere secure-none 0 "a missing TLD (the root's NSEC)"

# End to end: Postfix, cables-milter and cables-keyd, keyd anchored at the root only.
POLICIES="Policy ann@n1.test require|Policy kim@n3.test require|Policy nok@n3.test encrypt|Policy nor@n3.test require
Policy oli@oo.test require|Policy usr@uo.oo.test encrypt|Policy pat@plain.test require|Policy paul@plain.test encrypt
Policy eve@strip.test require|Policy eva@strip.test encrypt|Policy dan@dsx.test encrypt|Policy old@exp.test require
Policy wes@wild.test require|Policy cn@n1.test require|Policy nob@oo.test encrypt"
tree_config() {	# DNSSEC require|prefer
	old_ifs=$IFS
	IFS='|
'
	# shellcheck disable=SC2086
	set -- "KeydSocket $SOCK" "KeydPidFile $T/keyd.pid" "Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/root.ds" \
		"LookupTimeout 4s" "DefaultPolicy never" "DNSSEC $1" $POLICIES
	IFS=$old_ifs
	rig_config "$@"
}
tree_config require
rig_postfix
rig_sink
rig_milter
rig_keyd
$MAILTOOL make "$T/plain.eml" plain

on_wire() { grep -l "^X-Rcpt-Args: <$1>" "$SINK"/* 2>/dev/null | wc -l; }
# encrypted_to FILE ADDRESS: S/MIME that ADDRESS's own private key opens, the text inside.
encrypted_to() {
	grep -q '^Content-Type: application.*pkcs7-mime' "$1" &&
		openssl cms -decrypt -in "$1" -recip "$T/priv/$2.pem" -inkey "$T/priv/$2.pem" 2>/dev/null |
		grep -q PLAINTEXT-MARKER
}
# expect WHEN RCPT encrypted|plaintext|4xx: one message from alice to RCPT, and what reaches the wire.
expect() {
	before=$(on_wire "$2")
	rig_send "$T/plain.eml" alice@a.test "$2"
	rc=$?
	case $3 in
	4xx)
		check "$1: $2: 4xx, nothing on the wire" sh -c "[ $rc = 4 ] && [ $(on_wire "$2") = $before ]" ||
			diag "rc=$rc $REPLY" ;;
	*)
		if [ "$rc" = 0 ] && wire=$(capture); then
			if [ "$3" = encrypted ]; then
				check "$1: $2: encrypted to $2's own key" encrypted_to "$wire" "$2"
			else
				check "$1: $2: sent in plaintext" sh -c "grep -q PLAINTEXT-MARKER $wire &&
					! grep -q '^Content-Type: application.*pkcs7-mime' $wire"
			fi
		else
			not_ok "$1: $2: delivered (rc=$rc: $REPLY)"
		fi ;;
	esac
}

W="DNSSEC require"
expect "$W" ann@n1.test encrypted
check "the sink's envelope lines name each recipient (what the 4xx checks count)" test "$(on_wire ann@n1.test)" = 1
expect "$W" kim@n3.test encrypted
expect "$W" nok@n3.test plaintext
check "$W: a keyless user of an NSEC3 zone under encrypt: logged with the NSEC3 proof" \
	grep -q 'plaintext: .*nok@n3.test.*proven by NSEC3' "$MILTER_LOG"
expect "$W" nor@n3.test 4xx
expect "$W" oli@oo.test encrypted
expect "$W" nob@oo.test plaintext
expect "$W" wes@wild.test encrypted
expect "$W" cn@n1.test encrypted
expect "$W" eve@strip.test 4xx
check "$W: stripped zone: keyd logs the bogus answer" \
	grep -q 'keyd: eve@strip.test SMIMEA: bogus DNSSEC answer, not used: DNSSEC validation failed' "$MILTER_LOG"
check "$W: stripped zone: the milter says keyd could not answer" \
	grep -q 'tempfail: key lookup: .*eve@strip.test tempfail reason=.*bogus.*(On-KeydError)' "$MILTER_LOG"
expect "$W" eva@strip.test 4xx
expect "$W" dan@dsx.test 4xx
expect "$W" old@exp.test 4xx
check "$W: expired signatures: keyd logs why" \
	grep -q 'keyd: old@exp.test SMIMEA: bogus DNSSEC answer, not used: DNSSEC validation failed: .*expired' "$MILTER_LOG"
expect "$W" pat@plain.test 4xx
expect "$W" paul@plain.test plaintext
check "$W: insecure zone under encrypt: logged as insecure" \
	grep -q 'plaintext: .*paul@plain.test.*insecure' "$MILTER_LOG"
expect "$W" usr@uo.oo.test plaintext
check "$W: no attacker's key stored" sh -c "! $KEYCTL -c $CONF list | grep -q '@strip.test'"
check "$W: nothing stored from insecure zones" sh -c "! $KEYCTL -c $CONF list | grep -q -e '@plain.test' -e '@uo.oo.test'"

W="DNSSEC prefer"
reloads=$(grep -c 'configuration reloaded' "$MILTER_LOG")
tree_config prefer
kill -HUP "$KEYD_PID"
check "keyd reloads with DNSSEC prefer" \
	wait_for 10 sh -c "[ \$(grep -c 'configuration reloaded' $MILTER_LOG) -gt $reloads ]"
expect "$W" pat@plain.test encrypted
expect "$W" paul@plain.test encrypted
expect "$W" usr@uo.oo.test encrypted
"$KEYCTL" -c "$CONF" lookup pat@plain.test kim@n3.test > "$T/lookup.out" 2>&1
check "$W: the insecure zone's key is stored as such" grep -q '^pat@plain.test: S/MIME key .*from dns-insecure' "$T/lookup.out" ||
	diag "$(cat "$T/lookup.out")"
check "$W: the NSEC3 zone's key is stored as validated" grep -q '^kim@n3.test: S/MIME key .*from dns-dnssec' "$T/lookup.out"
expect "$W" eve@strip.test 4xx
expect "$W" eva@strip.test 4xx
check "$W: stripped zone: the attacker's key is not stored" sh -c "! $KEYCTL -c $CONF list | grep -q '@strip.test'"
expect "$W" dan@dsx.test 4xx
expect "$W" nok@n3.test plaintext
expect "$W" kim@n3.test encrypted
check "no plaintext ever reached strip.test, dsx.test or exp.test" \
	test "$(( $(leaks strip.test) + $(leaks dsx.test) + $(leaks exp.test) ))" = 0

rig_done
