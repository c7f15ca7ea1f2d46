#!/bin/sh
# OpenPGP epoch keys through the key exchange (issue 17, doc/key-exchange.md
# "Forward secrecy: epoch keys"), two domains through Postfix: b.test's
# keyholder binds an epoch subkey to bob's long-term OpenPGP key (its
# primary key signs it); b's keyd serves it next to the long-term key,
# signed with the rest of the answer; a.test's keyd checks the binding
# against that long-term key and keeps it; alice's mail to bob leaves
# a.test encrypted to the epoch subkey alone (gpg --list-packets names no
# other key) and reaches bob decrypted.  Then b's keyholder runs 15 days
# ahead (faketime): the epoch subkey's secret is deleted, no file under
# b's directory holds its sealed bytes, and the recorded wire copy,
# offered to b again, no longer opens (delivered undecrypted, no
# plaintext), nor with bob's long-term secret key in gpg.  carol (no epoch
# key, ForwardSecrecy prefer) gets her long-term key; zoe (none, require)
# waits (4xx) and nothing leaves.
RIG_PORT=12780
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
	"ExchangeCertificateKey $T/b.tls.key" "ExchangeKey $T/b/exchange.key" "Resolver 127.0.0.1@$DNSPORT" \
	"DNSSECTrustAnchor $T/anchors" "LookupTimeout 2s"
sed -i "s|^KeydSocket none|KeydSocket $T/b/keyd.sock|" "$T/b/cables.conf"
inst_keyctl b exchange-key generate > "$T/b.txt" 2>/dev/null
B_FPR=$(sed -n 's/.*fp=\([0-9a-f]\{64\}\).*/\1/p' "$T/b.txt")
inst_keyctl b generate bob@b.test --pgp >/dev/null
inst_keyctl b generate carol@b.test --pgp >/dev/null
inst_keyctl b generate zoe@b.test --pgp >/dev/null

inst_config a a.test "Peer b.test https://127.0.0.1:$XB ExchangeKey=$B_FPR TLSPin=sha256//$BPIN" \
	"Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout 2s" "Policy b.test require" \
	"Policy zoe@b.test ForwardSecrecy=require"
sed -i "s|^KeydSocket none|KeydSocket $T/a/keyd.sock|" "$T/a/cables.conf"

keyd_start() {	# NAME, with its keyholder
	start_keyholder "$T/$1/cables.conf"
	"$KEYD" -f -c "$T/$1/cables.conf" 2>>"$T/$1/keyd.stderr" &
	echo $! > "$T/$1/keyd.pid"
	echo $! >> "$T/pids"
	wait_for 10 test -S "$T/$1/keyd.sock"
}
keyd_start b
check "b's keyholder's first round of epoch keys is over" wait_for 30 grep -q 'epoch keys looked after' "$T/b/keyholder.log"
check "b's keyholder made bob's OpenPGP epoch key" \
	grep -q 'epoch key [0-9A-Fa-f]\{16\} made for bob@b.test' "$T/b/keyholder.log"
check "b's keyd serves keys" wait_for 10 grep -q "serving keys on inet:$XB@127.0.0.1" "$T/b/milter.log"
# carol's and zoe's epoch keys are taken away: their answers carry none.
$PY -c "import sqlite3,sys; d=sqlite3.connect(sys.argv[1]); d.execute(\"DELETE FROM keys WHERE source='epoch' AND address IN ('carol@b.test', 'zoe@b.test')\"); d.commit()" "$T/b/keys.db"
BOB_EPOCH=$($PY -c "import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute(\"SELECT fingerprint FROM keys WHERE source='epoch' AND format='pgp' AND address='bob@b.test'\").fetchone(); print(r[0] if r else '')" "$T/b/keys.db")
check "b's store: one OpenPGP epoch row for bob" test -n "$BOB_EPOCH"
BOB_EPOCH_ID=$(echo "$BOB_EPOCH" | cut -c25-40)
check "b's keyctl list shows bob's OpenPGP epoch key and when it goes" sh -c \
	"$KEYCTL -c $T/b/cables.conf list | grep -q '^epoch  *bob@b.test  *pgp  *$(echo "$BOB_EPOCH" | cut -c1-16)'"

