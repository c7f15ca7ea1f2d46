#!/usr/bin/python3
"""metrics.py - the metrics test's helper: fetch, check and compare
Prometheus text exposition (0.0.4) as cables-milter and cables-keyd serve it.

  get PORT PATH [METHOD [HOST]]  print "STATUS CONTENT-TYPE" of one request (body to stdout after a line "--")
  big PORT BYTES              a GET /metrics with a header field of BYTES bytes: print the status, or "closed"
  hold PORT N SECONDS         N connections that send half a request line and wait (a slow client)
  check FILE                  the text parses as the format says: HELP and TYPE before a family's samples,
                              names and labels well formed, one value per series, histograms consistent
                              (buckets cumulative and sorted, +Inf equal to _count); exit 1 with the reason
  diff OLD NEW                the series that changed, "name{labels} +DELTA", sorted (no _bucket, _sum:
                              they depend on timing)
  value FILE SERIES           the value of one series (0 when absent)
  samples FILE                the sample lines (no comments), sorted
"""
import http.client
import re
import socket
import sys
import time

NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def fail(why):
    print(why)
    sys.exit(1)


def parse_labels(text, lineno):
    if not text:
        return ()
    inner = text[1:-1]
    labels, pos = [], 0
    while pos < len(inner):
        m = LABEL.match(inner, pos)
        if not m:
            fail('line %d: bad labels %r' % (lineno, text))
        labels.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < len(inner):
            if inner[pos] != ',':
                fail('line %d: bad labels %r' % (lineno, text))
            pos += 1
    names = [k for k, _ in labels]
    if len(set(names)) != len(names):
        fail('line %d: a label repeated' % lineno)
    return tuple(labels)


def parse(path, strict=True):
    """{(name, labels): value}; with strict, every rule of the format is checked."""
    series, helps, types, seen_family, done = {}, {}, {}, None, set()
    with open(path, encoding='utf-8') as f:
        lines = f.read().split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    for n, line in enumerate(lines, 1):
        if line.startswith('# HELP ') or line.startswith('# TYPE '):
            parts = line.split(' ', 3)
            if len(parts) < 4 or not NAME.match(parts[2]):
                fail('line %d: bad comment %r' % (n, line))
            table = helps if parts[1] == 'HELP' else types
            if parts[2] in table:
                fail('line %d: second %s for %s' % (n, parts[1], parts[2]))
            if parts[1] == 'TYPE' and parts[3] not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
                fail('line %d: unknown type %s' % (n, parts[3]))
            if parts[2] in done:
                fail('line %d: %s comes back after another family' % (n, parts[2]))
            table[parts[2]] = parts[3]
            continue
        if line.startswith('#'):
            continue
        m = SAMPLE.match(line)
        if not m:
            fail('line %d: not a sample: %r' % (n, line))
        name, labels, value = m.group(1), parse_labels(m.group(2), n), m.group(3)
        try:
            v = float(value)
        except ValueError:
            fail('line %d: bad value %r' % (n, value))
        family = name
        for suffix in ('_bucket', '_sum', '_count'):
            if name.endswith(suffix) and types.get(name[:-len(suffix)]) == 'histogram':
                family = name[:-len(suffix)]
        if strict:
            if family not in types or family not in helps:
                fail('line %d: %s has no TYPE or HELP before it' % (n, name))
            if types[family] == 'counter' and not name.endswith('_total'):
                fail('line %d: counter %s does not end in _total' % (n, name))
            if v < 0 or v != v:
                fail('line %d: a counter below zero or NaN' % n)
        if seen_family is not None and family != seen_family:
            done.add(seen_family)
        if family in done:
            fail('line %d: family %s interleaved with another' % (n, family))
        seen_family = family
        key = (name, labels)
        if key in series:
            fail('line %d: series given twice: %s' % (n, line))
        series[key] = v
    if strict:
        check_histograms(series, types)
    return series


def check_histograms(series, types):
    for family, t in types.items():
        if t != 'histogram':
            continue
        groups = {}
        for (name, labels), v in series.items():
            if name == family + '_bucket':
                le = dict(labels).get('le')
                if le is None:
                    fail('%s: a bucket without le' % family)
                rest = tuple(x for x in labels if x[0] != 'le')
                groups.setdefault(rest, []).append((float(le), v))
        if not groups:
            fail('%s: no buckets' % family)
        for rest, buckets in groups.items():
            buckets.sort()
            if buckets[-1][0] != float('inf'):
                fail('%s%s: no +Inf bucket' % (family, rest))
            for (_, a), (_, b) in zip(buckets, buckets[1:]):
                if b < a:
                    fail('%s%s: buckets not cumulative' % (family, rest))
            count = series.get((family + '_count', rest))
            if count is None or (family + '_sum', rest) not in series:
                fail('%s%s: no _count or _sum' % (family, rest))
            if count != buckets[-1][1]:
                fail('%s%s: _count %s but +Inf bucket %s' % (family, rest, count, buckets[-1][1]))


def show(key):
    name, labels = key
    if not labels:
        return name
    return '%s{%s}' % (name, ','.join('%s="%s"' % kv for kv in labels))


def fmt(v):
    return str(int(v)) if v == int(v) else repr(v)


def main():
    cmd = sys.argv[1]
    if cmd == 'get':
        port, path = int(sys.argv[2]), sys.argv[3]
        method = sys.argv[4] if len(sys.argv) > 4 else 'GET'
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
        if len(sys.argv) > 5:
            c.putrequest(method, path, skip_host=True)
            c.putheader('Host', sys.argv[5])
            c.endheaders()
        else:
            c.request(method, path)
        r = c.getresponse()
        body = r.read().decode('utf-8', 'replace')
        print(r.status, r.getheader('Content-Type'))
        print('--')
        sys.stdout.write(body)
    elif cmd == 'big':
        port, size = int(sys.argv[2]), int(sys.argv[3])
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        try:
            s.sendall(b'GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Filler: ' + b'a' * size + b'\r\n\r\n')
        except OSError:
            pass
        try:
            data = s.recv(200)
        except OSError:
            data = b''
        m = re.match(rb'HTTP/1\.[01] (\d{3})', data)
        print(m.group(1).decode() if m else 'closed')
    elif cmd == 'hold':
        port, n, seconds = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
        held = []
        for _ in range(n):
            try:
                s = socket.create_connection(('127.0.0.1', port), timeout=2)
                s.sendall(b'GET /met')
                held.append(s)
            except OSError:
                pass
        if len(sys.argv) > 5:
            open(sys.argv[5], 'w').close()   # the connections are open: the test may go on
        time.sleep(seconds)
        for s in held:
            s.close()
    elif cmd == 'check':
        parse(sys.argv[2])
    elif cmd == 'diff':
        old, new = parse(sys.argv[2]), parse(sys.argv[3])
        for key in sorted(set(old) | set(new), key=show):
            d = new.get(key, 0) - old.get(key, 0)
            if d != 0 and not key[0].endswith(('_sum', '_bucket')):
                print('%s %s%s' % (show(key), '+' if d > 0 else '', fmt(d)))
    elif cmd == 'value':
        series = parse(sys.argv[2])
        for key, v in series.items():
            if show(key) == sys.argv[3]:
                print(fmt(v))
                return
        print(0)
    elif cmd == 'samples':
        with open(sys.argv[2], encoding='utf-8') as f:
            print('\n'.join(sorted(l for l in f.read().split('\n') if l and not l.startswith('#'))))
    else:
        fail('unknown command ' + cmd)


main()
