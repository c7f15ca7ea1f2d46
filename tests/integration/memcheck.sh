#!/bin/sh
# Memory errors and leaks over a batch of real mail: the milter runs under
# valgrind memcheck (in the AddressSanitizer build: under LeakSanitizer)
# while Postfix hands it outbound mail to encrypt, mixed recipients to
# split, inbound mail to decrypt and verify, and malformed mail; then it is
# stopped cleanly and the report must show no errors and no definite leaks.
RIG_PORT=12130
. "$top_srcdir/tests/integration/rig.sh"

if ldd "$MILTER" | grep -q libasan; then
	TOOL=lsan
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
else
	TOOL=valgrind
	if ! command -v valgrind >/dev/null 2>&1; then
		echo "1..0 # SKIP valgrind is not installed (run tools/install-deps)"
		exit 0
	fi
	MILTER_WRAPPER="valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
		--errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=no --num-callers=30
		--log-file=$T/valgrind.log"
	MILTER_START_TICKS=1200
fi

rig_config "ReinjectTo inet:$REINJECT_PORT@127.0.0.1" "ReinjectKey $T/reinject.key" "Policy b.test require" \
	"Policy a.test Sign=yes" "SignUnauthenticated yes" "TrustAnchors $T/anchors.pem"
keyctl generate bob@b.test --smime >/dev/null
keyctl generate alice@a.test --smime >/dev/null
keyctl generate colleague@a.test --smime --algo p256 >/dev/null
keyctl export colleague@a.test > "$T/colleague.pem"
keyctl export alice@a.test --private --out "$T/alice.pem"
cp "$T/alice.pem" "$T/anchors.pem"
rig_postfix "milter_content_timeout = 600s" "milter_command_timeout = 120s"
rig_sink
rig_milter
diag "milter under $TOOL"
$MAILTOOL make "$T/plain.eml" plain
$MAILTOOL make "$T/att.eml" html-attachment

sent=0
send() { rig_send "$@" && sent=$((sent + 1)); }
# Outbound: encrypt (and sign), split keyed/keyless and Bcc, refuse a keyless require recipient.
for i in 1 2 3; do send "$T/plain.eml" alice@a.test bob@b.test; done
send "$T/att.eml" alice@a.test bob@b.test
send "$T/plain.eml" alice@a.test bob@b.test carol@c.test
send "$T/plain.eml" alice@a.test bob@b.test colleague@a.test dave@d.test
rig_send "$T/plain.eml" alice@a.test zed@b.test
check "require without a key is refused" test $? = 4
# Inbound: decrypt (CBC, GCM, EC key), verify a clear-signed message, damaged CMS.
printf 'Content-Type: text/plain\r\n\r\nPLAINTEXT-MARKER inbound\r\n' > "$T/inner.txt"
for c in aes-256-cbc aes-256-gcm; do
	openssl cms -encrypt -binary -$c -in "$T/inner.txt" -out "$T/$c.smime" "$T/colleague.pem"
	$MAILTOOL smime-message "$T/$c.smime" "$T/$c.eml" --header "From: x@x.test" --header "Subject: in"
	send "$T/$c.eml" x@x.test colleague@a.test
done
openssl cms -sign -in "$T/inner.txt" -signer "$T/alice.pem" -out "$T/signed.eml" 2>/dev/null
send "$T/signed.eml" alice@a.test colleague@a.test
head -c 600 "$T/aes-256-cbc.eml" > "$T/cut.eml"
send "$T/cut.eml" x@x.test colleague@a.test
printf 'From: x@x.test\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\nPLAINTEXT-MARKER\r\n' > "$T/bad.eml"
send "$T/bad.eml" alice@a.test bob@b.test
check "the batch was accepted ($sent messages)" test "$sent" = 11
check "the batch was delivered" wait_for 300 sink_has 13
check "the inbound copies were decrypted" test "$(grep -c ': decrypted: ' "$MILTER_LOG")" -ge 2

# Stop it cleanly: libmilter takes a few seconds; valgrind writes its report at exit.
kill -TERM "$MILTER_PID"
stopped=no
for _ in $(seq 1 1200); do
	kill -0 "$MILTER_PID" 2>/dev/null || { stopped=yes; break; }
	sleep 0.1
done
wait "$MILTER_PID" 2>/dev/null
status=$?
MILTER_PID=
check "the milter stopped on SIGTERM" test "$stopped" = yes
if [ "$TOOL" = valgrind ]; then
	diag "$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|in use at exit' "$T/valgrind.log" | sed 's/^==[0-9]*== //')"
	check "valgrind: no memory errors" grep -q 'ERROR SUMMARY: 0 errors' "$T/valgrind.log"
	check "valgrind: no definite leaks" sh -c "! grep -q 'definitely lost: [1-9]' $T/valgrind.log"
	check "valgrind: exit status clean ($status)" test "$status" = 0
	[ "$TAP_FAILED" = 0 ] || diag "$(head -n 80 "$T/valgrind.log")"
else
	check "LeakSanitizer: clean exit ($status)" test "$status" = 0
fi
rig_done
