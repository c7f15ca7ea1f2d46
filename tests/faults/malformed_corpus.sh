#!/bin/sh
# Fault: a corpus of more than 1,000 generated malformed messages (broken
# and missing boundaries, multiparts nested 100 and more deep, 1 MB header
# lines, NUL bytes, 8-bit headers, bad base64, wrong transfer encodings,
# truncated and damaged CMS and PGP blocks, random mutations), each sent
# over SMTP to a remote recipient whose policy is require and to a local
# recipient with a key (the inbound path), and a tenth of them through
# sendmail(1).  Every message is accepted and delivered, none leaks
# plaintext, the milter survives.
RIG_PORT=12240
. "$top_srcdir/tests/integration/rig.sh"
. "$top_srcdir/tests/faults/faults.sh"
CORPUS="$PY $SRC/tests/faults/corpus.py"

rig_config "Policy b.test require" "MaxMessageSize 20M"
# smtp-sink does not offer SMTPUTF8: without this, 8-bit headers submitted
# locally would bounce at the sink, which says nothing about Cables.
rig_postfix "header_size_limit = 2097152" "smtputf8_enable = no"
rig_sink
rig_milter
keyctl generate bob@b.test --smime >/dev/null
keyctl generate colleague@a.test --smime >/dev/null
keyctl export colleague@a.test > "$T/colleague.pem"
printf 'Content-Type: text/plain\r\n\r\nsecret\r\n' > "$T/inner.txt"
openssl cms -encrypt -binary -aes-256-cbc -outform DER -in "$T/inner.txt" -out "$T/cms.der" "$T/colleague.pem"

n=$($CORPUS generate "$T/corpus" --cms "$T/cms.der")
check "the corpus has at least 1,000 cases ($n)" test "$n" -ge 1000

summary=$($CORPUS send --port "$SMTP_PORT" --jobs 4 --to bob@b.test --to colleague@a.test "$T/corpus" "$T/results")
diag "SMTP replies: $summary"
sent_smtp=$(wc -l < "$T/results")
accepted_smtp=$(grep -c ' 250$' "$T/results")
check "every SMTP transaction was answered" test "$sent_smtp" = $((2 * n))
if [ "$accepted_smtp" = "$sent_smtp" ]; then
	ok "every malformed message was accepted ($accepted_smtp)"
else
	not_ok "every malformed message was accepted ($accepted_smtp of $sent_smtp)" "$(grep -v ' 250$' "$T/results" | head -n 20)"
fi
submitted=0
for f in "$T"/corpus/*0-*.eml; do
	rig_submit "$f" alice@a.test bob@b.test && submitted=$((submitted + 1))
done
queue_kick
total=$((accepted_smtp + submitted))
check "everything accepted reaches the sink" wait_for 600 sink_has "$total"
wait_for 60 queue_empty
sleep 1
fault_result malformed-corpus $((sent_smtp + submitted)) "$total" "$(sink_count)" "$(queue_count)" "$(leaks b.test)"
check "no message was temp-failed by the milter" sh -c "! grep -q ': tempfail: ' $MILTER_LOG"
check "the inbound path saw the damaged CMS" grep -q ': not-decrypted: ' "$MILTER_LOG"
check "mislabelled ciphertext was encrypted, not passed" grep -q 'labelled S/MIME but not well-formed' "$MILTER_LOG"
check "intact ciphertext passed as it is" grep -q ': pass: already encrypted (smime-enveloped)' "$MILTER_LOG"
check "the milter survived" milter_alive
rig_done
