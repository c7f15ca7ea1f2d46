# faults.sh - sourced by the fault-matrix tests after tests/integration/rig.sh.
#
# Every case ends with fault_result: how many messages were sent, how many
# the MTA accepted, delivered (reached the sink), still queued, bounced,
# lost (accepted but neither delivered nor queued) and leaked (a copy for a
# require recipient that reached the wire with plaintext in it).  The line
# goes to the TAP output and to tests/faults/results.txt in the build tree,
# which tools/check prints as the fault matrix.

FAULTS_RESULTS=$BUILD/tests/faults/results.txt
mkdir -p "$BUILD/tests/faults"

bounced() { grep -c 'status=bounced' "$PF/maillog" 2>/dev/null || true; }

# fault_result CASE SENT ACCEPTED DELIVERED QUEUED LEAKED: assert nothing lost or leaked, record the figures.
fault_result() {
	case_name=$1 sent=$2 accepted=$3 delivered=$4 queued=$5 leaked=$6
	b=$(bounced)
	lost=$((accepted - delivered - queued))
	line="case=$case_name sent=$sent accepted=$accepted delivered=$delivered queued=$queued bounced=$b lost=$lost leaked=$leaked"
	diag "$line"
	printf '%s\n' "$line" >> "$FAULTS_RESULTS"
	check "$case_name: nothing lost ($line)" test "$lost" = 0
	check "$case_name: nothing leaked" test "$leaked" = 0
}

# milter_alive: the milter process is still there.
milter_alive() { kill -0 "$MILTER_PID" 2>/dev/null; }

# rss_kb PID: resident set size in KiB.
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
