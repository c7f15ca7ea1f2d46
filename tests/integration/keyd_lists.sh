#!/bin/sh
# Mail to lists through a real Postfix, cables-milter and cables-keyd
# (issue 13): one message to 1,000 remote recipients, with keys for some in
# a signed zone served by nsd, most at an unsigned domain, and some at a
# domain whose DNS server never answers (dnsdrop.py drops its queries).
# The message is accepted within LookupTimeout plus the documented margin;
# every recipient is delivered (smtp-sink's X-Rcpt-Args lines), those with
# keys encrypted; the dead domain's recipients alone wait for On-KeydError.
# Under On-KeydError tempfail the first attempt waits as a whole; keyd then
# marks the dead domain, and the retry defers its RCPTs alone (451 4.4.3).
# keyd killed and restarted in the middle of a list: the message is
# temp-failed (never lost, never plaintext to a require recipient: k1..k3@keys.test) and goes
# through when sent again.
RIG_PORT=12520
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/integration/dnszone.sh"

DNSPORT=$((RIG_PORT + 5))
STUBPORT=$((RIG_PORT + 6))
SOCK=$T/keyd.sock
TIMEOUT_S=2
MARGIN_S=1	# the milter waits LookupTimeout + 1 s for keyd (keyd answers by LookupTimeout + 250 ms)

# keys.test: signed, three users with keys; lists.test: unsigned, no keys.
R=$T/r
dns_store "$R" keys.test
for who in k1 k2 k3; do "$KEYCTL" -c "$R/conf" generate "$who@keys.test" --smime >/dev/null; done
dns_publish_zone keys.test "$R/conf"
dns_sign_zone keys.test 20351231000000 20250101000000
printf '$ORIGIN lists.test.\n$TTL 300\n@ IN SOA ns.lists.test. admin.lists.test. 1 3600 600 86400 300\n@ IN NS ns.lists.test.\nns IN A 127.0.0.1\n' \
	> "$Z/lists.test.zone"
cp "$Z/lists.test.zone" "$Z/lists.test.zone.signed"
dns_start_nsd "$DNSPORT" keys.test lists.test
check "nsd serves keys.test and lists.test" test -n "$NSD_PID"
$PY "$SRC/tests/integration/dnsdrop.py" "$STUBPORT" "$DNSPORT" "$T/stub.ready" 2>"$T/stub.err" &
echo $! >> "$T/pids"
check "the forwarder that drops dead*.test is up" wait_for 10 test -s "$T/stub.ready"

rig_config "KeydSocket $SOCK" "Resolver 127.0.0.1@$STUBPORT" "DNSSECTrustAnchor $T/anchors" "LookupTimeout ${TIMEOUT_S}s" \
	"DefaultPolicy encrypt" "Policy k1@keys.test require" "Policy k2@keys.test require" "Policy k3@keys.test require" \
	"Policy dead.test On-KeydError=accept" \
	"ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key"
keyd_up() {
	rm -f "$SOCK"
	rig_keyd
	wait_for 10 keyd_ask "$SOCK" request=stats
}
keyd_up
check "keyd answers" grep -q '^lookups=' "$T/reply"
# 10 RCPTs deferred in one session (3b) are 10 client errors to smtpd: without these (cables-milter(8),
# POSTFIX) every later reply would wait smtpd_error_sleep_time, and the 20th error would end the session.
rig_postfix "smtpd_error_sleep_time = 0" "smtpd_soft_error_limit = 1000" "smtpd_hard_error_limit = 1001"
rig_sink
rig_milter
$MAILTOOL make "$T/plain.eml" plain

