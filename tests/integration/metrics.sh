#!/bin/sh
# Metrics through a real Postfix: each kind of message moves
# cables_messages_total by exactly one in its own series and nothing else
# but its direction's processing-time histogram (whose _count is the number
# of messages) and the keyholder calls it made; cables-keyd's lookups move
# its counters the same way; cables-keyctl stats prints the same numbers;
# the text is valid exposition format (promtool check metrics when it is
# there, and our parser always); the endpoint answers GET /metrics only,
# bounds a request's size, names no address or domain, and MetricsListen
# refuses a non-loopback address at -n.
RIG_PORT=12730
. "$top_srcdir/tests/integration/rig.sh"

MPORT=$((RIG_PORT + 3))
KMPORT=$((RIG_PORT + 4))
NODNS=$((RIG_PORT + 5))	# nothing answers there: keyd's DNS questions go unanswered
MT="$PY $SRC/tests/integration/metrics.py"

# A refusal at -n, before anything starts.
for spec in 0.0.0.0:$MPORT 192.0.2.1:$MPORT "[::]:$MPORT" inet:$MPORT@10.1.2.3; do
	rig_config "MetricsListen $spec"
	if out=$("$MILTER" -n -c "$CONF" 2>&1); then
		not_ok "MetricsListen $spec: refused at -n" "$out"
	else
		check "MetricsListen $spec: refused at -n, saying why" sh -c "echo '$out' | grep -q 'not a loopback address'"
	fi
done
rig_config "KeydMetricsListen 0.0.0.0:$KMPORT" "KeydSocket $T/keyd.sock"
check "KeydMetricsListen 0.0.0.0: refused by cables-keyd -n" sh -c "! $BUILD/cables-keyd -n -c $CONF"
for spec in 127.0.0.1:$MPORT "[::1]:$MPORT" inet:$MPORT@127.0.0.1; do
	rig_config "MetricsListen $spec"
	check "MetricsListen $spec: accepted at -n" "$MILTER" -n -c "$CONF"
done

rig_config "MetricsListen 127.0.0.1:$MPORT" \
	"Policy n.test never" \
	"Policy t.test require" \
	"Policy r.test require On-KeyNotFound=reject" \
	"Policy held@a.test On-DecryptError=quarantine"
# keyd gets a configuration of its own: the milter's has KeydSocket none (keys from the store only).
sed -e "s|^KeydSocket none|KeydSocket $T/keyd.sock|" "$CONF" > "$T/keyd.conf"
printf 'KeydMetricsListen 127.0.0.1:%s\nResolver 127.0.0.1@%s\nLookupTimeout 1s\nDNSSECTrustAnchor %s\n' \
	"$KMPORT" "$NODNS" "$T/root.ds" >> "$T/keyd.conf"
echo '. 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D' > "$T/root.ds"
rig_postfix
rig_sink
rig_milter
"$BUILD/cables-keyd" -f -c "$T/keyd.conf" 2>>"$T/keyd.stderr" &
echo $! >> "$T/pids"
wait_for 10 test -S "$T/keyd.sock" || not_ok "cables-keyd starts" "$(cat "$T/keyd.stderr")"

keyctl generate bob@b.test --smime >/dev/null
keyctl generate carol@c.test --pgp >/dev/null
keyctl generate alice@a.test --smime >/dev/null
keyctl export alice@a.test > "$T/alice-cert.pem"
keyctl generate eve@e.test --smime >/dev/null	# someone whose secret key is not held for held@a.test
keyctl export eve@e.test > "$T/eve-cert.pem"
$MAILTOOL make "$T/plain.eml" plain

# scrape NAME [PORT]: the milter's (or PORT's) /metrics into $T/NAME.prom; the text checked.
scrape() {
	$MT get "${2:-$MPORT}" /metrics > "$T/$1.http" || return 1
	sed '1,2d' "$T/$1.http" > "$T/$1.prom"
	$MT check "$T/$1.prom"
}

