# rig.sh - sourced by the integration tests.
#
# Runs real parts on loopback, in a private directory: a Postfix instance
# (its own main.cf/master.cf/queue, smtpd on a test port, DNS disabled), an
# smtp-sink that captures what goes on the wire, cables-milter and
# cables-keyctl from the build tree.  Output is TAP; the plan is printed by
# rig_done.  Every process started here is stopped on exit.
#
# Ports: a test sets RIG_PORT=BASE (a number, before sourcing rig.sh) and
# owns the block [BASE, BASE + RIG_PORTS); RIG_PORTS is 10 unless the test
# sets it too (exchange.sh: 13).  rig.sh takes BASE (smtpd), BASE+1 (the
# re-injection listener) and BASE+2 (smtp-sink); a test derives every other
# port from RIG_PORT ("DNSPORT=$((RIG_PORT + 5))"), never writes one as a
# number, and stays inside its block.  tests/integration/port_blocks.sh
# checks that, and that no two tests' blocks overlap (make -j check runs
# them side by side): pick a free block from its output.  CABLES_PORT_OFFSET
# moves every test's block, so that two trees can run their suites side by
# side.

set -u
: "${top_builddir:=.}"
: "${top_srcdir:=..}"
BUILD=$(cd "$top_builddir" && pwd)
SRC=$(cd "$top_srcdir" && pwd)
MILTER=$BUILD/cables-milter
KEYCTL=$BUILD/cables-keyctl
PY=/usr/bin/python3
MAILTOOL="$PY $SRC/tests/integration/mailtool.py"
POSTFIX_INSTANCE_SH=$SRC/tools/postfix-instance.sh
. "$POSTFIX_INSTANCE_SH"

if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP integration tests start Postfix instances and need root"
	exit 0
fi
for tool in postfix smtp-sink openssl "$PY"; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed (run tools/install-deps)"
		exit 0
	fi
done

# Short paths: the GnuPG agent socket and unix socket names have length limits.
T=$(mktemp -d /tmp/cit.XXXXXX)
chmod 755 "$T"
RIG_PORT=$((${RIG_PORT:-12000} + ${CABLES_PORT_OFFSET:-0}))
SMTP_PORT=$RIG_PORT
REINJECT_PORT=$((RIG_PORT + 1))
SINK_PORT=$((RIG_PORT + 2))
PF=$T/pf
SINK=$T/sink
CONF=$T/cables.conf
MILTER_LOG=$T/milter.log
MILTER_PID=
SINK_PID=
TAP_N=0
TAP_FAILED=0

