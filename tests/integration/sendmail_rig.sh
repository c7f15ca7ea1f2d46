# sendmail_rig.sh - sourced after rig.sh by the tests that run Sendmail.
#
# A private Sendmail 8.17 (Debian's, unpacked by tools/sendmail-private and
# never installed: the package conflicts with Postfix) in $T/sm: its .cf
# built with m4 from the package's cf tree and the project's
# etc/sendmail.mc (what an admin pastes, used here as it is), queue, pid
# file and trace in $T/sm.  It listens on 127.0.0.1:$SMTP_PORT (Name=MTA)
# and on 127.0.0.1:$REINJECT_PORT (Name=cables-reinject: the milter's
# verify-only listener for split delivery), and relays every domain to the
# smtp-sink of rig.sh on $SINK_PORT.
#
# Sendmail looks up its own name at start (and sleeps a minute when the
# name has no dot), so it runs under unshare -m -u: a private host name
# mx.a.test, and /etc/hosts and /etc/resolv.conf bind-mounted over with
# files that name only loopback; nocanonify and a relay mailer to an
# address literal mean no DNS query is made for mail either.
#
# sm_start [MC-LINE...]  build $T/sm/sendmail.cf (each argument one more
#                        .mc line) and start Sendmail; wait until it answers
# sm_sasl USER@DOMAIN:PASSWORD...  before sm_start: SMTP AUTH PLAIN for them
#                        (a sasldb and Sendmail.conf in $T/sm/sasl, mounted
#                        over Cyrus SASL's /usr/lib/sasl2 for Sendmail alone)
# sm_stop                stop it (the whole process group)
# sm_run ARG...          the Sendmail binary, in the same private namespace
# sm_submit FILE FROM TO...  local submission through the MSP (submit.cf)
# sm_msp_queue_count     messages waiting in the MSP's queue
# sm_qid                 the queue ID from $REPLY ("250 2.0.0 ID Message accepted")
# sm_captured QID        the sink file of message QID, stripped, in $T/QID.eml
# sm_queue_count         messages waiting in Sendmail's queue (qf files; quarantined ones are hf)

SM_PKG=$("$SRC/tools/sendmail-private" 2>"$T/sendmail-private.err") || {
	echo "1..0 # SKIP no private Sendmail: $(tr '\n' ' ' < "$T/sendmail-private.err")"
	exit 0
}
for tool in m4 unshare setsid saslpasswd2; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "1..0 # SKIP $tool is not installed (run tools/install-deps)"
		exit 0
	fi
done
SM_ROOT=$SM_PKG/root
SM_BIN=$SM_ROOT/usr/libexec/sendmail/sendmail
SM=$T/sm
SM_PID=

sm_stop() {
	[ -n "$SM_PID" ] || return 0
	# -bD keeps the daemon in front; its children (one per connection and queue run) share its group.
	# (No "--" before the negative group ID: dash's kill does not take it.)
	kill -TERM "-$SM_PID" 2>/dev/null
	wait_for 10 sh -c "! kill -0 -$SM_PID" || kill -KILL "-$SM_PID" 2>/dev/null
	wait "$SM_PID" 2>/dev/null
	SM_PID=
}

# Stop Sendmail before rig.sh's own cleanup runs.
sm_cleanup() { sm_stop; rig_cleanup; }
trap sm_cleanup EXIT

