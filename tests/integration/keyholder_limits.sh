#!/bin/sh
# cables-keyholder's connection limits (issue 14): KeyholderClients caps the
# connections served at once and KeyholderIdleTimeout closes a connection
# that sends nothing.  A local client that opens connections and sends
# nothing cannot lock the milter out: when every slot is taken the
# connection idle the longest makes room, and the milter still decrypts;
# connections in the middle of a request are never closed for a newcomer,
# which is refused instead; every closing is logged.  And the rate buckets:
# junk that fails to unwrap spends the failure bucket, not the decrypt
# bucket, so alice's valid mail still opens; past the failure bucket junk
# gets substitute keys that cost a decrypt token like a success (so the
# bucket tells nothing of the padding); the decrypt bucket still limits.
RIG_PORT=12630
. "$top_srcdir/tests/integration/rig.sh"

mkdir -p "$T/store"
rig_config "KeyStore $T/store/keys.db" "KeyholderClients 4" "KeyholderIdleTimeout 6s"
keyctl generate alice@a.test --smime >/dev/null
keyctl export alice@a.test > "$T/alice-cert.pem"
rig_postfix
rig_sink
rig_milter
KH_SOCK=$T/keyholder.sock
KH_LOG=$T/keyholder.log

printf 'Content-Type: text/plain\r\n\r\nthe plan PLAINTEXT-MARKER\r\n' > "$T/inner.txt"
openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -out "$T/in.p7m" -recip "$T/alice-cert.pem"
$MAILTOOL smime-message "$T/in.p7m" "$T/in.eml" --header "From: <eve@e.test>" --header "To: <alice@a.test>" \
	--header "Subject: inbound"
decrypted() {
	if rig_send "$T/in.eml" eve@e.test alice@a.test && w=$(capture); then
		check "$1" grep -q PLAINTEXT-MARKER "$w"
	else
		not_ok "$1" "$REPLY"
	fi
}

# hold N SECONDS PREFIX-HEX OUT (HOLD_AS: a command before python, HOLD_SOCK: another keyholder's socket): N connections to the keyholder that send PREFIX (nothing, or the start of
# a request) and then nothing; OUT.ready once all are connected; after SECONDS (or once all are closed),
# in OUT, one line per connection the keyholder closed: seconds after OUT.ready.
hold() {
	# shellcheck disable=SC2086
	${HOLD_AS:-} $PY - "${HOLD_SOCK:-$KH_SOCK}" "$@" <<-'PY' &
	import select, socket, sys, time
	path, n, secs, prefix, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), bytes.fromhex(sys.argv[4]), sys.argv[5]
	socks = []
	for _ in range(n):
	    s = socket.socket(socket.AF_UNIX)
	    s.connect(path)
	    if prefix:
	        s.sendall(prefix)
	    socks.append(s)
	start, closed = time.time(), {}
	open(out + ".ready", "w").write("ready\n")
	while time.time() - start < secs and len(closed) < n:
	    r, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.1)
	    for s in r:
	        try:
	            data = s.recv(2048)
	        except OSError:
	            data = b""
	        if data == b"":
	            closed[s] = time.time() - start
	open(out, "w").write("".join("%.2f\n" % t for t in sorted(closed.values())))
	PY
	echo $! >> "$T/pids"
	HOLD_PID=$!
}
# closed OUT FROM TO: how many connections of OUT the keyholder closed between FROM and TO seconds.
closed() { awk -v a="$2" -v b="$3" '$1 >= a && $1 < b { n++ } END { print n + 0 }' "$1"; }

decrypted "decrypted through the keyholder (the milter keeps its connection)"

# Ten connections that send nothing, against four slots (KeyholderClients 4).
hold 10 14 "" "$T/idle"
wait_for 10 test -f "$T/idle.ready"
decrypted "ten idle connections hold every slot: the milter still decrypts (it takes the slot idle the longest)"
wait "$HOLD_PID"
check "idle connections: six closed at once to make room (10 against 4 slots; a 7th for the milter)" \
	test "$(closed "$T/idle" 0 2)" -ge 6
check "idle connections: the rest closed within 14 s (one for the milter, the others after KeyholderIdleTimeout)" \
	test "$(closed "$T/idle" 0 14)" = 10
check "idle connections: at least three lasted until KeyholderIdleTimeout (6 s)" test "$(closed "$T/idle" 5.5 14)" -ge 3
check "keyholder: making room is logged" \
	test "$(grep -c 'closed: idle for [0-9]* ms, its slot given to a new client of uid [0-9]* (KeyholderClients 4)' "$KH_LOG")" -ge 7
check "keyholder: the idle timeout is logged" grep -q 'closed: idle for [0-9]* s (KeyholderIdleTimeout)' "$KH_LOG"

# Connections that begin a request and stop: a begun request does not keep its slot either.
hold 6 3 "434b4831" "$T/begun"
wait_for 10 test -f "$T/begun.ready"
decrypted "six begun requests hold every slot: the milter still decrypts"
wait "$HOLD_PID"
check "begun requests: the two oldest closed at once to make room" test "$(closed "$T/begun" 0 2)" -ge 2
check "keyholder: the milter's requests were answered each time" \
	test "$(grep -c 'alice@a.test rsa-decrypt .*: ok' "$KH_LOG")" = 3

# Fairness between peers: a second keyholder serving a milter User (nobody) and a KeydUser (sys).
# One peer flooding the slots closes only its own connections, never the other peer's:
# a compromised keyd (it faces the network) cannot keep closing the milter's, nor a
# compromised milter keyd's.
NGID=$(id -g nobody)
sed -e "s|^KeyholderSocket .*|KeyholderSocket $T/kh2/keyholder.sock|" \
	-e "s|^KeyholderLogFile .*|KeyholderLogFile $T/kh2.log|" "$CONF" > "$T/kh2.conf"