# What b's endpoint says, asked by hand: the OpenPGP epoch key next to the long-term one, signed with it.
$PY - "$XB" > "$T/payload.json" <<-'PY'
import base64, json, os, ssl, sys, urllib.request
nonce = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
body = json.dumps({"v": 1, "domain": "b.test", "nonce": nonce, "addresses": ["bob@b.test"]}).encode()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
req = urllib.request.Request("https://127.0.0.1:%s/.well-known/cables/keys" % sys.argv[1], data=body,
                             headers={"Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(req, context=ctx, timeout=20))
print(base64.b64decode(answer["payload"]).decode())
PY
# shellcheck disable=SC2016
check "the answer carries bob's OpenPGP epoch key beside his long-term key" $PY -c '
import json, sys
p = json.load(open(sys.argv[1]))
r = {x["address"]: x for x in p["results"]}["bob@b.test"]
assert [k["format"] for k in r["keys"]] == ["pgp"], r
assert len(r["epoch"]) == 1 and r["epoch"][0]["format"] == "pgp", r
' "$T/payload.json"
# gpg itself checks the served epoch key: imported alone, one valid subkey that encrypts and expires.
$PY -c '
import base64, json, sys
r = {x["address"]: x for x in json.load(open(sys.argv[1]))["results"]}["bob@b.test"]
open(sys.argv[2], "wb").write(base64.b64decode(r["epoch"][0]["data"]))
' "$T/payload.json" "$T/served-epoch.pgp"
mkdir -m 700 "$T/g1"
gpg --homedir "$T/g1" --batch --import "$T/served-epoch.pgp" 2>/dev/null
gpg --homedir "$T/g1" --batch --with-colons --fixed-list-mode --with-subkey-fingerprint --list-keys > "$T/g1.list" 2>/dev/null
check "gpg takes the served epoch key: its subkey valid for encryption, expiring" sh -c \
	"grep -qi '^sub:[-uf]:.*:$BOB_EPOCH_ID:[0-9]*:[0-9][0-9]*:.*:e:' $T/g1.list && [ \$(grep -c '^sub:' $T/g1.list) = 1 ]"
gpgconf --homedir "$T/g1" --kill gpg-agent 2>/dev/null
# publish --dns --epoch: the epoch key the keyholder vouches for, as an OPENPGPKEY record, TTL half the overlap.
inst_keyctl b publish --dns --epoch > "$T/epoch.zone" 2> "$T/epoch.zone.err"
# shellcheck disable=SC2016
check "publish --dns --epoch: bob's OpenPGP epoch key as served, TTL 43200 (half of one day's overlap)" $PY -c '
import base64, re, sys
z = open(sys.argv[1]).read()
m = re.search(r"^(\S+)\._openpgpkey\.b\.test\. (\d+) IN OPENPGPKEY \(([^)]*)\)", z, re.M)
assert m and m.group(2) == "43200", z
assert base64.b64decode("".join(m.group(3).split())) == open(sys.argv[2], "rb").read(), "not the served key"
' "$T/epoch.zone" "$T/served-epoch.pgp"

keyd_start a
keyd_ask "$T/a/keyd.sock" request=lookup address=bob@b.test
check "a's keyd: bob's long-term key from b's key server" grep -q '^key=bob@b.test format=pgp source=peer ' "$T/reply"
check "a's keyd: bob's OpenPGP epoch key with it" grep -qi "^key=bob@b.test format=pgp source=peer-epoch .*fingerprint=$BOB_EPOCH" "$T/reply"
check "a's keyd refused no epoch key" sh -c "! grep -q 'epoch key offered by the key server refused' $T/a/milter.log"

rig_sink
inst_postfix a a.test "$APORT" "$BPORT" "alice" "always_bcc = tap@tap.test" \
	"transport_maps = inline:{ tap.test=smtp:[127.0.0.1]:$SINK_PORT }"
inst_postfix b b.test "$BPORT" "$SINK_PORT" "bob carol zoe"
inst_milter a
inst_milter b
printf 'From: Alice <alice@a.test>\r\nTo: bob@b.test\r\nSubject: epoch\r\nMessage-ID: <p1@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nDear Bob, PLAINTEXT-MARKER\r\n' > "$T/p1.eml"
$MAILTOOL entity "$T/p1.eml" > "$T/p1.entity"
inst_send "$APORT" "$T/p1.eml" alice@a.test bob@b.test
check "alice -> bob: accepted at a.test" test "$(printf %s "$REPLY" | cut -c1)" = 2
if wait_for 60 sh -c "grep -l '^Message-ID: <p1@a.test>' $SINK/* >/dev/null 2>&1"; then
	sink_message "$(grep -l '^Message-ID: <p1@a.test>' "$SINK"/* | head -n 1)" > "$T/p1.wire"
	sed -n '/^-----BEGIN PGP MESSAGE-----/,/^-----END PGP MESSAGE-----/p' "$T/p1.wire" | tr -d '\r' > "$T/p1.asc"
	mkdir -p -m 700 "$T/g2"
	gpg --homedir "$T/g2" --batch --list-packets "$T/p1.asc" > "$T/p1.packets" 2>&1
	gpgconf --homedir "$T/g2" --kill gpg-agent 2>/dev/null
	sed -n 's/.*:pubkey enc packet: .*keyid \([0-9A-F]*\).*/\1/p' "$T/p1.packets" > "$T/p1.keyids"
	check "alice -> bob: the wire copy names bob's epoch subkey" grep -qix "$BOB_EPOCH_ID" "$T/p1.keyids"
	check "... and only it (one session-key packet)" test "$(wc -l < "$T/p1.keyids")" = 1
	# Every key ID of bob's long-term key (primary and encryption subkey), as gpg lists his exported key.
	inst_keyctl b export bob@b.test > "$T/bob-lt.asc"
	gpg --homedir "$T/g2" --batch --with-colons --import-options show-only --import "$T/bob-lt.asc" 2>/dev/null |
		awk -F: '$1 == "pub" || $1 == "sub" { print $5 }' > "$T/bob-lt.keyids"
	gpgconf --homedir "$T/g2" --kill gpg-agent 2>/dev/null
	check "... not bob's long-term key (none of its key IDs)" sh -c \
		"[ \$(wc -l < $T/bob-lt.keyids) -ge 2 ] && ! grep -qixf $T/bob-lt.keyids $T/p1.keyids"
	check "alice -> bob: no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $T/p1.wire"
	check "alice -> bob: logged fs=epoch" grep -q "encrypted: .* fs=epoch" "$T/a/milter.log"
else
	not_ok "alice -> bob: the wire copy was captured" "$(tail -n 5 "$T/a/pf/maillog")"
fi
if wait_for 60 sh -c "grep -l '^Message-ID: <p1@a.test>' $T/b/mail/bob/Maildir/new/* >/dev/null 2>&1"; then
	f=$(grep -l '^Message-ID: <p1@a.test>' "$T/b/mail/bob/Maildir/new"/* | head -n 1)
	$MAILTOOL entity "$f" > "$T/p1.got"
	check "bob's mailbox: what alice sent, byte for byte" cmp "$T/p1.entity" "$T/p1.got"
	check "bob's mailbox: decrypted (OpenPGP) with the epoch subkey" sh -c \
		"[ -n '$BOB_EPOCH' ] && grep -qi '^X-Cables: decrypted; format=pgp; key=$(echo "$BOB_EPOCH" | cut -c1-16)' $f"
else
	not_ok "bob's copy arrived" "$(tail -n 5 "$T/b/pf/maillog")"
fi
# b's milter restarted (its key facts computed again, after the first message put bob's epoch
# key into its GnuPG home, where gpg merges it into his long-term key): the wire copy, offered
# again, still opens with the epoch row (the long-term row does not claim its subkey).
if [ -s "$T/p1.wire" ]; then
	inst_milter b
	sed 's/^Message-ID: <p1@a.test>/Message-ID: <p1-restart@a.test>/' "$T/p1.wire" > "$T/p1-restart.eml"
	inst_send "$BPORT" "$T/p1-restart.eml" alice@a.test bob@b.test
	if wait_for 60 delivered_in "$T/b/pf" "$(qid_of_reply)"; then
		f=$(maildir_file b bob)
		check "after b's milter restarts: the wire copy still decrypted with the epoch subkey" sh -c \
			"grep -qi '^X-Cables: decrypted; format=pgp; key=$(echo "$BOB_EPOCH" | cut -c1-16)' $f && grep -q PLAINTEXT-MARKER $f"
		gpg --homedir "$T/b/gnupg" --batch --no-auto-check-trustdb --trust-model always --with-colons --list-keys bob@b.test > "$T/b-home.list" 2>/dev/null
		check "... and b's GnuPG home never took bob's epoch key (rows read as their own bytes)" sh -c \
			"grep -q '^pub:' $T/b-home.list && ! grep -qi ':$BOB_EPOCH_ID:' $T/b-home.list"
	else
		not_ok "after b's milter restarts: the wire copy delivered" "$REPLY $(tail -n 5 "$T/b/pf/maillog")"
	fi
fi

# carol (ForwardSecrecy prefer, the default) has no epoch key: her long-term key, as before.
printf 'From: alice@a.test\r\nTo: carol@b.test\r\nSubject: x\r\nMessage-ID: <p2@a.test>\r\n\r\nDear Carol, PLAINTEXT-MARKER\r\n' > "$T/p2.eml"
inst_send "$APORT" "$T/p2.eml" alice@a.test carol@b.test
if wait_for 60 sh -c "grep -l '^Message-ID: <p2@a.test>' $SINK/* >/dev/null 2>&1"; then
	sink_message "$(grep -l '^Message-ID: <p2@a.test>' "$SINK"/* | head -n 1)" > "$T/p2.wire"
	mkdir -p -m 700 "$T/g2"
	sed -n '/^-----BEGIN PGP MESSAGE-----/,/^-----END PGP MESSAGE-----/p' "$T/p2.wire" | tr -d '\r' > "$T/p2.asc"
	gpg --homedir "$T/g2" --batch --list-packets "$T/p2.asc" 2>&1 | sed -n 's/.*:pubkey enc packet: .*keyid \([0-9A-F]*\).*/\1/p' > "$T/p2.keyids"
	inst_keyctl b export carol@b.test > "$T/carol-lt.asc"
	gpg --homedir "$T/g2" --batch --with-colons --import-options show-only --import "$T/carol-lt.asc" 2>/dev/null |
		awk -F: '$1 == "sub" { print $5 }' > "$T/carol-lt.keyids"
	gpgconf --homedir "$T/g2" --kill gpg-agent 2>/dev/null
	check "alice -> carol (prefer, no epoch key): her long-term encryption subkey" sh -c \
		"[ -s $T/carol-lt.keyids ] && [ \$(wc -l < $T/p2.keyids) = 1 ] && grep -qixf $T/carol-lt.keyids $T/p2.keyids"
	check "... logged fs=long-term" grep -q "encrypted: .* fs=long-term" "$T/a/milter.log"
else
	not_ok "alice -> carol: the wire copy was captured" "$(tail -n 5 "$T/a/pf/maillog")"
fi
# zoe (ForwardSecrecy require) has no epoch key: the message waits, nothing leaves.
before=$(ls "$SINK" | wc -l)
printf 'From: alice@a.test\r\nTo: zoe@b.test\r\nSubject: x\r\nMessage-ID: <p3@a.test>\r\n\r\nDear Zoe, PLAINTEXT-MARKER\r\n' > "$T/p3.eml"
inst_send "$APORT" "$T/p3.eml" alice@a.test zoe@b.test
check "alice -> zoe (ForwardSecrecy require, no OpenPGP epoch key): 4xx" test "$(printf %s "$REPLY" | cut -c1)" = 4
check "... the reason names ForwardSecrecy" grep -q 'zoe@b.test.*ForwardSecrecy require' "$T/a/milter.log"
check "... nothing went out" sh -c "[ \$(ls $SINK | wc -l) = $before ] && ! grep -l 'Message-ID: <p3@a.test>' $SINK/* 2>/dev/null | grep -q ."

if [ -z "$FAKETIME_LIB" ]; then
	diag "faketime (Debian package faketime, tools/install-deps) is missing: deletion not tested"
	rig_done
	exit 0
fi
# Deletion after expiry + grace: the keyholder 15 days on.
$PY - "$T/b/keys.db" "$BOB_EPOCH" > "$T/sealed.hex" <<-'PY'
import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT hex(secret_data) FROM keys WHERE fingerprint = ?", (sys.argv[2],)).fetchone()
print(row[0] if row else "")
PY
holds() {
	$PY - "$@" <<-'PY'
	import sys
	needle = bytes.fromhex(open(sys.argv[1]).read().strip())
	sys.exit(0 if needle and any(needle in open(f, "rb").read() for f in sys.argv[2:]) else 1)
	PY
}
check "before: the sealed epoch secret is in the store's files (the search works)" \
	holds "$T/sealed.hex" "$T/b/keys.db" "$T/b/keys.db-wal"
stop_keyholder "$T/b/cables.conf"
KEYHOLDER_WRAPPER=$(clock_ahead +15d) start_keyholder "$T/b/cables.conf"
if wait_for 30 grep -q "epoch key $(echo "$BOB_EPOCH" | cut -c1-16) of bob@b.test deleted" "$T/b/keyholder.log"; then
	ok "15 days on, the keyholder deleted the OpenPGP epoch key"
else
	not_ok "15 days on, the keyholder deleted the OpenPGP epoch key" "$(tail -n 20 "$T/b/keyholder.log")"
fi
none_holds() {
	$PY - "$@" <<-'PY'
	import os, stat, sys
	needle = bytes.fromhex(open(sys.argv[1]).read().strip())
	assert needle
	for root, dirs, files in os.walk(sys.argv[2]):
	    for name in files:
	        path = os.path.join(root, name)
	        try:
	            st = os.lstat(path)
	            if not stat.S_ISREG(st.st_mode) or st.st_size >= 64 << 20:
	                continue
	            data = open(path, "rb").read()
	        except FileNotFoundError:
	            continue
	        if needle in data:
	            print("found in", path)
	            sys.exit(1)
	PY
}
check "no file under b's directory (store, WAL, GnuPG home, spool) holds the old epoch secret's sealed bytes" \
	none_holds "$T/sealed.hex" "$T/b"
check "keyctl list no longer shows it" sh -c "! $KEYCTL -c $T/b/cables.conf list | grep -q $(echo "$BOB_EPOCH" | cut -c1-16)"
# The recorded wire copy, offered to b again: it no longer opens.
sed 's/^Message-ID: <p1@a.test>/Message-ID: <p1-again@a.test>/' "$T/p1.wire" > "$T/p1-again.eml"
inst_send "$BPORT" "$T/p1-again.eml" alice@a.test bob@b.test
if wait_for 60 delivered_in "$T/b/pf" "$(qid_of_reply)"; then
	f=$(maildir_file b bob)
	check "the recorded message no longer opens: delivered still encrypted" grep -q '^Content-Type: multipart/encrypted' "$f"
	check "... with no plaintext" sh -c "! grep -q PLAINTEXT-MARKER $f"
	check "... and says why" grep -q '^X-Cables: not-decrypted; format=pgp; reason=' "$f"
else
	not_ok "the recorded message: delivered" "$REPLY $(tail -n 5 "$T/b/pf/maillog")"
fi
# Nor with bob's long-term secret key, all b still has for him.
inst_keyctl b export bob@b.test --private > "$T/bob-lt.sec"
mkdir -m 700 "$T/g3"
gpg --homedir "$T/g3" --batch --import "$T/bob-lt.sec" 2>/dev/null
check "bob's long-term secret key does not open the recorded wire copy" sh -c \
	"! gpg --homedir $T/g3 --batch --pinentry-mode loopback --passphrase '' --decrypt $T/p1.asc > $T/p1.dec 2>/dev/null && ! grep -q PLAINTEXT-MARKER $T/p1.dec"
check "... while it holds bob's long-term secret (the check can open what it can)" \
	sh -c "gpg --homedir $T/g3 --batch --list-secret-keys 2>/dev/null | grep -q bob@b.test"
gpgconf --homedir "$T/g3" --kill gpg-agent 2>/dev/null

rig_done