# recipients FIRST: 1,000 addresses: k1..k3 and 5 keyless users at keys.test, 10 at DEAD, the rest at lists.test.
recipients() {
	echo k1@keys.test k2@keys.test k3@keys.test
	for i in 1 2 3 4 5; do echo "nokey$i@keys.test"; done
	for i in $(seq 1 10); do echo "user$i@$DEAD"; done
	for i in $(seq "$1" $(($1 + 981))); do echo "member$i@lists.test"; done
}
rcpt_lines() { cat "$SINK"/* 2>/dev/null | grep -c '^X-Rcpt-Args:'; }
# send_timed FIRST: the message to recipients FIRST; $RC, $REPLY and $TOOK (ms).
send_timed() {
	start=$(date +%s%N)
	# shellcheck disable=SC2046
	rig_send "$T/plain.eml" alice@a.test $(recipients "$1")
	RC=$?
	TOOK=$(( ($(date +%s%N) - start) / 1000000 ))
}
# encrypted_only ADDRESS: every copy for ADDRESS on the wire is S/MIME without the plaintext.
encrypted_only() {
	files=$(grep -l "^X-Rcpt-Args: <$1>" "$SINK"/* 2>/dev/null)
	[ -n "$files" ] || return 1
	for f in $files; do
		grep -q '^Content-Type: application/pkcs7-mime' "$f" || return 1
		awk 'body && /PLAINTEXT-MARKER/ { found = 1 } /^\r?$/ { body = 1 } END { exit found }' "$f" || return 1
	done
}

# 1. Keyless, keyed and dead recipients together; the dead domain's On-KeydError is accept.
DEAD=dead.test
keyd_ask "$SOCK" request=stats
none_before=$(sed -n 's/^none=//p' "$T/reply")
# Cold, 990 live addresses may not all be looked up within LookupTimeout on slow or busy cores (a
# sanitizer build beside other suites): then the message is refused with a 4xx, nothing is sent, and the
# sending MTA tries again, as here (for up to 120 s); every answer, either way, comes in time.
# "In time" is checked where it matters: the milter never gave up waiting for keyd's answer (LookupTimeout
# + 1 s), nor lost a batch of addresses to a refused or closed connection (it logs each batch it lost);
# the SMTP times around it (1,000 RCPTs, Postfix) are shown, not judged.
late() { grep -c 'key lookup of [0-9]* address' "$MILTER_LOG"; }
late_before=$(late)
give_up=$(( $(date +%s) + 120 ))
while :; do
	send_timed 1
	[ "$RC" = 0 ] || [ "$RC" != 4 ] || [ "$(date +%s)" -ge "$give_up" ] && break
	diag "1,000 recipients, cold: $REPLY in $TOOK ms; sending again"
done
diag "1,000 recipients, one dead domain: accepted in $TOOK ms (LookupTimeout ${TIMEOUT_S}s)"
check "1,000 recipients with a dead domain among them: accepted ($REPLY)" test "$RC" = 0
check "... keyd answered every batch of every attempt, before the milter's LookupTimeout + ${MARGIN_S} s were up" \
	test "$(late)" = "$late_before"
check "all 1,000 recipients delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge 1000 ]"
check "exactly 1,000 recipient lines on the wire" test "$(rcpt_lines)" = 1000
for who in k1 k2 k3; do check "$who@keys.test (key in signed DNS): encrypted only" encrypted_only "$who@keys.test"; done
check "keyd says the dead domain's lookups did not finish (tempfail for them alone)" \
	grep -q 'lookups of a request did not finish within LookupTimeout' "$MILTER_LOG"

# 2. The same list again: every "none" of the first time (unsigned or proven) comes from the negative cache.
keyd_ask "$SOCK" request=stats
hits_before=$(sed -n 's/^negative_cache_hits=//p' "$T/reply")
nones=$(( $(sed -n 's/^none=//p' "$T/reply") - none_before ))
diag "first time: $nones of 1,000 lookups answered none in time"
send_timed 1
diag "the same 1,000 recipients again (answers cached, the dead domain's not): accepted in $TOOK ms"
check "the list again: accepted" test "$RC" = 0
keyd_ask "$SOCK" request=stats
hits_after=$(sed -n 's/^negative_cache_hits=//p' "$T/reply")
check "the first time, the 987 keyless recipients were answered 'none': $nones" test "$nones" -ge 987
check "the list again: those answers come from the negative cache ($hits_before -> $hits_after)" \
	test $((hits_after - hits_before)) -ge 987
check "the list again: delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge 2000 ]"

# 3. A dead domain whose On-KeydError is the default (tempfail): 4xx in time, nothing sent.
DEAD=dead2.test
sent=$(rcpt_lines)
send_timed 5001
diag "1,000 recipients, dead domain with On-KeydError tempfail: $REPLY in $TOOK ms"
check "a dead domain under On-KeydError tempfail: 4xx" test "$RC" = 4
diag "... in $TOOK ms (LookupTimeout ${TIMEOUT_S}s + ${MARGIN_S} s)"
check "... keyd answered every batch, before the milter's LookupTimeout + ${MARGIN_S} s were up" test "$(late)" = "$late_before"
check "... nothing of it queued or sent" sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') = $sent ] && [ $(queue_count) = 0 ]"
# 3b. keyd marks dead2.test unresponsive; the retry, as the sending MTA makes it, gets 451 4.4.3 for
# the 10 dead2.test RCPTs alone, and the message goes to the 990 others (cables-keyd(8), UnresponsiveTime).
dead2_marked() {
	keyd_ask "$SOCK" request=check address=user1@dead2.test && grep -q '^check=user1@dead2.test unresponsive' "$T/reply"
}
# keyd marks it only on evidence about it (cables-keyd(8)): when the resolver is too busy to answer its
# probe, the lookups of that attempt mark nothing, and the sending MTA's next retry is temp-failed as a
# whole again; as the MTA would, send again (each attempt a 4xx, nothing sent) until it is marked.
sent=$(rcpt_lines)
give_up=$(( $(date +%s) + 120 ))
whole=0
until wait_for 10 dead2_marked || [ "$(date +%s)" -ge "$give_up" ]; do
	send_timed 5001
	[ "$RC" = 4 ] || whole=$RC
	diag "not marked yet (a busy resolver): sent again: $REPLY"
done
check "keyd marks dead2.test unresponsive" dead2_marked
check "... the retries until then: 4xx as a whole, nothing sent" \
	sh -c "[ $whole = 0 ] && [ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') = $sent ] && [ $(queue_count) = 0 ]"
args=""
for r in $(recipients 5001); do args="$args --to $r"; done
# The 990 live members' lookups may still not all finish within LookupTimeout on busy cores (those of
# the attempts above that timed out were not cached): a 4xx as a whole then, nothing sent, and the
# sending MTA tries again, as in 1 (for up to 120 s).
give_up=$(( $(date +%s) + 120 ))
while :; do
	# shellcheck disable=SC2086
	REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --rcpt-replies "$T/rcpts" $args "$T/plain.eml")
	RC=$?
	diag "the retry: $REPLY; $(grep -c '^451 ' "$T/rcpts") RCPTs deferred"
	[ "$RC" = 0 ] || [ "$RC" != 4 ] || [ "$(date +%s)" -ge "$give_up" ] && break
	dead2_marked || break	# the mark holds throughout
done
check "the retry: the message is accepted" test "$RC" = 0
check "the retry: 451 4.4.3 for the 10 dead2.test RCPTs, and no other" \
	sh -c "[ \$(grep -c '^451 .*@dead2.test\$' $T/rcpts) = 10 ] && [ \$(grep -c '^4' $T/rcpts) = 10 ]"
check "the retry: the 990 others delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 990)) ]"
check "the retry: nothing for dead2.test on the wire" sh -c "! grep -q '^X-Rcpt-Args: <user[0-9]*@dead2.test>' $SINK/*"
check "the retry: the queue empties" wait_for 60 queue_empty

# 4. keyd killed and restarted while it looks up a list (new members: nothing cached).
DEAD=dead.test
keyd_ask "$SOCK" request=stats
lookups_before=$(sed -n 's/^lookups=//p' "$T/reply")
sent=$(rcpt_lines)
( send_timed 10001; echo "$RC" > "$T/mid.rc"; echo "$REPLY" > "$T/mid.reply" ) &
mid=$!
lookups_under_way() {
	keyd_ask "$SOCK" request=stats && [ "$(sed -n 's/^lookups=//p' "$T/reply")" -gt "$lookups_before" ]
}
check "keyd has begun the list's lookups" wait_for 30 lookups_under_way
kill -9 "$KEYD_PID"
wait "$KEYD_PID" 2>/dev/null
keyd_up
check "keyd is back" grep -q '^lookups=' "$T/reply"
wait "$mid"
diag "keyd killed mid-list: $(cat "$T/mid.reply")"
check "keyd killed mid-list: the message is temp-failed (4xx), not lost" test "$(cat "$T/mid.rc")" = 4
check "keyd killed mid-list: nothing of it queued or sent" \
	sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') = $sent ] && [ $(queue_count) = 0 ]"
# As the sending MTA would: try again, for up to 120 s, while the restarted keyd's caches are cold on busy
# cores, and while its resolver counts the dropped queries against the one forwarder (libunbound then
# answers SERVFAIL until it probes the server again); every refusal must be a 4xx.
give_up=$(( $(date +%s) + 120 ))
attempt=0
while :; do
	attempt=$((attempt + 1))
	send_timed 10001
	[ "$RC" = 0 ] || [ "$RC" != 4 ] || [ "$(date +%s)" -ge "$give_up" ] && break
	diag "sent again, attempt $attempt: $REPLY"
done
check "sent again after the restart: accepted ($REPLY)" test "$RC" = 0
check "sent again: all 1,000 delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 1000)) ]"
for who in k1 k2 k3; do check "sent again: $who@keys.test encrypted only" encrypted_only "$who@keys.test"; done
check "keyd survived" kill -0 "$KEYD_PID"

# 5. An address keyd does not take (a quoted local part with a space) must not fail the lookups of the
# others: it alone gets On-KeydError (accept at dead.test); nokey1@keys.test (no key in the store, so
# asked of keyd: proven keyless) and k1@keys.test (key stored by now) go as their policies say.
sent=$(rcpt_lines)
REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from alice@a.test --to k1@keys.test --to nokey1@keys.test \
	--to '"a b"@dead.test' "$T/plain.eml")
RC=$?
check "a quoted recipient keyd does not take, beside two at keys.test: accepted ($REPLY)" test "$RC" = 0
check "... all three delivered" wait_for 60 sh -c "[ \$(cat $SINK/* | grep -c '^X-Rcpt-Args:') -ge $((sent + 3)) ]"
check "... the quoted recipient's copy went as On-KeydError=accept says" grep -q '^X-Rcpt-Args: <"a b"@dead.test>' "$SINK"/*
check "... k1@keys.test: encrypted only" encrypted_only k1@keys.test
check "... the milter said why it did not ask keyd for it" grep -q 'cannot look up this address form' "$MILTER_LOG"
rig_done