sm_start() {
	mkdir -p "$SM/queue"
	chmod 700 "$SM/queue"
	printf '127.0.0.1\tmx.a.test mx localhost\n' > "$SM/hosts"
	printf 'nameserver 127.0.0.1\noptions attempts:1 timeout:1\n' > "$SM/resolv.conf"
	{
		printf 'divert(-1)\n'
		printf 'This is the test instance; etc/sendmail.mc follows as an admin pastes it.\n'
		printf 'divert(0)dnl\n'
		printf "include(\`%s/m4/cf.m4')dnl\n" "$SM_ROOT/usr/share/sendmail/cf"
		printf "OSTYPE(\`linux')dnl\n"
		printf "define(\`confDOMAIN_NAME', \`mx.a.test')dnl\n"
		printf "define(\`QUEUE_DIR', \`%s/queue')dnl\n" "$SM"
		printf "define(\`STATUS_FILE', \`%s/statistics')dnl\n" "$SM"
		printf "define(\`confPID_FILE', \`%s/sendmail.pid')dnl\n" "$SM"
		printf "define(\`ALIAS_FILE', \`%s/aliases')dnl\n" "$SM"
		printf "define(\`confCW_FILE', \`-o %s/local-host-names')dnl\n" "$SM"
		printf "define(\`confCT_FILE', \`-o %s/trusted-users')dnl\n" "$SM"
		printf "define(\`confHELP_FILE', \`%s/helpfile')dnl\n" "$SM"
		printf "define(\`confDONT_PROBE_INTERFACES', \`True')dnl\n"
		# The test directory is under /tmp: world-writable, with the sticky bit.
		printf "define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl\n"
		# Two busy cores have a load far above Sendmail's defaults (it would refuse or only queue).
		printf "define(\`confQUEUE_LA', \`500')dnl\n"
		printf "define(\`confREFUSE_LA', \`500')dnl\n"
		printf "define(\`confDELAY_LA', \`0')dnl\n"
		printf "define(\`confTO_QUEUEWARN', \`0')dnl\n"
		printf "define(\`confMIN_QUEUE_AGE', \`0')dnl\n"
		# Every domain goes to the sink: an address literal, so no MX or A lookup.
		printf "define(\`SMART_HOST', \`relay:[127.0.0.1]')dnl\n"
		printf "define(\`RELAY_MAILER_ARGS', \`TCP \$h %s')dnl\n" "$SINK_PORT"
		printf "define(\`confDIRECT_SUBMISSION_MODIFIERS', \`C')dnl\n"
		printf "FEATURE(\`nocanonify')dnl\n"
		printf "FEATURE(\`no_default_msa')dnl\n"
		printf "FEATURE(\`accept_unresolvable_domains')dnl\n"
		printf "DAEMON_OPTIONS(\`Port=%s, Addr=127.0.0.1, Name=MTA')dnl\n" "$SMTP_PORT"
		sed -e "s|/run/cables/milter.sock|$T/milter.sock|" -e "s|Port=10026|Port=$REINJECT_PORT|" \
			"$SRC/etc/sendmail.mc"
		for line in "$@"; do printf '%s\n' "$line"; done
		printf "MAILER(\`smtp')dnl\n"
	} > "$SM/sendmail.mc"
	if ! m4 "$SM/sendmail.mc" > "$SM/sendmail.cf" 2>"$SM/m4.err"; then
		echo "Bail out! m4 cannot build sendmail.cf: $(cat "$SM/m4.err")"
		exit 1
	fi
	: > "$SM/aliases"
	: > "$SM/helpfile"
	# setsid: the daemon leads its own process group, which sm_stop signals.
	setsid unshare -m -u sh -c '
		hostname mx.a.test &&
		mount --bind "$1/hosts" /etc/hosts &&
		mount --bind "$1/resolv.conf" /etc/resolv.conf &&
		{ [ ! -d "$1/sasl" ] || mount --bind "$1/sasl" /usr/lib/sasl2; } &&
		LD_LIBRARY_PATH=$2/usr/lib/x86_64-linux-gnu exec "$3" -C "$1/sendmail.cf" -bD -q2s \
			-X "$1/trace" -O LogLevel=14' sh "$SM" "$SM_ROOT" "$SM_BIN" \
		>>"$SM/stderr" 2>&1 &
	SM_PID=$!
	if ! wait_for 30 sm_answers; then
		echo "Bail out! sendmail does not answer on $SMTP_PORT: $(tail -n 5 "$SM/stderr")"
		exit 1
	fi
}

