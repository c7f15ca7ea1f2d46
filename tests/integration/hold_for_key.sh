#!/bin/sh
# On-KeyNotFound hold (doc/hold.md) through a real Postfix, cables-keyd and
# nsd serving a DNSSEC-signed zone: a message to a keyless require
# recipient is accepted (250) and held (its MTA copy quarantined, its
# recipients replaced by HoldAddress), the sender is told; an admin's
# postsuper -H sends nothing to the remote recipient, and HoldAddress gets
# a stub without the message's text; the key appears in DNS and the
# message leaves encrypted within the backoff, the sender is
# told again; nothing reached the wire before.  "held release" while the
# key is missing keeps it held, "held return" bounces it with a DSN;
# HoldTime passing (set shorter, keyd restarted) returns a message; the
# milter and keyd restarted while a message is held lose nothing and send
# no plaintext.
RIG_PORT=12860
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
MAIL=$T/mail
R=$T/r

# b.test publishes its users' keys from a store of its own; bob has none yet.
dns_store "$R" b.test
"$KEYCTL" -c "$R/conf" generate sam@b.test --smime >/dev/null
b_zone() { dns_publish_zone b.test "$R/conf" 1 && dns_sign_zone b.test 20351231000000 20250101000000 >/dev/null; }
b_zone
dns_start_nsd "$DNSPORT" b.test
check "nsd serves b.test" test -n "$NSD_PID"

hold_config() {
	rig_config "KeydSocket $T/keyd.sock" "Resolver 127.0.0.1@$DNSPORT" "DNSSECTrustAnchor $T/anchors" \
		"LookupTimeout 2s" "CacheMinTTL 1s" "Policy b.test require" "On-KeyNotFound hold" \
		"HoldAddress postmaster@a.test" "$@"
}
hold_config "HoldTime 1h"
postfix_instance_maildir "$PF" "$SMTP_PORT" "$REINJECT_PORT" "$SINK_PORT" "unix:$T/milter.sock" a.test "$MAIL" \
	"alice postmaster" || { echo "Bail out! postfix does not start"; exit 1; }
rig_sink
rig_store_key
rig_milter
rig_keyd
$MAILTOOL make "$T/plain.eml" plain

inbox() { find "$MAIL/$1/Maildir/new" -type f 2>/dev/null | sort; }
# notices WHO SUBJECT: how many mails in WHO's inbox have SUBJECT; has_notices WHO SUBJECT N: exactly N.
notices() { n=0; for f in $(inbox "$1"); do grep -q "^Subject: $2" "$f" && n=$((n + 1)); done; echo "$n"; }
has_notices() { [ "$(notices "$1" "$2")" = "$3" ]; }
notice_file() { grep -l "^Subject: $2" $(inbox "$1") /dev/null | head -n 1; }
held_count() { [ "$(find "$PF/queue/hold" -type f 2>/dev/null | wc -l)" = "$1" ]; }
# is_held ID / held_none: what cables-keyctl held list says.
is_held() { keyctl held list | grep -q "^$1 "; }
held_none() { keyctl held list | grep -qx '0 held messages'; }
waits() { keyctl held list | grep -q "^  $1: "; }

# 1. SMTP submission to a keyless require recipient: 250, held.
rig_send "$T/plain.eml" alice@a.test bob@b.test
check "keyless require recipient, SMTP: 250 to the client" test $? = 0
qid=$(qid_of_reply)
check "the milter logs the hold with the reason" wait_for 10 grep -q "$qid: held: [0-9a-f]\{16\} for keys: no usable .* for bob@b.test" "$MILTER_LOG"
id1=$(sed -n "s/.*$qid: held: \([0-9a-f]\{16\}\) for keys.*/\1/p" "$MILTER_LOG" | head -n 1)
check "Postfix keeps the copy in its hold queue" wait_for 20 held_count 1
postqueue -c "$PF" -j > "$T/queue.json"
check "the held copy's only pending recipient is HoldAddress" sh -c \
	"grep -q '\"address\": *\"postmaster@a.test\"' $T/queue.json && ! grep -q '\"address\": *\"bob@b.test\"' $T/queue.json"
