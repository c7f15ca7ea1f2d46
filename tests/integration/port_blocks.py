#!/usr/bin/python3
"""port_blocks - which loopback ports each test owns, and whether two overlap.

The convention (rig.sh): a test sets RIG_PORT=BASE and owns the block
[BASE, BASE + RIG_PORTS); RIG_PORTS is 10 unless the test sets it (before
sourcing rig.sh).  A test that sources rig.sh without RIG_PORT= owns rig's
default block at 12000.  Every port a test uses must lie in its block; no
two blocks may overlap (make -j runs tests side by side).

A port is found where a test derives it from RIG_PORT, as the tests do:
NAME=$((PORTVAR + K)) makes NAME a port (PORTVAR: RIG_PORT, rig's
SMTP_PORT, REINJECT_PORT and SINK_PORT, or a NAME before it); $((PORTVAR +
K)) and $PORTVAR are ports used; inst_postfix NAME DOMAIN $PORTVAR also
uses PORTVAR + 1 (its re-injection listener).  A literal port in the
tests' range written anywhere but RIG_PORT= is refused: derive it.

  port_blocks.py FILE...    one line per block, then one line per problem;
                            exit 1 when there is a problem, 2 on bad usage
"""
import re
import sys

DEFAULT_BASE = 12000
DEFAULT_SIZE = 10
# rig.sh's own ports, as offsets from RIG_PORT.
RIG_VARS = {"RIG_PORT": 0, "SMTP_PORT": 0, "REINJECT_PORT": 1, "SINK_PORT": 2}
# The range the tests' blocks live in: a literal number there is a hard-coded port.
LITERAL_RANGE = range(12000, 13000)

ASSIGN = re.compile(r"^\s*([A-Za-z_]\w*)=\$\(\(\s*\$?\{?([A-Za-z_]\w*)\}?\s*(?:\+\s*(\d+))?\s*\)\)")
ARITH = re.compile(r"\$\(\(\s*\$?\{?([A-Za-z_]\w*)\}?\s*(?:\+\s*(\d+))?\s*\)\)")
VARUSE = re.compile(r"\$\{?([A-Za-z_]\w*)\}?")
INST_POSTFIX = re.compile(r"\binst_postfix\s+\S+\s+\S+\s+\"?\$\{?([A-Za-z_]\w*)\}?")
BASE = re.compile(r"^\s*RIG_PORT=(\d+)\s*(?:#.*)?$")
SIZE = re.compile(r"^\s*RIG_PORTS=(\d+)\s*(?:#.*)?$")
SOURCES_RIG = re.compile(r"^\s*\.\s+\S*rig\.sh\"?\s*$")
NUMBER = re.compile(r"(?<![\w.$-])(\d{5})(?![\w.])")


class Block:
    def __init__(self, path):
        self.path = path
        self.base = None
        self.size = DEFAULT_SIZE
        self.used = {}          # offset -> first line using it
        self.literals = []      # (line number, port)
        self.rig = False

    @property
    def end(self):
        return self.base + self.size


def code(line):
    """The line without a comment (a '#' that starts a word)."""
    return re.sub(r"(^|\s)#.*$", "", line)


def scan(path):
    b = Block(path)
    ports = dict(RIG_VARS)

    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    for n, raw in enumerate(lines, 1):
        line = code(raw)
        m = BASE.match(raw)
        if m:
            b.base = int(m.group(1))
            continue
        m = SIZE.match(raw)
        if m:
            b.size = int(m.group(1))
            continue
        if SOURCES_RIG.match(line):
            b.rig = True
        m = ASSIGN.match(line)
        if m and m.group(2) in ports:
            ports[m.group(1)] = ports[m.group(2)] + int(m.group(3) or 0)
        for m in ARITH.finditer(line):
            if m.group(1) in ports:
                b.used.setdefault(ports[m.group(1)] + int(m.group(2) or 0), n)
        for m in VARUSE.finditer(line):
            if m.group(1) in ports:
                b.used.setdefault(ports[m.group(1)], n)
        for m in INST_POSTFIX.finditer(line):
            if m.group(1) in ports:
                b.used.setdefault(ports[m.group(1)] + 1, n)
        for m in NUMBER.finditer(line):
            if int(m.group(1)) in LITERAL_RANGE:
                b.literals.append((n, int(m.group(1))))
    if b.base is None and b.rig:
        b.base = DEFAULT_BASE
    return b


def problems(blocks):
    out = []
    for b in blocks:
        for n, port in b.literals:
            out.append("%s:%d: port %d written as a number: derive it from RIG_PORT" % (b.path, n, port))
        for off in sorted(b.used):
            if off >= b.size:
                out.append("%s:%d: uses RIG_PORT+%d, outside its block [%d, %d) (set RIG_PORTS=%d or more)"
                           % (b.path, b.used[off], off, b.base, b.end, off + 1))
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            if a.base < b.end and b.base < a.end:
                out.append("%s [%d, %d) and %s [%d, %d) overlap" % (a.path, a.base, a.end, b.path, b.base, b.end))
    return out


def main(argv):
    if len(argv) < 2:
        print("usage: port_blocks.py FILE...", file=sys.stderr)
        return 2
    blocks = [b for b in (scan(p) for p in argv[1:]) if b.base is not None]
    blocks.sort(key=lambda b: (b.base, b.path))
    for b in blocks:
        print("block %s [%d, %d) uses %s" % (b.path, b.base, b.end,
                                             ",".join("+%d" % o for o in sorted(b.used)) or "nothing"))
    found = problems(blocks)
    for p in found:
        print("problem " + p)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
