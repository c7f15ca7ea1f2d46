# lib.sh - sourced by bench/throughput and bench/compare.
#
# bench_smime_setup KEYCTL DIR
#   With KEYCTL (a cables-keyctl command line for one configuration) make
#   the S/MIME keys both benchmarks use: bob@b.test (remote, RSA-3072),
#   dave@a.test (local, RSA-3072), erin@a.test (local, P-256) and
#   carol@a.test (local, RSA-3072, the signer); and in DIR the 2 KB test
#   entity (entity.txt), plain.eml (plain, to dave) and dave.eml / erin.eml
#   (encrypted to each by openssl cms).
# bench_run PORT RCPT FILE SENDER CPU_PID CPU_FILE
#   Send N messages (SESSIONS SMTP sessions) to 127.0.0.1:PORT for RCPT:
#   FILE's message, or (FILE "") 2 KB of smtp-source's from SENDER (""
#   is alice@a.test); wait until every one reached the sink (BENCH_LOGS:
#   the maillogs that count deliveries; SINK_PID: the sink, which must
#   live) and print the seconds it took.  CPU_PID's user and system clock
#   ticks before and after are appended to CPU_FILE.
# bench_rate SECONDS   messages per second for N messages
# bench_cpu_row LABEL CPU_FILE   "  (LABEL) U + S": ms per message, over the lines of CPU_FILE

bench_smime_setup() {
	bs_keyctl=$1 bs_dir=$2
	$bs_keyctl generate bob@b.test --smime --algo rsa3072 >/dev/null
	$bs_keyctl generate dave@a.test --smime --algo rsa3072 >/dev/null
	$bs_keyctl generate erin@a.test --smime --algo p256 >/dev/null
	$bs_keyctl generate carol@a.test --smime --algo rsa3072 >/dev/null
	$bs_keyctl export dave@a.test > "$bs_dir/dave.pem"
	$bs_keyctl export erin@a.test > "$bs_dir/erin.pem"
	/usr/bin/python3 - "$bs_dir" <<'PY'
import sys
d = sys.argv[1]
body = b"".join(b"line %04d of a two kilobyte message body........................\r\n" % i for i in range(30))
entity = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body
open(d + "/entity.txt", "wb").write(entity)
open(d + "/plain.eml", "wb").write(b"From: x@remote.test\r\nTo: dave@a.test\r\nSubject: plain\r\n" + entity)
PY
	for bs_who in dave erin; do
		openssl cms -encrypt -binary -aes-256-cbc -in "$bs_dir/entity.txt" -out "$bs_dir/$bs_who.smime" "$bs_dir/$bs_who.pem"
		{ printf 'From: x@remote.test\r\nTo: %s@a.test\r\nSubject: encrypted\r\n' "$bs_who"
		  sed 's/$/\r/' "$bs_dir/$bs_who.smime"; } > "$bs_dir/$bs_who.eml"
	done
}

# Deliveries so far in every maillog of BENCH_LOGS (the rows take turns).
bench_sent() {
	# shellcheck disable=SC2086
	cat $BENCH_LOGS 2>/dev/null | grep -c 'status=sent' || true
}

# A process's user and system CPU time so far, in clock ticks.
bench_cpu() { awk '{ print $14, $15 }' "/proc/$1/stat"; }

bench_run() {
	br_port=$1 br_rcpt=$2 br_file=$3 br_from=${4:-alice@a.test} br_pid=$5 br_cpufile=$6
	br_before=$(bench_sent)
	br_cpu=$(bench_cpu "$br_pid")
	br_start=$(date +%s.%N)
	if [ -n "$br_file" ]; then
		smtp-source -s "$SESSIONS" -m "$N" -F "$br_file" -f x@remote.test -t "$br_rcpt" "127.0.0.1:$br_port"
	else
		smtp-source -s "$SESSIONS" -m "$N" -l 2048 -f "$br_from" -t "$br_rcpt" "127.0.0.1:$br_port"
	fi
	br_limit=$(( $(date +%s) + 600 ))
	while [ $(( $(bench_sent) - br_before )) -lt "$N" ]; do
		if ! kill -0 "$SINK_PID" 2>/dev/null; then
			echo "bench: smtp-sink is gone" >&2
			exit 1
		fi
		if [ "$(date +%s)" -ge "$br_limit" ]; then
			echo "bench: timed out waiting for deliveries" >&2
			exit 1
		fi
		sleep 0.05
	done
	br_end=$(date +%s.%N)
	echo "$br_cpu $(bench_cpu "$br_pid")" >> "$br_cpufile"
	echo "$br_start $br_end" | awk '{ printf "%.3f", $2 - $1 }'
}

bench_rate() { echo "$N $1" | awk '{ printf "%.0f", $1 / $2 }'; }

bench_cpu_row() {
	[ -f "$2" ] || return 0
	awk -v n="$N" -v hz="$(getconf CLK_TCK)" -v row="$1" '{ u += $3 - $1; s += $4 - $2; k++ }
		END { if (k) printf "  (%s) %.2f + %.2f", row, 1000 * u / hz / n / k, 1000 * s / hz / n / k }' "$2"
}