printf 'User nobody\nKeydUser sys\n' >> "$T/kh2.conf"
mkdir -p "$T/kh2"
start_keyholder "$T/kh2.conf"
F=$T/fair	# where the peers' helpers, as nobody and sys, write what they saw
mkdir -p "$F" && chmod 777 "$F"
as() { echo "env -C / setpriv --reuid=$(id -u "$1") --regid=$NGID --clear-groups"; }
fair() {	# fair VICTIM FLOODER TAG
	HOLD_SOCK=$T/kh2/keyholder.sock HOLD_AS=$(as "$1") hold 1 4 "" "$F/$3-one"
	wait_for 10 test -f "$F/$3-one.ready"
	HOLD_SOCK=$T/kh2/keyholder.sock HOLD_AS=$(as "$2") hold 8 4 "" "$F/$3-flood"
	wait_for 10 test -f "$F/$3-flood.ready"
	wait_for 10 test -f "$F/$3-one"
	wait_for 10 test -f "$F/$3-flood"
	check "fairness ($3): $2's eight connections against four slots close five of its own" \
		test "$(closed "$F/$3-flood" 0 4)" = 5
	check "fairness ($3): $1's one idle connection is not closed for $2's" test "$(closed "$F/$3-one" 0 4)" = 0
}
fair nobody sys keyd-floods
fair sys nobody milter-floods
check "fairness: making room is logged with the newcomer's uid" \
	grep -q "peer uid $(id -u sys) pid [0-9]* closed: idle for [0-9]* ms, its slot given to a new client of uid $(id -u sys)" "$T/kh2.log"

# --- Rate buckets (issue 14): junk that fails to unwrap spends the failure bucket first. ---
# Junk: mail to alice whose RecipientInfo names her certificate but whose encrypted key is random, as
# any sender can make.  Decrypt bucket 3, failure bucket 2: the first two junk messages are answered
# failed and charged to the failure bucket; the third gets a substitute key and a decrypt token, as a
# conforming block would (a bucket that paid only for conforming blocks would be a padding oracle); so
# two valid messages open and the third is rate-limited.
rig_milter_stop
stop_keyholder "$CONF"
rig_config "KeyStore $T/store/keys.db" "KeyholderClients 4" "KeyholderDecryptRateLimit 3" "KeyholderFailureRateLimit 2" \
	"Policy a.test On-DecryptError=tempfail"
rig_milter
: > "$T/junk.codes"
for i in 1 2 3; do
	openssl cms -encrypt -binary -aes-256-cbc -in "$T/inner.txt" -outform DER -out "$T/junk.der" -recip "$T/alice-cert.pem"
	/usr/bin/python3 - "$T/junk.der" <<-'PY'
	import os, sys
	d = open(sys.argv[1], "rb").read()
	i = d.find(b"\x04\x82\x01\x80")	# the 384-byte encryptedKey of RSA-3072
	open(sys.argv[1], "wb").write(d[:i + 4] + b"\x00" + os.urandom(383) + d[i + 4 + 384:])
	PY
	openssl cms -cmsout -inform DER -in "$T/junk.der" -outform SMIME -out "$T/junk.p7m"
	$MAILTOOL smime-message "$T/junk.p7m" "$T/junk.eml" --header "From: <eve@e.test>" --header "To: <alice@a.test>" \
		--header "Subject: junk $i"
	rig_send "$T/junk.eml" eve@e.test alice@a.test
	echo "$?" >> "$T/junk.codes"
done
check "junk: the keyholder answered the first two failed (KeyholderFailureRateLimit 2)" \
	test "$(grep 'alice@a.test rsa-decrypt fingerprint=[0-9a-f]*: failed: ' "$KH_LOG" | grep -vc 'substitute key')" = 2
check "junk: and the third with a substitute key, logged as a failure" \
	test "$(grep -c 'alice@a.test rsa-decrypt .*(over KeyholderFailureRateLimit: answered with a substitute key)' "$KH_LOG")" = 1
check "junk: none was rate-limited" sh -c "! grep -q 'alice@a.test rsa-decrypt .*rate-limited' '$KH_LOG'"
# The milter cannot open junk with a substitute key either (bad CBC padding; 1 in 256 would "open" to garbage).
check "junk: the milter temp-failed the two answered failed, and the third but 1 time in 256 (On-DecryptError tempfail)" \
	test "$(head -n 2 "$T/junk.codes" | grep -c '^4$')" = 2
decrypted "after three junk messages (decrypt bucket 3, one token spent on the substitute): alice's valid mail is decrypted"
decrypted "... and again"
rig_send "$T/in.eml" eve@e.test alice@a.test
check "the substitute cost a decrypt token: a third valid message is temp-failed" test $? = 4
check "... the keyholder said rate-limited (KeyholderDecryptRateLimit)" \
	grep -q 'alice@a.test rsa-decrypt .*rate-limited: more than 3 decryptions a minute (KeyholderDecryptRateLimit)' "$KH_LOG"

# The limit is checked: KeyholderClients 0 is refused.
sed -e 's/^KeyholderClients .*/KeyholderClients 0/' "$CONF" > "$T/zero.conf"
out=$("$BUILD/cables-keyholder" -n -c "$T/zero.conf" 2>&1)
check "KeyholderClients 0 is refused with a clear message" \
	test "$?:$(echo "$out" | grep -c 'KeyholderClients 0: not between 1 and 4096')" = "1:1"
rig_done
