#!/bin/sh
# One domain that does not answer holds back no one else (issue 13), through
# a real Postfix, cables-milter and cables-keyd, under the default
# On-KeydError tempfail.  A message to 60 recipients, 25 of them at a domain
# whose DNS server never answers (dnsdrop.py drops its queries): the first
# attempt is temp-failed as a whole (nothing is known of the domain yet);
# keyd then marks the domain unresponsive, and the retry, as the sending
# MTA makes it, gets 451 4.4.3 for the dead domain's RCPTs alone and 250
# for the message: the 35 others are delivered (encrypted where keyed), the
# dead ones not.  25 deferred RCPTs are 25 client errors to Postfix's smtpd:
# with its default smtpd_hard_error_limit (20) the session ends at the 20th
# and nothing is sent, which is why cables-milter(8) says to raise it.  When
# the domain answers again and the mark ends (UnresponsiveTime, short
# here), its recipients are delivered.  A resolver that stalls (the
# forwarder stopped while keyd looks up a list) marks no domain.  keyd down
# at RCPT time blocks nothing: the RCPTs are accepted and the end of the
# message decides, as before.
RIG_PORT=12720
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
STUBPORT=$((RIG_PORT + 6))
SOCK=$T/keyd.sock
HOLD_S=20

# keys.test: signed, two users with keys; lists.test: unsigned, no keys; dead.test: never answers.
R=$T/r
dns_store "$R" keys.test
for who in k1 k2; do "$KEYCTL" -c "$R/conf" generate "$who@keys.test" --smime >/dev/null; done
dns_publish_zone keys.test "$R/conf"
dns_sign_zone keys.test 20351231000000 20250101000000
for zone in lists.test dead.test; do
	printf '$ORIGIN %s.\n$TTL 300\n@ IN SOA ns.%s. admin.%s. 1 3600 600 86400 300\n@ IN NS ns.%s.\nns IN A 127.0.0.1\n' \
		"$zone" "$zone" "$zone" "$zone" > "$Z/$zone.zone"
	cp "$Z/$zone.zone" "$Z/$zone.zone.signed"
done
dns_start_nsd "$DNSPORT" keys.test lists.test dead.test
check "nsd serves keys.test, lists.test and dead.test" test -n "$NSD_PID"
# dead*.test answer only once $T/revive/DOMAIN exists.
mkdir "$T/revive"
$PY "$SRC/tests/integration/dnsdrop.py" "$STUBPORT" "$DNSPORT" "$T/stub.ready" "$T/revive" 2>"$T/stub.err" &
STUB_PID=$!
echo $STUB_PID >> "$T/pids"
check "the forwarder that drops dead*.test is up" wait_for 10 test -s "$T/stub.ready"

rig_config "KeydSocket $SOCK" "Resolver 127.0.0.1@$STUBPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout 2s" \
	"UnresponsiveTime ${HOLD_S}s" "DefaultPolicy encrypt" \
	"ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key"
rig_keyd
check "keyd answers" wait_for 10 keyd_ask "$SOCK" request=stats
# 25 RCPTs deferred in one session are 25 client errors to smtpd: cables-milter(8), POSTFIX.
rig_postfix "smtpd_error_sleep_time = 0" "smtpd_soft_error_limit = 1000" "smtpd_hard_error_limit = 1001"
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