sm_sasl() {
	mkdir -p "$SM/sasl"
	cp /usr/lib/sasl2/* "$SM/sasl/" 2>/dev/null
	for pair in "$@"; do
		user=${pair%%:*}
		echo "${pair#*:}" | saslpasswd2 -p -f "$SM/sasl/sasldb2" -u "${user#*@}" -c "${user%@*}" || return 1
	done
	printf 'pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN\nsasldb_path: %s\n' \
		"$SM/sasl/sasldb2" > "$SM/sasl/Sendmail.conf"
}

# sm_answers: both listeners greet with 220.
sm_answers() {
	for p in "$SMTP_PORT" "$REINJECT_PORT"; do
		$PY - "$p" <<-'PY' || return 1
		import socket, sys
		s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
		sys.exit(0 if s.recv(512).startswith(b"220") else 1)
		PY
	done
}

# sm_run ARG...: the private Sendmail binary in the same private namespace as the daemon.
sm_run() {
	unshare -m -u sh -c '
		root=$0 sm=$1 bin=$2
		shift 2
		hostname mx.a.test &&
		mount --bind "$sm/hosts" /etc/hosts &&
		mount --bind "$sm/resolv.conf" /etc/resolv.conf &&
		LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu exec "$bin" "$@"' \
		"$SM_ROOT" "$SM" "$SM_BIN" "$@"
}

# sm_submit FILE FROM TO...: local submission as Debian sets it up: the
# submission program (MSP, FEATURE(msp) in submit.cf) hands the message to
# the MTA listener over SMTP; what the MTA does not take waits in the MSP's
# own queue, $SM/clientmqueue.
sm_submit() {
	file=$1 from=$2
	shift 2
	if [ ! -f "$SM/submit.cf" ]; then
		mkdir -p "$SM/clientmqueue"
		chown nobody:nogroup "$SM/clientmqueue"
		chmod 770 "$SM/clientmqueue"
		{
			printf 'divert(0)dnl\n'
			printf "include(\`%s/m4/cf.m4')dnl\n" "$SM_ROOT/usr/share/sendmail/cf"
			printf "OSTYPE(\`linux')dnl\n"
			printf "define(\`confDOMAIN_NAME', \`mx.a.test')dnl\n"
			printf "define(\`confDONT_BLAME_SENDMAIL', \`TrustStickyBit')dnl\n"
			# Debian's MSP runs as smmsp, a user this machine need not have; it may not run as root.
			printf "define(\`confRUN_AS_USER', \`nobody:nogroup')dnl\n"
			printf "define(\`MSP_QUEUE_DIR', \`%s/clientmqueue')dnl\n" "$SM"
			printf "define(\`confPID_FILE', \`%s/submit.pid')dnl\n" "$SM"
			printf "define(\`RELAY_MAILER_ARGS', \`TCP \$h %s')dnl\n" "$SMTP_PORT"
			printf "define(\`confQUEUE_LA', \`500')dnl\n"
			printf "define(\`confREFUSE_LA', \`500')dnl\n"
			# No DNS here: the MSP would defer mail whose sender domain it cannot look up.
			printf "FEATURE(\`nocanonify')dnl\n"
			printf "define(\`confDIRECT_SUBMISSION_MODIFIERS', \`C')dnl\n"
			printf "FEATURE(\`msp', \`[127.0.0.1]')dnl\n"
		} > "$SM/submit.mc"
		m4 "$SM/submit.mc" > "$SM/submit.cf" || return 1
	fi
	sm_run -C "$SM/submit.cf" -bm -f "$from" "$@" < "$file"
}

sm_msp_queue_count() { find "$SM/clientmqueue" -type f -name 'qf*' | wc -l; }

sm_qid() { echo "$REPLY" | sed -n 's/^250 2\.0\.0 \([0-9A-Za-z]*\) Message accepted.*/\1/p'; }

sm_queue_count() { find "$SM/queue" -type f -name 'qf*' | wc -l; }

# sm_sink_file QID: the sink file whose Received header (Sendmail's) names QID.
sm_sink_file() {
	grep -lE "[ 	]id $1([;[:space:]]|\$)" "$SINK"/* 2>/dev/null | head -n 1
}

sm_captured() {
	wait_for 60 sh -c "grep -qE '[ 	]id $1([;[:space:]]|\$)' $SINK/* 2>/dev/null" || return 1
	f=$(sm_sink_file "$1") || return 1
	sink_message "$f" > "$T/$1.eml"
	echo "$T/$1.eml"
}