# The parser is tried on broken texts first, so that a checker that finds nothing cannot pass.
printf '# HELP a_total x\n# TYPE a_total counter\na_total 1\na_total 2\n' > "$T/bad1"
printf 'b_total 1\n' > "$T/bad2"
printf '# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1\n' > "$T/bad3"
printf '# HELP h x\n# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 0\nh_count 1\n' > "$T/bad4"
printf '# HELP c_total x\n# TYPE c_total counter\nc_total{a="x",a="y"} 1\n' > "$T/bad5"
for bad in bad1 bad2 bad3 bad4 bad5; do
	check "metrics.py refuses a broken text ($bad: $(tail -n 1 "$T/$bad"))" sh -c "! $MT check $T/$bad >/dev/null"
done

check "GET /metrics: 200, text/plain version 0.0.4" sh -c \
	"$MT get $MPORT /metrics | sed -n 1p | grep -qx '200 text/plain; version=0.0.4; charset=utf-8'"
scrape s0 || not_ok "the first scrape parses" "$(cat "$T/s0.prom" | head -n 5)"
check "the first scrape parses as exposition format" $MT check "$T/s0.prom"

N=0
# moves DESCRIPTION EXPECTED: the counters changed since the last scrape by EXPECTED
# ("series +N" lines; keyholder calls and the certificate cache are left out, checked apart).
moves() {
	prev=s$N
	N=$((N + 1))
	scrape "s$N"
	$MT diff "$T/$prev.prom" "$T/s$N.prom" | grep -v -e '^cables_keyholder_' -e '^cables_certificate_cache' \
		> "$T/moved" || true
	printf '%s\n' "$2" | sed '/^$/d' | sort > "$T/expected"
	sort -o "$T/moved" "$T/moved"
	if cmp -s "$T/moved" "$T/expected"; then
		ok "$1: the counters moved by exactly the expected amounts"
	else
		not_ok "$1: the counters moved by exactly the expected amounts" "expected:" "$(cat "$T/expected")" \
			"moved:" "$(cat "$T/moved")"
	fi
}
OUT='cables_message_processing_seconds_count{direction="outbound"} +1'
IN='cables_message_processing_seconds_count{direction="inbound"} +1'

rig_send "$T/plain.eml" alice@a.test bob@b.test
wait_for 30 sink_has 1
moves "outbound S/MIME" "cables_messages_total{direction=\"outbound\",verdict=\"encrypted\",format=\"smime\"} +1
$OUT"

rig_send "$T/plain.eml" alice@a.test carol@c.test
wait_for 30 sink_has 2
moves "outbound PGP/MIME" "cables_messages_total{direction=\"outbound\",verdict=\"encrypted\",format=\"pgp\"} +1
$OUT"

rig_send "$T/plain.eml" alice@a.test dave@d.test
wait_for 30 sink_has 3
moves "outbound plaintext by policy (encrypt, no key)" \
	"cables_messages_total{direction=\"outbound\",verdict=\"plaintext-by-policy\",format=\"none\"} +1
$OUT"

rig_send "$T/plain.eml" alice@a.test nick@n.test
wait_for 30 sink_has 4
moves "outbound to a never recipient" "cables_messages_total{direction=\"outbound\",verdict=\"passed\",format=\"none\"} +1
$OUT"

rig_send "$T/plain.eml" alice@a.test tom@t.test
check "require, no key, On-KeyNotFound tempfail: 4xx" test $? = 4
moves "outbound temp-failed" "cables_messages_total{direction=\"outbound\",verdict=\"temp-failed\",format=\"none\"} +1
$OUT"

rig_send "$T/plain.eml" alice@a.test rob@r.test
check "require, On-KeyNotFound=reject: 5xx" test $? = 5
moves "outbound rejected" "cables_messages_total{direction=\"outbound\",verdict=\"rejected\",format=\"none\"} +1
$OUT"

# Inbound: plain, S/MIME for alice (decrypted through the keyholder), S/MIME alice cannot open (held).
rig_send "$T/plain.eml" bob@b.test alice@a.test
wait_for 30 sink_has 5
moves "inbound plain" "cables_messages_total{direction=\"inbound\",verdict=\"passed\",format=\"none\"} +1
$IN"

printf 'Content-Type: text/plain\r\n\r\nPLAINTEXT-MARKER\r\n' > "$T/inner.txt"
openssl cms -encrypt -aes-256-cbc -in "$T/inner.txt" -binary -out "$T/for-alice.p7" "$T/alice-cert.pem"
$MAILTOOL smime-message "$T/for-alice.p7" "$T/for-alice.eml" --header "From: Bob <bob@b.test>" \
	--header "To: alice@a.test" --header "Subject: for alice"
