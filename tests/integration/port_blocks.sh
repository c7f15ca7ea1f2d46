#!/bin/sh
# No two tests share a port: each test owns the block of loopback ports
# rig.sh describes ([RIG_PORT, RIG_PORT + RIG_PORTS)), uses no port outside
# it, and no two blocks overlap, so that make -j check can run any two
# tests side by side.  port_blocks.py reads the tests' sources; it is
# tried first on made-up tests (overlaps, a port past the block, a port
# written as a number), so that a checker that finds nothing cannot pass.
# Needs python3 only: no root, no Postfix.
set -u
: "${top_srcdir:=..}"
SRC=$(cd "$top_srcdir" && pwd)
PY=/usr/bin/python3
CHECK="$PY $SRC/tests/integration/port_blocks.py"
T=$(mktemp -d /tmp/cit-ports.XXXXXX)
trap 'rm -rf "$T"' EXIT
n=0 failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=1
	echo "not ok $n - $1"
	sed 's/^/# /' "$T/out"
}

# passes DESCRIPTION FILE...: the checker finds no problem.
passes() {
	desc=$1
	shift
	if $CHECK "$@" >"$T/out" 2>&1; then ok "$desc"; else not_ok "$desc"; fi
}

# fails DESCRIPTION PATTERN FILE...: the checker finds a problem, and says PATTERN (grep -E).
fails() {
	desc=$1 pattern=$2
	shift 2
	if ! $CHECK "$@" >"$T/out" 2>&1 && grep -Eq -- "$pattern" "$T/out"; then ok "$desc"; else not_ok "$desc"; fi
}

if [ ! -x "$PY" ]; then
	echo "1..0 # SKIP $PY is not installed"
	exit 0
fi

# Made-up tests.
mkdir "$T/fake"
cd "$T/fake" || exit 1
printf 'RIG_PORT=12600\n. "$top_srcdir/tests/integration/rig.sh"\n' >a.sh
printf 'RIG_PORT=12605\n. "$top_srcdir/tests/integration/rig.sh"\n' >b.sh
printf 'RIG_PORT=12610\n. "$top_srcdir/tests/integration/rig.sh"\n' >c.sh
fails "two overlapping blocks: both tests named" '^problem a\.sh \[12600, 12610\) and b\.sh \[12605, 12615\) overlap$' a.sh b.sh
passes "adjacent blocks do not overlap" a.sh c.sh
printf 'RIG_PORT=12700\n. "$top_srcdir/tests/integration/rig.sh"\nXS=$((RIG_PORT + 10))\n' >far.sh
fails "a port past the block: the test and the line named" \
    '^problem far\.sh:3: uses RIG_PORT\+10, outside its block \[12700, 12710\) \(set RIG_PORTS=11 or more\)$' far.sh
printf 'RIG_PORT=12700\nRIG_PORTS=11\n. "$top_srcdir/tests/integration/rig.sh"\nXS=$((RIG_PORT + 10))\n' >declared.sh
passes "a port past 10 in a block declared larger" declared.sh
printf 'RIG_PORT=12704\n. "$top_srcdir/tests/integration/rig.sh"\n' >inside.sh
fails "a block declared larger overlaps what it covers" 'declared\.sh \[12700, 12711\) and inside\.sh' declared.sh inside.sh
printf 'RIG_PORT=12800\n. "$top_srcdir/tests/integration/rig.sh"\nBPORT=$((RIG_PORT + 9))\ninst_postfix b b.test "$BPORT" "$SINK_PORT" bob\n' >derived.sh
fails "a port derived from a derived port (inst_postfix takes PORT+1)" '^problem derived\.sh:4: uses RIG_PORT\+10' derived.sh
printf 'RIG_PORT=12800\n. "$top_srcdir/tests/integration/rig.sh"\nsend --port 12805 x\n' >literal.sh
fails "a port written as a number" '^problem literal\.sh:3: port 12805 written as a number' literal.sh
printf '. "$top_srcdir/tests/integration/rig.sh"\n' >default1.sh
cp default1.sh default2.sh
fails "two tests without RIG_PORT share rig's default block" 'default1\.sh \[12000, 12010\) and default2\.sh' default1.sh default2.sh

# The tree: what make check runs side by side.
cd "$SRC" || exit 1
$CHECK tests/integration/*.sh tests/faults/*.sh >"$T/out" 2>&1
rc=$?
blocks=$(grep -c '^block ' "$T/out")
if [ "$blocks" -ge 30 ]; then ok "the tests' blocks are found ($blocks)"; else not_ok "the tests' blocks are found ($blocks)"; fi
if [ $rc = 0 ]; then ok "no two tests share a port, none uses one outside its block"; else not_ok "no two tests share a port, none uses one outside its block"; fi
grep '^block ' "$T/out" | sed 's/^/# /'

# The same tree with one overlap made (the second block moved to just past the start of the first): found, both named.
first=$(grep '^block ' "$T/out" | sed -n 1p)
second=$(grep '^block ' "$T/out" | sed -n 2p)
f1=$(echo "$first" | cut -d' ' -f2) b1=$(echo "$first" | sed 's/.*\[\([0-9]*\),.*/\1/')
f2=$(echo "$second" | cut -d' ' -f2)
mkdir -p "$T/tree/tests/integration" "$T/tree/tests/faults"
cp tests/integration/*.sh "$T/tree/tests/integration/"
cp tests/faults/*.sh "$T/tree/tests/faults/"
cd "$T/tree" || exit 1
sed -i "s/^RIG_PORT=[0-9]*/RIG_PORT=$((b1 + 1))/" "$f2"
fails "the tree with $f2 moved to $((b1 + 1)): the overlap with $f1 found, both named" \
    "^problem $f1 \\[$b1, [0-9]+\\) and $f2 \\[$((b1 + 1)), [0-9]+\\) overlap\$" \
    tests/integration/*.sh tests/faults/*.sh

echo "1..$n"
exit $failed