recipients() {
	echo k1@keys.test k2@keys.test
	for i in 1 2 3; do echo "nokey$i@keys.test"; done
	for i in $(seq 1 25); do echo "user$i@dead.test"; done
	for i in $(seq 1 30); do echo "member$i@lists.test"; done
}
# send: the message to every recipient, going on past refused RCPTs as an MTA does;
# $RC (0/4/5 for DATA, or the RCPTs' when none was accepted), $REPLY, per-RCPT replies in $T/rcpts.
send() {
	args=""
	for r in $(recipients); do args="$args --to $r"; done
	# shellcheck disable=SC2086
	REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --rcpt-replies "$T/rcpts" $args "$T/plain.eml")
	RC=$?
}
rcpt_count() { grep -c "$1" "$T/rcpts"; }
rcpt_lines() { cat "$SINK"/* 2>/dev/null | grep -c '^X-Rcpt-Args:'; }
dead_state() { keyd_ask "$SOCK" request=check address=user1@dead.test && grep -q "^check=user1@dead.test $1" "$T/reply"; }
encrypted_only() {
	files=$(grep -l "^X-Rcpt-Args: <$1>" "$SINK"/* 2>/dev/null)
	[ -n "$files" ] || return 1
	for f in $files; do
		grep -q '^Content-Type: application/pkcs7-mime' "$f" || return 1
		awk 'body && /PLAINTEXT-MARKER/ { found = 1 } /^\r?$/ { body = 1 } END { exit found }' "$f" || return 1
	done
}

# 1. Nothing known of dead.test yet: every RCPT accepted, the message temp-failed as a whole (as before).
check "before any lookup, keyd's check says dead.test needs a lookup" dead_state lookup
send
diag "first attempt: $REPLY"
check "first attempt: all 60 RCPTs accepted" test "$(rcpt_count '^250 ')" = 60
check "first attempt: the message is temp-failed (4xx), dead.test unknown yet" test "$RC" = 4
check "first attempt: nothing queued or sent" sh -c "[ $(rcpt_lines) = 0 ] && [ $(queue_count) = 0 ]"

# 2. keyd marks dead.test (its lookups, still running after the 4xx, end with no answer); nothing else.
# On a resolver too busy to answer keyd's probe the lookups mark nothing (cables-keyd(8)): the sending
# MTA's retry is temp-failed as a whole again; send again, as it would, until the mark is there.
give_up=$(( $(date +%s) + 120 ))
whole=0
until wait_for 10 dead_state unresponsive || [ "$(date +%s)" -ge "$give_up" ]; do
	send
	[ "$RC" = 4 ] || whole=$RC
	diag "not marked yet (a busy resolver): sent again: $REPLY"
done
check "keyd marks dead.test unresponsive" dead_state unresponsive
check "... the retries until then: 4xx as a whole, nothing sent" \
	sh -c "[ $whole = 0 ] && [ $(rcpt_lines) = 0 ] && [ $(queue_count) = 0 ]"
diag "$(cat "$T/reply")"
check "... with the seconds it lasts and why" grep -q 'retry=[0-9]* reason=.*got no answer' "$T/reply"
check "... and logs it once" sh -c "[ \$(grep -c 'dead.test: its DNS servers do not answer' $MILTER_LOG) = 1 ]"
keyd_ask "$SOCK" request=check address=member1@lists.test address=k1@keys.test address=nokey1@keys.test
check "live domains are not marked" sh -c "! grep -q unresponsive $T/reply"

# 3. The retry: the dead domain's RCPTs alone wait; the others are delivered.
send
diag "retry: $REPLY"
check "retry: the message is accepted (250)" test "$RC" = 0
check "retry: 451 4.4.3 for the 25 dead.test RCPTs" test "$(grep -c '^451 .*@dead.test$' "$T/rcpts")" = 25
check "retry: 451 for no other RCPT" test "$(rcpt_count '^4')" = 25
check "retry: 250 for the 35 others" test "$(rcpt_count '^250 ')" = 35
check "retry: the 35 are delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge 35 ]"
check "retry: exactly 35 recipient lines on the wire" test "$(rcpt_lines)" = 35
check "retry: nothing for dead.test on the wire" sh -c "! grep -q '^X-Rcpt-Args: <user[0-9]*@dead.test>' $SINK/*"
for who in k1 k2; do check "retry: $who@keys.test (key in signed DNS): encrypted only" encrypted_only "$who@keys.test"; done
check "retry: lists.test members delivered" grep -q '^X-Rcpt-Args: <member30@lists.test>' "$SINK"/*
check "the milter logs each deferred recipient" \
	sh -c "[ \$(grep -c 'recipient user[0-9]*@dead.test: the key servers of its domain do not answer' $MILTER_LOG) = 25 ]"
check "retry: nothing left in the queue" wait_for 30 queue_empty

# 3c. Postfix's default smtpd_hard_error_limit (20): the 20th deferred RCPT ends the session, nothing is sent.
sent=$(rcpt_lines)
postconf -c "$PF" -X smtpd_error_sleep_time smtpd_soft_error_limit smtpd_hard_error_limit
postconf -c "$PF" -e "smtpd_error_sleep_time = 0"
postfix -c "$PF" reload >/dev/null 2>&1
default_limits_refuse() { send; [ "$RC" = 4 ] && grep -q 'too many errors' "$PF/maillog"; }
check "default smtpd_hard_error_limit: the 20th 451 ends the session (Postfix: too many errors)" \
	wait_for 60 default_limits_refuse
diag "default limits: $(grep 'too many errors' "$PF/maillog" | tail -n 1)"
check "default limits: nothing of it sent" sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') = $sent ]"
for line in "smtpd_soft_error_limit = 1000" "smtpd_hard_error_limit = 1001"; do postconf -c "$PF" -e "$line"; done
postfix -c "$PF" reload >/dev/null 2>&1

# 4. dead.test answers again; once the mark ends its RCPTs are accepted and everyone is delivered.
touch "$T/revive/dead.test"
check "the mark ends within UnresponsiveTime" wait_for $((HOLD_S + 10)) dead_state lookup
sent=$(rcpt_lines)
revived() { send; [ "$RC" = 0 ]; }
check "dead.test back: the message is accepted" wait_for 60 revived
check "dead.test back: all 60 RCPTs accepted" test "$(rcpt_count '^250 ')" = 60
check "dead.test back: its 25 recipients delivered" \
	wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args: <user[0-9]*@dead.test>') = 25 ]"
check "dead.test back: all 60 on the wire" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 60)) ]"
check "dead.test back: nothing left in the queue" wait_for 30 queue_empty

# 5. The resolver stalls (the forwarder stopped) while keyd looks up new list members: their lookups
# time out, the message is temp-failed, and no domain is marked (the probe goes unanswered); once the
# forwarder runs again the message goes through.
stats_value() { keyd_ask "$SOCK" request=stats >/dev/null && sed -n "s/^$1=//p" "$T/reply"; }
marked_before=$(stats_value unresponsive_marked)
spared_before=$(stats_value unresponsive_spared)
stall_send() {
	# shellcheck disable=SC2046
	STALL=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --rcpt-replies "$T/rcpts" \
	    $(for i in $(seq 100 119); do echo "--to new$i@lists.test"; done) --to k1@keys.test "$T/plain.eml")
	STALL_RC=$?
}
kill -STOP "$STUB_PID"
stall_send
lookups_judged() { [ "$(stats_value unresponsive_spared)" -gt "$spared_before" ]; }
check "stalled resolver: lookups time out and are judged (unresponsive_spared grows)" wait_for 60 lookups_judged
diag "stalled resolver: $STALL"
check "stalled resolver: the message is temp-failed (4xx)" test "$STALL_RC" = 4
keyd_ask "$SOCK" request=check address=new100@lists.test address=k1@keys.test
check "stalled resolver: lists.test and keys.test not marked" sh -c "! grep -q unresponsive $T/reply"
kill -CONT "$STUB_PID"
sent=$(rcpt_lines)
stall_over() { stall_send; [ "$STALL_RC" = 0 ]; }
check "the forwarder runs again: the message goes through" wait_for 60 stall_over
check "... its 21 recipients delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 21)) ]"
check "stalled resolver: no mark at all" test "$(stats_value unresponsive_marked)" = "$marked_before"
check "no live domain was ever marked (keyd's log)" \
	sh -c "! grep -E '(lists|keys)\.test: its DNS servers do not answer' $MILTER_LOG"

# 6. Under load: a flood of queries through the forwarder (more than it can answer, so that keyd's
# queries are dropped at random and time out, as on a busy resolver) while a message to 1,000
# recipients is sent, again and again as an MTA retries: 985 new list members, five at keys.test and
# ten at dead3.test (dead).  No live domain is ever marked; dead3.test may be; once the flood stops,
# the retry defers dead3.test's ten alone and the 990 others are delivered.
load_rcpts() {
	echo k1@keys.test k2@keys.test
	for i in 1 2 3; do echo "nokey$i@keys.test"; done
	for i in $(seq 1 10); do echo "user$i@dead3.test"; done
	for i in $(seq 1 985); do echo "load$i@lists.test"; done
}
load_send() {
	# shellcheck disable=SC2046
	LOAD=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --rcpt-replies "$T/rcpts" \
	    $(for r in $(load_rcpts); do echo "--to $r"; done) "$T/plain.eml")
	LOAD_RC=$?
}
live_marked() {
	keyd_ask "$SOCK" request=check address=load1@lists.test address=load985@lists.test address=k1@keys.test \
	    address=nokey1@keys.test >/dev/null
	grep -q unresponsive "$T/reply"
}
# shellcheck disable=SC2016
$PY -c '
import os, socket, struct, sys
port, stop, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", port))
s.setblocking(False)
open(ready, "w").close()
while not os.path.exists(stop):
    for _ in range(100):
        label = os.urandom(6).hex().encode()
        q = struct.pack("!HHHHHH", struct.unpack("!H", os.urandom(2))[0], 0x0100, 1, 0, 0, 0)
        q += bytes([len(label)]) + label + b"\x05lists\x04test\x00" + struct.pack("!HH", 1, 1)
        try:
            s.send(q)
        except OSError:
            pass
    try:
        while True:
            s.recv(65535)
    except OSError:
        pass
' "$STUBPORT" "$T/flood.stop" "$T/flood.ready" 2>"$T/flood.err" &
echo $! >> "$T/pids"
check "the flood through the forwarder runs" wait_for 10 test -e "$T/flood.ready"
marked_before=$(stats_value unresponsive_marked)
spared_before=$(stats_value unresponsive_spared)
give_up=$(( $(date +%s) + 60 ))
attempts=0 ever_live=0
while :; do
	attempts=$((attempts + 1))
	load_send
	live_marked && ever_live=1
	[ "$LOAD_RC" = 0 ] || [ "$(date +%s)" -ge "$give_up" ] && break
done
touch "$T/flood.stop"
check "under the flood: the queue empties" wait_for 60 queue_empty
sent=$(rcpt_lines)
diag "under the flood: $attempts attempts, the last: $LOAD; marked $marked_before -> $(stats_value unresponsive_marked), spared $spared_before -> $(stats_value unresponsive_spared)"
diag "marks so far: $(grep -o 'keyd: [a-z0-9.]*: its DNS servers do not answer' "$MILTER_LOG" | cut -d' ' -f2 | sort | uniq -c | tr '\n' ' ')"
check "under the flood: no live domain marked (checked after each attempt)" test "$ever_live" = 0
give_up=$(( $(date +%s) + 120 ))
while :; do
	load_send
	live_marked && ever_live=1
	[ "$LOAD_RC" = 0 ] || [ "$(date +%s)" -ge "$give_up" ] && break
done
diag "after the flood: $LOAD; $(grep -c '^451 ' "$T/rcpts") RCPTs deferred"
check "after the flood: the message is accepted" test "$LOAD_RC" = 0
check "after the flood: 451 4.4.3 for the 10 dead3.test RCPTs, and no other" \
	sh -c "[ \$(grep -c '^451 .*@dead3.test\$' $T/rcpts) = 10 ] && [ \$(grep -c '^4' $T/rcpts) = 10 ]"
check "after the flood: no live domain marked" test "$ever_live" = 0
check "after the flood: the 990 others delivered" \
	wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 990)) ]"
for who in k1 k2; do check "after the flood: $who@keys.test encrypted only" encrypted_only "$who@keys.test"; done

# 7. keyd down at RCPT time: no RCPT waits on it, the end of the message decides (On-KeydError tempfail).
kill "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null
rm -f "$SOCK"
start=$(date +%s%N)
send
took=$(( ($(date +%s%N) - start) / 1000000 ))
diag "keyd down: $REPLY in $took ms"
check "keyd down: all 60 RCPTs accepted" test "$(rcpt_count '^250 ')" = 60
check "keyd down: the message is temp-failed (On-KeydError tempfail)" test "$RC" = 4
check "keyd down: answered without waiting on keyd ($took ms)" test "$took" -lt 10000
rig_done