scrape kh0
rig_send "$T/for-alice.eml" bob@b.test alice@a.test
wait_for 30 sink_has 6
moves "inbound S/MIME decrypted" "cables_messages_total{direction=\"inbound\",verdict=\"decrypted\",format=\"smime\"} +1
$IN"
check "the decryption's keyholder call is counted: one rsa-decrypt answered ok" test \
	"$($MT diff "$T/kh0.prom" "$T/s$N.prom" | grep '^cables_keyholder_')" = \
	'cables_keyholder_operations_total{operation="rsa-decrypt",result="ok"} +1'

openssl cms -encrypt -aes-256-cbc -in "$T/inner.txt" -binary -out "$T/for-eve.p7" "$T/eve-cert.pem"
$MAILTOOL smime-message "$T/for-eve.p7" "$T/for-held.eml" --header "From: Bob <bob@b.test>" \
	--header "To: held@a.test" --header "Subject: not for held"
rig_send "$T/for-held.eml" bob@b.test held@a.test
check "undecryptable, On-DecryptError=quarantine: accepted" test $? = 0
moves "inbound S/MIME held" "cables_messages_total{direction=\"inbound\",verdict=\"held\",format=\"smime\"} +1
$IN"
check "held: the message is in Postfix's hold queue" sh -c "postqueue -c $PF -j | grep -q '\"queue_name\": *\"hold\"'"

# The histograms count every message: _count is the sum over the verdicts, per direction.
for d in inbound outbound; do
	sum=$(grep "^cables_messages_total{direction=\"$d\"" "$T/s$N.prom" | awk '{ n += $2 } END { print n + 0 }')
	count=$($MT value "$T/s$N.prom" "cables_message_processing_seconds_count{direction=\"$d\"}")
	check "$d: the histogram's _count ($count) is the number of messages ($sum)" test "$count" = "$sum"
done
check "outbound: 6 messages, inbound: 3" test \
	"$($MT value "$T/s$N.prom" 'cables_message_processing_seconds_count{direction="outbound"}') $($MT value \
	"$T/s$N.prom" 'cables_message_processing_seconds_count{direction="inbound"}')" = "6 3"

# No address, domain or host name among the labels (or anywhere in the text).
check "the text names no address or domain" sh -c "! grep -E '@|[a-z]\\.test|mx\\.' $T/s$N.prom"

# cables-keyd: a lookup from the store, one no DNS answers.
scrape k0 "$KMPORT"
check "cables-keyd's text parses as exposition format" $MT check "$T/k0.prom"
"$KEYCTL" -c "$T/keyd.conf" lookup bob@b.test > /dev/null
"$KEYCTL" -c "$T/keyd.conf" lookup nobody@x.test > /dev/null 2>&1
scrape k1 "$KMPORT"
# (Unresponsive-domain marks are left out: whether a silent domain is marked or spared depends on
# the resolver's answers to keyd's probes; keyd_lists.sh tests them.)
$MT diff "$T/k0.prom" "$T/k1.prom" | grep -v '^cables_keyd_unresponsive_marks_total' > "$T/kmoved"
cat > "$T/kexpected" <<-'EOF'
cables_keyd_dns_answers_total{type="openpgpkey",dnssec="tempfail"} +1
cables_keyd_dns_answers_total{type="smimea",dnssec="tempfail"} +1
cables_keyd_keys_answered_total{source="generated",dnssec="not-dns"} +1
cables_keyd_lookups_total{result="found"} +1
cables_keyd_lookups_total{result="tempfail"} +1
EOF
check "cables-keyd: a store answer and an unanswered discovery move exactly their counters" cmp "$T/kmoved" "$T/kexpected"

# cables-keyctl stats: the same numbers as both endpoints (nothing moves meanwhile; keyd.conf has both).
"$KEYCTL" -c "$T/keyd.conf" stats > "$T/stats" 2>&1
scrape s_last
scrape k_last "$KMPORT"
sed -n '/^# cables-keyd/,/^# cables-milter/p' "$T/stats" | grep -v '^#' | sort > "$T/stats.keyd"
$MT samples "$T/k_last.prom" > "$T/samples.keyd"
check "cables-keyctl stats: cables-keyd's numbers are those of KeydMetricsListen" cmp "$T/stats.keyd" "$T/samples.keyd"
sed -n '/^# cables-milter/,$p' "$T/stats" | grep -v '^#' | sort > "$T/stats.milter"
$MT samples "$T/s_last.prom" > "$T/samples.milter"
check "cables-keyctl stats: the milter's numbers are those of MetricsListen" cmp "$T/stats.milter" "$T/samples.milter"

