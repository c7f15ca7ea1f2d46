#!/bin/sh
# The re-injection listener through a real Postfix: it runs the milter in
# its verify-only mode (ReinjectDaemonName), so the milter's own copies get
# through it and nothing else does: plaintext for a require recipient sent
# straight to that port never leaves; a copy captured on the wire and sent
# again there is refused (seen before, or made before a restart); a copy
# with a header field changed or added, or for another envelope, is refused.
RIG_PORT=12450
. "$top_srcdir/tests/integration/rig.sh"

rig_config "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key" "Policy b.test require"
rig_postfix
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null

# message ID: alice's message to bob (require) and carol (no key) with Message-ID <ID@a.test>.
message() {
	printf 'From: Alice <alice@a.test>\r\nTo: Bob <bob@b.test>, Carol <carol@c.test>\r\nSubject: gate %s\r\nMessage-ID: <%s@a.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello, PLAINTEXT-MARKER %s\r\n' \
		"$1" "$1" "$1" > "$T/$1.eml"
}
# inject FILE FROM TO...: straight to the re-injection port; $REPLY, exit code 2/4/5xx.
inject() { inst_send "$REINJECT_PORT" "$@"; }
rejects() { grep -c ": reject: re-injection: $1" "$MILTER_LOG"; }

# 1. Plaintext for a require recipient, straight to the re-injection port.
message p1
inject "$T/p1.eml" alice@a.test bob@b.test
check "plaintext for a require recipient on the re-injection port: 5xx" test $? = 5
case "$REPLY" in
*"550 5.7.1 Cables: only copies made by Cables are taken on this port"*) ok "the reply says why" ;;
*) not_ok "the reply says why" "$REPLY" ;;
esac
check "the log says why" grep -q ": reject: re-injection: no marker" "$MILTER_LOG"
inject "$T/p1.eml" alice@a.test carol@c.test
check "any mail without a marker on the re-injection port: 5xx" test $? = 5
check "nothing queued" queue_empty

# 2. A real split: carol's copy goes through the re-injection port.
message s1
rig_send "$T/s1.eml" alice@a.test bob@b.test carol@c.test
check "split: accepted ($REPLY)" test $? = 0
check "split: carol's copy passed the re-injection listener" \
	wait_for 30 grep -q ": pass: re-injection: a copy made by Cables" "$MILTER_LOG"
carol_copy() {
	f=$(grep -l "^Message-ID: <s1@a.test>" "$SINK"/* 2>/dev/null | xargs -r grep -l "^X-Rcpt-Args: <carol@c.test>" | head -n 1)
	[ -n "$f" ] && sink_message "$f" > "$T/captured.eml"
}
check "split: carol's copy reached the wire" wait_for 60 carol_copy
check "split: the copy carries the marker, last in its header" \
	sh -c "awk '/^\r?\$/ { exit } { last = \$0 } END { exit last !~ /^X-Cables-Reinjected: v2 /}' $T/captured.eml"
check "split: bob's message left encrypted" wait_for 60 sh -c "[ \$(grep -l '^X-Rcpt-Args: <bob@b.test>' $SINK/* | wc -l) -ge 1 ]"

# 3. The captured copy, replayed on the re-injection port for its own envelope: used before.
inject "$T/captured.eml" alice@a.test carol@c.test
check "replayed copy: 5xx" test $? = 5
check "replayed copy: the log says it was used before" \
	grep -q ": reject: re-injection: the marker has been used before" "$MILTER_LOG"

# 4. Forged: a field changed, a field added, another sender, another recipient.
before=$(rejects "the marker does not verify")
sed 's/^Subject: gate s1/Subject: gate s1 (urgent: wire money)/' "$T/captured.eml" > "$T/forged1.eml"
inject "$T/forged1.eml" alice@a.test carol@c.test
check "forged Subject: 5xx" test $? = 5
sed 's/^Subject: /Reply-To: mallory@m.test\r\nSubject: /' "$T/captured.eml" > "$T/forged2.eml"
inject "$T/forged2.eml" alice@a.test carol@c.test
check "added Reply-To: 5xx" test $? = 5
inject "$T/captured.eml" ceo@a.test carol@c.test
check "another envelope sender: 5xx" test $? = 5
inject "$T/captured.eml" alice@a.test bob@b.test
check "plaintext copy sent to the require recipient instead: 5xx" test $? = 5
check "forged copies: each logged as not verifying" \
	test "$(rejects "the marker does not verify")" = $((before + 4))

# 5. After a restart the milter has forgotten what it saw; the marker's time refuses it.
t=$(sed -n 's/^X-Cables-Reinjected: v2 t=\([0-9]*\) .*/\1/p' "$T/captured.eml" | head -n 1)
wait_for 5 sh -c "[ \$(date +%s) -gt $t ]"
rig_milter_restart
inject "$T/captured.eml" alice@a.test carol@c.test
check "replayed after a restart: 5xx" test $? = 5
check "replayed after a restart: the log says why" \
	grep -q ": reject: re-injection: the marker was made before cables-milter started" "$MILTER_LOG"

# Split delivery still works after the restart.
message s2
rig_send "$T/s2.eml" alice@a.test bob@b.test carol@c.test
check "split after a restart: accepted ($REPLY)" test $? = 0
check "split after a restart: carol's copy passed" \
	wait_for 30 sh -c "[ \$(grep -c ': pass: re-injection: a copy made by Cables' $MILTER_LOG) -ge 2 ]"

wait_for 30 queue_empty	# whatever was accepted has been delivered: now look for what must not be there
check "nothing refused reached the wire" test "$(grep -l 'gate p1\|wire money\|mallory@m.test' "$SINK"/* 2>/dev/null | wc -l)" = 0
check "no plaintext for the require domain" test "$(leaks b.test)" = 0
check "the replayed copies left nothing on the wire" sh -c "[ \$(grep -l '^Message-ID: <s1@a.test>' $SINK/* | wc -l) = 2 ]"

# An upgraded configuration without ReinjectDaemonName gets a warning at start.
sed -e '/^ReinjectDaemonName /d' -e "s|^Socket .*|Socket unix:$T/old.sock|" -e "s|^LogFile .*|LogFile $T/old.log|" \
	-e "s|^PidFile .*||" "$CONF" > "$T/old.conf"
start_milter "$T/old.conf" "$T/old.sock" "$T/old.stderr"
check "ReinjectTo without ReinjectDaemonName: a warning at start" \
	wait_for 10 grep -q "ReinjectTo is set without ReinjectDaemonName" "$T/old.log"
kill -9 "$STARTED_PID" 2>/dev/null

rig_done
