#!/usr/bin/python3
"""load - send N small messages over SMTP with C connections at a time, and
sample a process's resident memory as they go.

  load.py --port P --to ADDR --count N --concurrency C [--pid PID] OUT

Each connection sends its share of the messages one transaction after the
other.  Writes to OUT, and prints: "sent=N accepted=N tempfailed=N
rejected=N seconds=S rate=R" then "rss_kb=" followed by one sample per
tenth of the messages.
"""
import socket
import sys
import threading
import time


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reply(f):
    while True:
        line = f.readline()
        if not line:
            return 0
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


def worker(port, to, ids, counts, lock, progress):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO load.a.test\r\n")
    reply(f)
    for i in ids:
        msg = (b"From: Alice <alice@a.test>\r\nTo: <%s>\r\nSubject: load %d\r\n"
               b"Message-ID: <load-%d@a.test>\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
               b"Message %d of the load test. PLAINTEXT-MARKER\r\n" % (to.encode(), i, i, i)) + \
            b"Some text to make it a realistic size.\r\n" * 40
        s.sendall(b"MAIL FROM:<alice@a.test>\r\n")
        code = reply(f)
        if code == 250:
            s.sendall(b"RCPT TO:<%s>\r\n" % to.encode())
            code = reply(f)
        if code == 250:
            s.sendall(b"DATA\r\n")
            code = reply(f)
        if code == 354:
            s.sendall(msg + b".\r\n")
            code = reply(f)
        else:
            s.sendall(b"RSET\r\n")
            reply(f)
        with lock:
            key = "accepted" if code == 250 else "tempfailed" if code // 100 == 4 else "rejected"
            counts[key] += 1
            progress[0] += 1
    s.sendall(b"QUIT\r\n")
    s.close()


def main(argv):
    port, to, count, conc, pid, out = None, None, 0, 1, 0, None
    it = iter(argv[1:])
    for a in it:
        if a == "--port":
            port = int(next(it))
        elif a == "--to":
            to = next(it)
        elif a == "--count":
            count = int(next(it))
        elif a == "--concurrency":
            conc = int(next(it))
        elif a == "--pid":
            pid = int(next(it))
        else:
            out = a
    counts = {"accepted": 0, "tempfailed": 0, "rejected": 0}
    lock, progress = threading.Lock(), [0]
    threads = [threading.Thread(target=worker, args=(port, to, range(k, count, conc), counts, lock, progress))
               for k in range(conc)]
    start = time.time()
    for t in threads:
        t.start()
    samples, next_at = [], count // 10
    while any(t.is_alive() for t in threads):
        time.sleep(0.05)
        while pid and progress[0] >= next_at and len(samples) < 10:
            samples.append(rss_kb(pid))
            next_at += count // 10
    for t in threads:
        t.join()
    while pid and len(samples) < 10:
        samples.append(rss_kb(pid))
    secs = time.time() - start
    text = "sent=%d accepted=%d tempfailed=%d rejected=%d seconds=%.1f rate=%.0f\nrss_kb=%s\n" % (
        count, counts["accepted"], counts["tempfailed"], counts["rejected"], secs, count / secs,
        " ".join(str(x) for x in samples))
    open(out, "w").write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