# The endpoint: GET /metrics only, bounded requests.
for path in / /metrics/ /metricsx /metrics/../etc "/metrics?x=1"; do
	status=$($MT get "$MPORT" "$path" | sed -n 1p | cut -d' ' -f1)
	case "$path" in
	"/metrics?x=1") check "GET $path: 200 (a query string is ignored)" test "$status" = 200 ;;
	*) check "GET $path: 404" test "$status" = 404 ;;
	esac
done
check "GET /metrics with Host: localhost:PORT: 200" sh -c \
	"$MT get $MPORT /metrics GET localhost:$MPORT | sed -n 1p | grep -q '^200 '"
check "GET /metrics with Host: a name of someone else's (DNS rebinding): 403" sh -c \
	"$MT get $MPORT /metrics GET rebind.example:$MPORT | sed -n 1p | grep -q '^403 '"
for method in POST PUT DELETE; do
	check "$method /metrics: 405" sh -c "$MT get $MPORT /metrics $method | sed -n 1p | grep -q '^405 '"
done
status=$($MT big "$MPORT" 65536)
check "a 64 KB request header (Host: localhost): refused with 431 or closed, not served ($status)" \
	sh -c "[ '$status' = 431 ] || [ '$status' = closed ]"
status=$($MT big "$MPORT" 4096)
check "... while a 4 KB one is served ($status)" test "$status" = 200
check "the endpoint still answers after it" sh -c "$MT get $MPORT /metrics | sed -n 1p | grep -q '^200 '"
check "the milter still filters after it" sh -c "kill -0 $MILTER_PID"
# Slow clients take the endpoint's few connections (and time out): mail goes on, counted.
$MT hold "$MPORT" 24 4 "$T/hold.ready" &
hold_pid=$!
wait_for 10 test -f "$T/hold.ready"
before=$($MT value "$T/s_last.prom" 'cables_message_processing_seconds_count{direction="outbound"}')
rig_send "$T/plain.eml" alice@a.test nick@n.test
check "24 slow clients on the endpoint: mail is still accepted" test $? = 0
wait "$hold_pid"
wait_for 10 sh -c "$MT get $MPORT /metrics > $T/after-hold.http"
sed '1,2d' "$T/after-hold.http" > "$T/after-hold.prom"
check "after them, the endpoint answers and counted that message" test \
	"$($MT value "$T/after-hold.prom" 'cables_message_processing_seconds_count{direction="outbound"}')" = $((before + 1))

if command -v promtool >/dev/null 2>&1 || [ -x "${PROMTOOL:-}" ]; then
	pt=${PROMTOOL:-promtool}
	check "promtool check metrics: the milter's text" sh -c "$pt check metrics < $T/s_last.prom"
	check "promtool check metrics: cables-keyd's text" sh -c "$pt check metrics < $T/k_last.prom"
else
	diag "promtool not found (PROMTOOL=path/to/promtool to use one): checked by metrics.py only"
fi

# A port another local user took first: the milter runs without metrics and filters mail all the same
# (not being able to serve counters must never stop mail, nor let it leave unencrypted).
rig_milter_stop
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); open(sys.argv[2], "w").close(); time.sleep(60)' \
	"$MPORT" "$T/squat.ready" &
squat=$!
wait_for 10 test -f "$T/squat.ready"
rig_milter
check "MetricsListen port taken by another process: the milter starts all the same" kill -0 "$MILTER_PID"
check "... and says it runs without metrics" \
	sh -c "grep -q 'MetricsListen .*running without metrics' $T/milter.stderr"
rig_send "$T/plain.eml" alice@a.test nick@n.test
check "... and filters mail" test $? = 0
kill "$squat" 2>/dev/null
wait "$squat" 2>/dev/null

check "no sanitizer reports from cables-keyd" sh -c "! grep -qE 'AddressSanitizer|runtime error:' $T/keyd.stderr"
rig_done