rig_cleanup() {
	postfix_instance_stop "$PF"
	for d in "$T"/*/pf; do postfix_instance_stop "$d"; done
	[ -f "$T/pids" ] && while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$T/pids"
	[ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2>/dev/null
	[ -n "$SINK_PID" ] && kill -9 "$SINK_PID" 2>/dev/null
	pkill -9 -f "smtp-sink -u postfix -d $T/" 2>/dev/null
	pkill -9 -f "homedir $T/" 2>/dev/null
	if [ "$TAP_FAILED" != 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
		echo "# test directory kept: $T"
	else
		rm -rf "$T"
	fi
}
trap rig_cleanup EXIT
trap 'exit 1' INT TERM

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() {
	TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $1"; shift
	for line in "$@"; do printf '%s\n' "$line" | sed 's/^/#   /'; done
}
# check DESCRIPTION COMMAND...: ok when the command succeeds; its output is shown on failure.
check() {
	desc=$1; shift
	if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "command: $*" "$out"; fi
}
diag() { printf '%s\n' "$*" | sed 's/^/# /'; }
# rig_done: no milter (nor keyholder) reported a sanitizer error (ASan/UBSan build), then the plan.
rig_done() {
	for f in "$T/milter.stderr" "$T"/*/milter.stderr; do
		[ -f "$f" ] || continue
		if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
			not_ok "no sanitizer reports from the milter ($f)" "$(head -n 40 "$f")"
		else
			ok "no sanitizer reports from the milter ($(basename "$(dirname "$f")"))"
		fi
	done
	for f in "$T"/keyholder.stderr "$T"/*/keyholder.stderr; do
		[ -f "$f" ] || continue
		if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$f"; then
			not_ok "no sanitizer reports from the keyholder ($f)" "$(head -n 40 "$f")"
		fi
	done
	echo "1..$TAP_N"
	[ "$TAP_FAILED" = 0 ]
}

# rig_postfix [LINE...]: a Postfix instance relaying every remote domain to
# the sink; each argument is one more main.cf line.
rig_postfix() {
	if ! postfix_instance "$PF" "$SMTP_PORT" "$REINJECT_PORT" "$SINK_PORT" "unix:$T/milter.sock" a.test "$@"; then
		echo "Bail out! postfix does not start"
		exit 1
	fi
}

rig_sink() {
	mkdir -p "$SINK"
	chown postfix "$SINK"
	smtp-sink -u postfix -d "$SINK/%H%M%S." "127.0.0.1:$SINK_PORT" 256 >"$T/sink.log" 2>&1 &
	SINK_PID=$!
}

rig_sink_stop() {
	[ -n "$SINK_PID" ] && kill -9 "$SINK_PID" 2>/dev/null
	wait "$SINK_PID" 2>/dev/null
	SINK_PID=
}

# rig_config [LINE...]: the test cables.conf; each argument is one more line
# (replacing the default line for the same key).  Header protection and
# padding are off here so that a test can compare what it decrypts with the
# entity it sent; hp_*.sh and padding.sh turn them on (the shipped defaults).
# On-KeyNotFound is tempfail here, as before hold became the default, so
# that tests of a 4xx need not say so; hold_*.sh set hold.
rig_config() {
	cat > "$CONF.defaults" <<-CF
	Socket unix:$T/milter.sock
	SocketGroup postfix
	KeyStore $T/keys.db
	KeyStoreKey $T/store.key
	LocalDomains a.test
	AuthservID mx.a.test
	TempDir $T
	GnuPGHome $T/gnupg
	KeydSocket none
	LogFile $MILTER_LOG
	ReinjectDaemonName cables-reinject
	KeyholderSocket $T/keyholder.sock
	KeyholderLogFile $T/keyholder.log
	HeaderProtection off
	Padding none
	On-KeyNotFound tempfail
	MailCommand /usr/sbin/sendmail -C $PF
	CF
	: > "$CONF"
	while read -r key value; do
		given=no
		for line in "$@"; do [ "${line%% *}" = "$key" ] && given=yes; done
		[ "$given" = no ] && printf '%s %s\n' "$key" "$value" >> "$CONF"
	done < "$CONF.defaults"
	rm -f "$CONF.defaults"
	for line in "$@"; do printf '%s\n' "$line" >> "$CONF"; done
}

# start_keyholder CONF: cables-keyholder for CONF's KeyholderSocket (when it is in $T), unless it runs
# already; its pid in SOCKET.rigpid.  KEYHOLDER_WRAPPER goes before the program.
start_keyholder() {
	kh_sock=$(sed -n 's/^KeyholderSocket[[:space:]]*//p' "$1" | tail -n 1)
	case "$kh_sock" in "$T"/*) ;; *) return 0 ;; esac
	if [ -f "$kh_sock.rigpid" ] && kill -0 "$(cat "$kh_sock.rigpid")" 2>/dev/null; then
		return 0
	fi
	rm -f "$kh_sock"
	# shellcheck disable=SC2086
	${KEYHOLDER_WRAPPER:-} "$BUILD/cables-keyholder" -f -c "$1" >>"${kh_sock%.sock}.stderr" 2>&1 &
	echo $! > "$kh_sock.rigpid"
	echo $! >> "$T/pids"
	wait_for 5 test -S "$kh_sock" && return 0
	echo "Bail out! cables-keyholder did not start: $(cat "${kh_sock%.sock}.stderr")"
	exit 1
}

# clock_ahead OFFSET (e.g. +15d): a KEYHOLDER_WRAPPER that runs the keyholder with its
# clock OFFSET ahead (libfaketime, package faketime).  env execs the
# program, so the pid the rig records and kills is the keyholder's (the
# faketime command forks and would leave it behind); the sanitizer
# runtime is told not to insist on coming first.
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
clock_ahead() {
	echo "env LD_PRELOAD=$FAKETIME_LIB FAKETIME=$1 ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}

# stop_keyholder CONF: stop CONF's keyholder (SIGKILL) and wait for it.
stop_keyholder() {
	kh_sock=$(sed -n 's/^KeyholderSocket[[:space:]]*//p' "$1" | tail -n 1)
	[ -f "$kh_sock.rigpid" ] || return 0
	kill -9 "$(cat "$kh_sock.rigpid")" 2>/dev/null
	wait_for 10 sh -c "! kill -0 $(cat "$kh_sock.rigpid") 2>/dev/null"
	rm -f "$kh_sock.rigpid" "$kh_sock"
}