check "held list names the message and who waits" sh -c "$KEYCTL -c $CONF held list | grep -q '^$id1 queue=$qid from=<alice@a.test>'"
check "held list: bob waits" waits bob@b.test
check "the sender is told it waits" wait_for 30 has_notices alice 'Your message waits for an encryption key' 1
f=$(notice_file alice 'Your message waits')
check "the notice names the recipient and its queue ID" sh -c "grep -q 'bob@b.test' $f && grep -q '$qid' $f"
check "the notice says it never goes unencrypted" grep -q 'never be sent unencrypted' "$f"
check "the notice is from the null sender, auto-generated" sh -c \
	"grep -q '^Return-Path: <>' $f && grep -q '^Auto-Submitted: auto-generated' $f"

# 2. An admin releases Postfix's held copy without the milter: it goes to HoldAddress, never to bob.
postsuper -c "$PF" -H ALL >/dev/null 2>&1
check "postsuper -H: the copy goes to HoldAddress" wait_for 30 sh -c "ls $MAIL/postmaster/Maildir/new/* >/dev/null 2>&1"
check "postsuper -H: nothing reached the wire" test "$(sink_count)" = 0
# HoldAddress is often aliased off-site: what it gets is a stub naming the record, none of the message.
pm=$(ls "$MAIL"/postmaster/Maildir/new/* 2>/dev/null | head -n 1)
check "postsuper -H: HoldAddress's copy has none of the message's text" sh -c \
	"! grep -q -e PLAINTEXT-MARKER -e 'meeting is at noon' -e '^Subject: test plain' '$pm'"
check "postsuper -H: HoldAddress's copy names the record" grep -q "cables-keyctl held show $id1" "$pm"
check "postsuper -H: Cables still holds the message" is_held "$id1"

# The stored message is sealed for the milter: keyd reads the same store, and finds none of it there.
check "the key store holds none of the message's text (sealed)" sh -c \
	"test -s $T/keys.db && ! cat $T/keys.db* | grep -a -q -e PLAINTEXT-MARKER -e 'meeting is at noon'"
check "... and its row is marked sealed" sh -c "$KEYCTL -c $CONF held show $id1 | grep -q '^message: sealed for cables-milter'"
check "the milter got the held message's key from the keyholder" \
	grep -q "uid=$(id -u) @held held-key fingerprint=0000000000000000: ok" "$T/keyholder.log"

# 3. Restarts while held: nothing lost, nothing sent.
rig_milter_restart
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
rig_keyd
# The restarted keyd looks at once (through its lookup socket) and finds no key: it stays held.
keyctl held release "$id1" > "$T/restart.out" 2>&1
check "milter and keyd restarted: a look finds bob still waiting" grep -q "^$id1: waiting: still waiting: bob@b.test" "$T/restart.out"
check "milter and keyd restarted: the message is still held" is_held "$id1"
check "milter and keyd restarted: nothing on the wire" test "$(sink_count)" = 0
check "keyd restarted: no second held notice" test "$(notices alice 'Your message waits for an encryption key')" = 1

# 4. bob's key appears in DNS: the message leaves encrypted within the backoff.
"$KEYCTL" -c "$R/conf" generate bob@b.test --smime >/dev/null
b_zone
kill -HUP "$NSD_PID"
published=$(date +%s)
check "key in DNS: the held message is delivered" wait_for 150 sink_has 1
took=$(( $(date +%s) - published ))
diag "released $took s after the key was published"
wire=$(sink_files | head -n 1)
check "it went to bob" grep -q '^X-Rcpt-Args: <bob@b.test>' "$wire"
check "it left encrypted" grep -q '^Content-Type: application/pkcs7-mime' "$wire"
check "no plaintext on the wire" sh -c "! grep -q PLAINTEXT-MARKER $wire"
check "no release field on the wire" sh -c "! grep -qi '^X-Cables-Release' $wire"
check "keyd hands it to the milter" grep -q "cables-keyd.*held $id1: to-release: every key found" "$MILTER_LOG" "$T/keyd.stderr"
check "the milter logs the release" grep -q "held $id1: released: resubmitted" "$MILTER_LOG"
check "the sender is told it was sent" wait_for 30 has_notices alice 'Your message has been sent, encrypted' 1
check "the release is not held again: nothing held" held_none
check "exactly one copy on the wire" test "$(sink_count)" = 1
keyctl stats > "$T/stats.out" 2>&1
check "keyctl stats counts the release" grep -q 'cables_keyd_held_total{outcome="released"} 1' "$T/stats.out"

# 5. The admin's release while the key is missing: still held; held return bounces it.
rig_send "$T/plain.eml" alice@a.test carol@b.test
check "carol (no key): 250" test $? = 0
wait_for 10 waits carol@b.test
id2=$(keyctl held list | awk '$2 ~ /^queue=/ { id = $1 } END { print id }')
keyctl held release "$id2" > "$T/release.out" 2>&1
check "held release without a key: exit 1" test $? = 1
check "held release without a key: says it still waits" grep -q "^$id2: waiting: still waiting: carol@b.test" "$T/release.out"
check "held release without a key: still held" is_held "$id2"
check "held release without a key: nothing on the wire" test "$(sink_count)" = 1
keyctl held return "$id2" > "$T/return.out" 2>&1
check "held return: exit 0" test $? = 0
check "held return: the sender gets a DSN" wait_for 30 has_notices alice 'Undelivered Mail Returned to Sender' 1
dsn=$(notice_file alice 'Undelivered Mail Returned')
check "held return: the DSN is a delivery-status report naming carol and why" sh -c \
	"grep -q 'report-type=delivery-status' $dsn && grep -q '^Final-Recipient: rfc822; carol@b.test' $dsn && grep -q '^Diagnostic-Code: X-Cables; .*' $dsn"
check "held return: no longer held" sh -c "! $KEYCTL -c $CONF held list | grep -q '^$id2 '"
check "held return: nothing on the wire" test "$(sink_count)" = 1
keyctl held return 0123456789abcdef > "$T/unknown.out" 2>&1
check "held return of an unknown ID: exit 1" test $? = 1
check "held return of an unknown ID: says so" grep -q 'no held message 0123456789abcdef' "$T/unknown.out"
keyctl held release ../x > "$T/bad.out" 2>&1
check "held release of a malformed ID: exit 1, saying why" sh -c "[ $? = 1 ] && grep -q 'is not a held message' $T/bad.out"

# 6. HoldTime passes (set shorter, keyd restarted): the message comes back, never on the wire.
rig_send "$T/plain.eml" alice@a.test dave@b.test
check "dave (no key): 250" test $? = 0
wait_for 10 waits dave@b.test
kill "$KEYD_PID"; wait "$KEYD_PID" 2>/dev/null
hold_config "HoldTime 1s"
rig_keyd
check "HoldTime passed: the sender gets the DSN" wait_for 30 has_notices alice 'Undelivered Mail Returned to Sender' 2
check "HoldTime passed: it names dave and the reason" sh -c \
	"grep -l 'Final-Recipient: rfc822; dave@b.test' $MAIL/alice/Maildir/new/* | xargs grep -q 'within HoldTime'"
check "HoldTime passed: nothing held" held_none
check "HoldTime passed: the wire never saw it" test "$(sink_count)" = 1
check "no plaintext for b.test ever reached the wire" test "$(leaks b.test)" = 0
check "the milter is still running" kill -0 "$MILTER_PID"
dns_stop_nsd
rig_done