# start_milter CONF SOCKET STDERR: start cables-milter in the background (and its keyholder,
# start_keyholder); the milter's pid in STARTED_PID.
# MILTER_WRAPPER (e.g. valgrind and its options) goes before the program.
start_milter() {
	start_keyholder "$1"
	# shellcheck disable=SC2086
	${MILTER_WRAPPER:-} "$MILTER" -f -c "$1" >>"$3" 2>&1 &
	STARTED_PID=$!
	echo "$STARTED_PID" >> "$T/pids"
	for _ in $(seq 1 "${MILTER_START_TICKS:-100}"); do
		[ -S "$2" ] && return 0
		sleep 0.05
	done
	echo "Bail out! cables-milter did not start: $(cat "$3")"
	exit 1
}

rig_milter() {
	start_milter "$CONF" "$T/milter.sock" "$T/milter.stderr"
	MILTER_PID=$STARTED_PID
}

# Stop at once (SIGKILL): libmilter takes seconds to honour SIGTERM.
rig_milter_stop() {
	[ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2>/dev/null
	wait "$MILTER_PID" 2>/dev/null
	MILTER_PID=
	rm -f "$T/milter.sock"
}

rig_milter_restart() { rig_milter_stop; rig_milter; }

# keyd_ask SOCKET LINE...: one request to the cables-keyd at SOCKET (the lines, then
# an empty line); the reply, up to its empty line, in $T/reply.
keyd_ask() {
	/usr/bin/python3 - "$@" > "$T/reply" <<-'PY'
	import socket, sys
	s = socket.socket(socket.AF_UNIX)
	s.settimeout(20)
	s.connect(sys.argv[1])
	s.sendall(("\n".join(sys.argv[2:]) + "\n\n").encode())
	data = b""
	while not data.endswith(b"\n\n"):
	    chunk = s.recv(65536)
	    if not chunk:
	        break
	    data += chunk
	sys.stdout.write(data.decode())
	PY
}

# rig_keyd: start cables-keyd with the test configuration (KeydSocket $T/keyd.sock); $KEYD_PID.
rig_keyd() {
	"$BUILD/cables-keyd" -f -c "$CONF" 2>>"$T/keyd.stderr" &
	KEYD_PID=$!
	echo "$KEYD_PID" >> "$T/pids"
	wait_for 10 test -S "$T/keyd.sock"
}

# held_back WHAT RCPT PATTERN: $T/plain.eml from alice to RCPT is refused with
# 4xx over SMTP and, submitted with sendmail(1), waits in Postfix's queue
# (which held nothing before); the milter logs PATTERN for each.
held_back() {
	what=$1 rcpt=$2 pattern=$3
	before=$(grep -c -- "$pattern" "$MILTER_LOG" 2>/dev/null || true)
	rig_send "$T/plain.eml" alice@a.test "$rcpt"
	check "$what, SMTP: 4xx" test $? = 4
	check "$what: the log says why" grep -q -- "$pattern" "$MILTER_LOG"
	rig_submit "$T/plain.eml" alice@a.test "$rcpt"
	wait_for 30 sh -c "[ \$(grep -c -- '$pattern' $MILTER_LOG) -ge $((before + 2)) ]"
	sleep 1
	check "$what, sendmail: the message waits in the queue" test "$(queue_count)" = 1
}

keyctl() { "$KEYCTL" -c "$CONF" "$@"; }
# rig_store_key: KeyStoreKey, as the package's postinst makes it, for a host without private keys
# (cables-keyctl makes it with the first one): holding a message needs it (doc/hold.md).
rig_store_key() {
	[ -e "$T/store.key" ] || (umask 077 && od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$T/store.key" && echo >>"$T/store.key")
}

# rig_send FILE FROM TO...: over SMTP; the reply is in $REPLY, the exit code says 2/4/5xx.
rig_send() {
	file=$1; from=$2; shift 2
	args=""
	for r in "$@"; do args="$args --to $r"; done
	# shellcheck disable=SC2086
	REPLY=$($MAILTOOL send --port "$SMTP_PORT" --from "$from" $args "$file")
}

# rig_submit FILE FROM TO...: through sendmail(1) and pickup, as a local program would.
rig_submit() {
	file=$1; from=$2; shift 2
	/usr/sbin/sendmail -C "$PF" -f "$from" "$@" < "$file"
}

# leaks DOMAIN: sink files addressed to DOMAIN (smtp-sink records the
# recipients in X-Rcpt-Args) whose body holds the plaintext marker.  Only the
# body counts: header fields such as Subject stay outside the encryption.
leaks() {
	n=0
	for f in $(grep -l PLAINTEXT-MARKER "$SINK"/* 2>/dev/null); do
		grep -q "^X-Rcpt-Args: <[^>]*@$1>" "$f" || continue
		awk 'body && /PLAINTEXT-MARKER/ { found = 1 } /^\r?$/ { body = 1 } END { exit !found }' "$f" &&
			n=$((n + 1))
	done
	echo "$n"
}

# gpg_home DIR: a GnuPG home for a test's own gpg that never looks a key up
# on the network (WKD, keyservers): only loopback may be asked anything.
gpg_home() {
	mkdir -m 700 "$1"
	printf 'auto-key-locate local\nno-auto-key-retrieve\n' > "$1/gpg.conf"
}

sink_count() { find "$SINK" -type f | wc -l; }
sink_files() { find "$SINK" -type f | sort; }

# wait_for SECONDS COMMAND...: poll until the command succeeds.
wait_for() {
	limit=$1; shift
	end=$(( $(date +%s) + limit ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		sleep 0.1
	done
}
sink_has() { [ "$(sink_count)" -ge "$1" ]; }

# delivered QID: Postfix has handed message QID to the next hop.
delivered() { grep -q "$1: .*status=sent" "$PF/maillog"; }
qid_of_reply() { echo "$REPLY" | sed -n 's/.*queued as \([0-9A-Za-z]*\).*/\1/p'; }

# Messages Postfix holds: maildrop, incoming, active, deferred, hold.
queue_count() {
	find "$PF/queue/maildrop" "$PF/queue/incoming" "$PF/queue/active" \
		"$PF/queue/deferred" "$PF/queue/hold" -type f 2>/dev/null | wc -l
}
queue_empty() { [ "$(queue_count)" = 0 ]; }
queue_kick() { postkick -c "$PF" public pickup W >/dev/null 2>&1; postqueue -c "$PF" -f >/dev/null 2>&1; }

# A captured message without smtp-sink's envelope lines.
sink_message() { $MAILTOOL strip-sink "$1"; }

# sink_file_of QID: the sink's dump file of message QID (named in Postfix's Received header).
sink_file_of() {
	f=$(grep -l " id $1[;]*\$" "$SINK"/* 2>/dev/null | head -n 1)
	[ -n "$f" ] && echo "$f"
}

# capture [QID]: wait until message QID (default: from $REPLY) has been
# delivered to the sink; print the path of a copy without sink's envelope lines.
# Postfix's Received header names the queue ID, which identifies the file.
capture() {
	qid=${1:-$(qid_of_reply)}
	[ -n "$qid" ] || return 1
	wait_for 120 delivered "$qid" || { echo "# capture: $qid not delivered within 120 s:" \
		"$(grep "$qid" "$PF/maillog" | tail -n 3)" >&2; return 1; }
	f=$(sink_file_of "$qid") || { echo "# capture: $qid delivered, but no copy at the sink names it" >&2; return 1; }
	sink_message "$f" > "$T/$qid.eml"
	echo "$T/$qid.eml"
}

# make_cert OUT ADDRESS STARTDATE ENDDATE [KEYUSAGE]: a self-signed RSA certificate
# (with its key in OUT) for ADDRESS with chosen validity (YYYYMMDDhhmmssZ) and key usage.
make_cert() {
	out=$1 addr=$2 start=$3 end=$4 ku=${5:-keyEncipherment,digitalSignature}
	d=$T/ca.$$.$(date +%s%N)
	mkdir -p "$d"
	: > "$d/index.txt"
	echo 01 > "$d/serial"
	cat > "$d/ca.cnf" <<-CNF
	[ ca ]
	default_ca = d
	[ d ]
	database = $d/index.txt
	new_certs_dir = $d
	serial = $d/serial
	default_md = sha256
	policy = p
	x509_extensions = ext
	[ p ]
	commonName = supplied
	[ ext ]
	subjectAltName = email:$addr
	keyUsage = $ku
	CNF
	openssl req -new -newkey rsa:2048 -nodes -keyout "$d/key.pem" -subj "/CN=$addr" \
		-out "$d/req.csr" 2>/dev/null &&
	openssl ca -batch -selfsign -config "$d/ca.cnf" -keyfile "$d/key.pem" -in "$d/req.csr" \
		-startdate "$start" -enddate "$end" -notext -out "$d/cert.pem" >/dev/null 2>&1 &&
	cat "$d/cert.pem" "$d/key.pem" > "$out"
}

# ---- Mail domains with local delivery: several Postfix + milter pairs ----
#
# inst_config NAME DOMAIN [LINE...]       $T/NAME/cables.conf (LocalDomains DOMAIN)
# inst_postfix NAME DOMAIN PORT RELAY USERS [LINE...]
#     Postfix for DOMAIN on 127.0.0.1:PORT (PORT+1 the re-injection listener:
#     with ReinjectDaemonName, the milter lets only its own copies in there),
#     delivering USERS ("bob carol") of DOMAIN to Maildirs under
#     $T/NAME/mail/USER/Maildir, relaying every other domain to RELAY.
# inst_milter NAME                        start (or restart) NAME's milter
# inst_keyctl NAME ARGS...                cables-keyctl with NAME's config
# maildir NAME USER                       the files delivered to USER
# maildir_file NAME USER [QID]            the file of message QID (default: from $REPLY)

inst_config() {
	name=$1 domain=$2
	shift 2
	mkdir -p "$T/$name"
	cat > "$T/$name/cables.conf" <<-CF
	Socket unix:$T/$name/milter.sock
	SocketGroup postfix
	KeyStore $T/$name/keys.db
	KeyStoreKey $T/$name/store.key
	LocalDomains $domain
	AuthservID mx.${domain%%[ ,]*}
	TempDir $T/$name
	GnuPGHome $T/$name/gnupg
	KeydSocket none
	LogFile $T/$name/milter.log
	ReinjectDaemonName cables-reinject
	KeyholderSocket $T/$name/keyholder.sock
	KeyholderLogFile $T/$name/keyholder.log
	On-KeyNotFound tempfail
	CF
	for line in "$@"; do printf '%s\n' "$line" >> "$T/$name/cables.conf"; done
}

inst_postfix() {
	name=$1 domain=$2 port=$3 relay=$4 users=$5
	shift 5
	if ! postfix_instance_maildir "$T/$name/pf" "$port" "$((port + 1))" "$relay" \
	    "unix:$T/$name/milter.sock" "$domain" "$T/$name/mail" "$users" "$@"; then
		echo "Bail out! postfix for $domain does not start"
		exit 1
	fi
}

inst_milter() {
	name=$1
	pid=$(cat "$T/$name/milter.pid" 2>/dev/null)
	if [ -n "$pid" ]; then
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rm -f "$T/$name/milter.sock"
	fi
	start_milter "$T/$name/cables.conf" "$T/$name/milter.sock" "$T/$name/milter.stderr"
	echo "$STARTED_PID" > "$T/$name/milter.pid"
}

inst_keyctl() {
	name=$1
	shift
	"$KEYCTL" -c "$T/$name/cables.conf" "$@"
}

maildir() {
	find "$T/$1/mail/$2/Maildir/new" -type f 2>/dev/null | sort
}

# maildir_file NAME USER [QID]: the file delivered to USER for message QID
# (default: the queue ID in $REPLY), found by Postfix's Received header.
maildir_file() {
	qid=${3:-$(qid_of_reply)}
	[ -n "$qid" ] && grep -l " id $qid[;]*\$" "$T/$1/mail/$2/Maildir/new"/* 2>/dev/null | head -n 1
}

# inst_send PORT FILE FROM TO...: like rig_send, to another port.
inst_send() {
	port=$1 file=$2 from=$3
	shift 3
	args=""
	for r in "$@"; do args="$args --to $r"; done
	# shellcheck disable=SC2086
	REPLY=$($MAILTOOL send --port "$port" --from "$from" $args "$file")
}

# delivered_in PFDIR QID: Postfix in PFDIR delivered (or relayed) message QID.
delivered_in() { grep -q "$2: .*status=sent" "$1/maillog"; }
