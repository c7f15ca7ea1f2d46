#!/usr/bin/python3
"""corpus - a generated corpus of malformed mail, and a raw SMTP sender for it.

  generate DIR --cms FILE    Write the cases to DIR/NNNN-CATEGORY.eml (deterministic).
                             FILE is a DER CMS EnvelopedData to truncate and damage.
  send --port P --to A [--to B ...] [--jobs N] DIR OUT
                             Send every case to each recipient over SMTP, bytes as
                             they are (only dot-stuffing and the final CRLF.CRLF
                             are added), N connections at a time.  Writes one line
                             per transaction to OUT: "CASE RCPT CODE", and prints
                             a summary.

Every case that carries readable text carries the word PLAINTEXT-MARKER in it,
so that a copy that reaches the wire unencrypted for a recipient whose policy
is require can be found.  Cases that are real, complete ciphertext carry no
marker (they may pass as they are).
"""
import base64
import os
import random
import socket
import sys
import threading

MARKER = b"PLAINTEXT-MARKER"


def head(n, extra=b""):
    return (b"From: Alice <alice@a.test>\r\nTo: Bob <bob@b.test>\r\n"
            b"Subject: corpus case %d\r\nMessage-ID: <corpus-%d@a.test>\r\n" % (n, n)) + extra


def text(rng, lines=3):
    words = [b"lorem", b"ipsum", b"dolor", b"sit", b"amet", MARKER, b"\xc3\xa4rger", b"=3D", b"--"]
    return b"".join(b" ".join(rng.choice(words) for _ in range(8)) + b"\r\n" for _ in range(lines)) + \
        MARKER + b"\r\n"


def b64(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def boundaries(rng):
    out = []
    t = text(rng)
    mp = b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n"
    part = b"--b1\r\nContent-Type: text/plain\r\n\r\n" + t
    out.append(mp % b"" + part + b"--b1--\r\n")                     # empty boundary parameter
    out.append(b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n" + part)   # none
    out.append(mp % b"b1" + t)                                      # never appears
    out.append(mp % b"b1" + part)                                   # no closing delimiter
    out.append(mp % b"b1" + part + b"--b1--")                       # no final line break
    out.append(mp % (b'"' + b"x" * 200 + b'"') + b"--" + b"x" * 200 + b"\r\n\r\n" + t)  # too long
    out.append(mp % b'"a b"' + b"--a b\r\n\r\n" + t + b"--a b--\r\n")
    out.append(mp % b'"unterminated' + part + b"--b1--\r\n")
    out.append(mp % b"b1" + b"--b1\r\n" + mp % b"b1" + part + b"--b1--\r\n--b1--\r\n")   # same boundary nested
    out.append(mp % b"b1" + b"--b1--\r\n" + part)                   # closed before the part
    out.append(mp % b"b1" + b"--b1\r\n--b1\r\n--b1\r\n" + t + b"--b1--\r\n")          # empty parts
    out.append(mp % b"b1" + b"--b1\r\nContent-Type: multipart/alternative\r\n\r\n" + t + b"--b1--\r\n")
    out.append(b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=b1; protocol=\"application/pkcs7-signature\"\r\n\r\n"
               + part + b"--b1\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--b1--\r\n")
    out.append(b"MIME-Version: 1.0\r\nContent-Type: multipart/signed; boundary=b1\r\n\r\n" + part + b"--b1--\r\n")
    variants = []
    for body in out:
        variants.append(body)
        variants.append(body.replace(b"\r\n", b"\n"))               # bare LF
        variants.append(body.replace(b"--b1", b"--B1"))             # case differs
        variants.append(body.replace(b"\r\n--b1", b"\r\n --b1"))    # indented delimiter
    return variants


def nested(rng):
    out = []
    for depth in (2, 10, 50, 100, 101, 200, 500):
        body = text(rng)
        for d in range(depth):
            b = b"n%d" % d
            body = (b"Content-Type: multipart/mixed; boundary=" + b + b"\r\n\r\n--" + b + b"\r\n" + body +
                    b"\r\n--" + b + b"--\r\n")
        out.append(b"MIME-Version: 1.0\r\n" + body)
        out.append(b"MIME-Version: 1.0\r\n" + body[: len(body) // 2])   # cut in the middle
    return out


def long_lines(rng):
    big = b"x" * (1024 * 1024)
    t = text(rng)
    return [
        b"X-Long: " + big + b"\r\nContent-Type: text/plain\r\n\r\n" + t,
        b"Content-Type: text/plain; name=\"" + big + b"\"\r\n\r\n" + t,
        b"X-Folded: a\r\n" + b"".join(b" " + b"y" * 70 + b"\r\n" for _ in range(15000)) + b"\r\n" + t,
        b"Content-Type: text/plain\r\n\r\n" + big + MARKER + b"\r\n",
        b"Content-Type: text/plain\r\n\r\n" + t + big,                   # no final line break
        b"X-" + b"N" * 5000 + b": v\r\n\r\n" + t,                        # 5000-character field name
    ]


def nul_bytes(rng):
    out = []
    for i in range(20):
        t = bytearray(b"Content-Type: text/plain\r\n\r\n" + text(rng, 4))
        for _ in range(1 + i):
            t.insert(rng.randrange(30, len(t)), 0)
        out.append(bytes(t))
        out.append(b"X-Nul: a\x00b\r\nSubject: \x00\r\nContent-Type: text/plain\x00; charset=x\r\n\r\n" +
                   text(rng))
    return out


def eight_bit(rng):
    samples = [b"Gr\xc3\xbc\xc3\x9fe", b"\xe6\x9d\xb1\xe4\xba\xac", b"caf\xe9", b"\xff\xfe\xfd",
               b"\xc3\x28", b"=?utf-8?B?broken?=", b"=?iso-8859-1?Q?caf=E9?=", b"=?x?Q?", b"\xf0\x9f\x92\xa9"]
    out = []
    for s in samples:
        for field in (b"Subject", b"From", b"To", b"Content-Type", b"Content-Disposition", b"X-Whatever"):
            value = s if field not in (b"Content-Type",) else b"text/plain; charset=" + s
            out.append(field + b": " + value + b"\r\nContent-Type: text/plain\r\n\r\n" + text(rng) if field != b"Content-Type"
                       else field + b": " + value + b"\r\n\r\n" + text(rng))
        out.append(b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
                   s * 100 + b"\r\n" + text(rng))
    return out


def bad_base64(rng):
    out = []
    good = b64(text(rng, 20))
    damages = [
        lambda d: d.replace(b"A", b"!", 3),
        lambda d: d[: len(d) // 2],
        lambda d: d[:-3],
        lambda d: b"====" + d,
        lambda d: d.replace(b"\r\n", b" \r\n"),
        lambda d: d.replace(b"\r\n", b""),
        lambda d: d + MARKER + b"\r\n",
        lambda d: d.replace(b"=", b"") + b"=x=\r\n",
        lambda d: bytes(c if c != ord("Q") else 0x80 for c in d),
        lambda d: d.replace(b"\r\n", b"\r\n\r\n"),
    ]
    for damage in damages:
        for ct in (b"text/plain", b"application/octet-stream", b"application/pkcs7-mime; smime-type=enveloped-data",
                   b"application/x-pkcs7-mime", b"application/octet-stream; name=smime.p7m", b"image/png",
                   b"message/rfc822", b"text/html"):
            out.append(b"Content-Type: " + ct + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + damage(good) +
                       b"\r\n" + MARKER + b"\r\n")
    return out


def wrong_cte(rng):
    out = []
    t = text(rng, 5)
    for cte in (b"quoted-printable", b"x-uuencode", b"base64", b"7bit", b"8bit", b"binary", b"BASE64 junk",
                b"", b"quoted-printable; x=1", b"\xff"):
        out.append(b"Content-Type: text/plain\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + t)
        out.append(b"Content-Type: text/plain\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n=ZZ=\r\n=\r\n" + t)
        out.append(b"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: " + cte +
                   b"\r\n\r\n--b\r\n\r\n" + t + b"--b--\r\n")
        out.append(b"Content-Transfer-Encoding: " + cte + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + t)
        out.append(b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
                   b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + t)
        out.append(b"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=b\r\n"
                   b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n--b\r\n\r\nVersion: 1\r\n--b\r\n\r\n" + t + b"--b--\r\n")
    return out


def cms_cases(rng, cms):
    """Truncated and damaged CMS, labelled as S/MIME in its several spellings."""
    out = []
    labels = [b"application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
              b"application/x-pkcs7-mime; smime-type=enveloped-data",
              b"application/pkcs7-mime; smime-type=authEnveloped-data",
              b"application/pkcs7-mime",
              b"application/octet-stream; name=\"smime.p7m\""]
    cuts = sorted(set([1, 2, 5, 10, 20, 50, 100, 200, len(cms) // 2, len(cms) - 20, len(cms) - 1] +
                      [rng.randrange(1, len(cms)) for _ in range(20)]))
    for cut in cuts:
        label = labels[cut % len(labels)]
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + label + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                   b64(cms[:cut]))
        # Truncated in the base64 text itself (mid-quantum).
        enc = b64(cms)
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + label + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                   enc[: cut * 4 // 3 + 1])
    for i in range(60):
        data = bytearray(cms)
        for _ in range(1 + i % 5):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + labels[i % len(labels)] +
                   b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64(bytes(data)))
    # Complete ciphertext with readable text after it: must not pass as ciphertext.
    for label in labels:
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + label + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                   b64(cms) + b"\r\n" + MARKER + b"\r\n")
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + label + b"\r\n\r\n" + cms + b"\r\n" + MARKER + b"\r\n")
        # The real thing, intact: no marker (it may pass as it is).
        out.append(b"MIME-Version: 1.0\r\nContent-Type: " + label + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                   b64(cms))
    # Binary DER and DER with a wrong length byte.
    for cut in (len(cms), len(cms) - 1, 40):
        out.append(b"Content-Type: application/pkcs7-mime\r\n\r\n" + cms[:cut])
    return out


def pgp_cases(rng):
    out = []
    armor = b"-----BEGIN PGP MESSAGE-----\r\n\r\n" + b64(bytes(rng.randrange(256) for _ in range(300))) + \
        b"=AbCd\r\n-----END PGP MESSAGE-----\r\n"
    mp = (b"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; "
          b"boundary=\"pgp\"\r\n\r\n--pgp\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
          b"--pgp\r\nContent-Type: application/octet-stream\r\n\r\n%s--pgp--\r\n")
    cuts = sorted(set([5, 27, 28, 30, 40, 100, len(armor) - 30, len(armor) - 26, len(armor) - 1] +
                      [rng.randrange(1, len(armor)) for _ in range(25)]))
    for cut in cuts:
        t = armor[:cut] + b"\r\n" + MARKER + b"\r\n"
        out.append(mp % t)
        out.append(b"Content-Type: text/plain\r\n\r\n" + t)
        out.append(b"Content-Type: text/plain\r\n\r\n" + MARKER + b"\r\n" + armor[:cut])
        out.append(mp % armor[:cut])
    for where in (0, 28, 60, len(armor) - 27):
        t = armor[:where] + MARKER + b"\r\n" + armor[where:]
        out.append(mp % t)
        out.append(b"Content-Type: text/plain\r\n\r\n" + t)
    out.append(mp % armor + MARKER + b"\r\n")                      # epilogue only
    out.append((mp % armor).replace(b"--pgp--", b"--pgp\r\nContent-Type: text/plain\r\n\r\n" + MARKER + b"\r\n--pgp--"))
    out.append(b"Content-Type: text/plain\r\n\r\n" + armor + MARKER + b"\r\n")
    out.append(b"Content-Type: text/plain\r\n\r\n" + armor)         # intact inline: no marker
    out.append(mp % armor)                                          # intact PGP/MIME: no marker
    return out


def mutations(rng, seeds, count):
    out = []
    for i in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(1 + rng.randrange(6)):
            op = rng.randrange(6)
            if not data:
                break
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                del data[pos:pos + rng.randrange(1, 40)]
            elif op == 2:
                data[pos:pos] = rng.choice([b"\r\n", b"\n", b"\r", b"\x00", b"--", b"=", b":", b";", b"\"",
                                            b"\r\n\r\n", b"Content-Type: multipart/mixed; boundary=x\r\n"])
            elif op == 3:
                end = min(len(data), pos + rng.randrange(1, 200))
                data[pos:pos] = data[pos:end]
            elif op == 4:
                data = data[:pos]
            else:
                # Into the body only: header fields stay outside the encryption by design.
                body = data.find(b"\r\n\r\n")
                if body >= 0:
                    pos = rng.randrange(body + 4, len(data) + 1)
                    data[pos:pos] = MARKER
        out.append(bytes(data) + b"\r\n" + MARKER + b"\r\n")
    return out


def generate(outdir, cms):
    rng = random.Random(1790)
    os.makedirs(outdir, exist_ok=True)
    groups = [("boundary", boundaries(rng)), ("nested", nested(rng)), ("longline", long_lines(rng)),
              ("nul", nul_bytes(rng)), ("8bit", eight_bit(rng)), ("base64", bad_base64(rng)),
              ("cte", wrong_cte(rng)), ("cms", cms_cases(rng, cms)), ("pgp", pgp_cases(rng))]
    seeds = [b for _, cases in groups for b in cases if len(b) < 100000]
    total = sum(len(c) for _, c in groups)
    groups.append(("mutant", mutations(rng, seeds, max(350, 1050 - total))))
    n = 0
    for name, cases in groups:
        for body in cases:
            n += 1
            with open(os.path.join(outdir, "%04d-%s.eml" % (n, name)), "wb") as f:
                f.write(head(n) + body)
    print(n)


def smtp_session(port, jobs, to, results, lock):
    def reply(f):
        lines = []
        while True:
            line = f.readline()
            if not line:
                return 0, b"connection closed"
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                break
        try:
            return int(lines[-1][:3]), lines[-1].strip()
        except ValueError:
            return 0, lines[-1].strip()

    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=300)
        f = s.makefile("rb")
        reply(f)
        s.sendall(b"EHLO corpus.a.test\r\n")
        reply(f)
        return s, f

    s, f = connect()
    while True:
        with lock:
            if not jobs:
                break
            path = jobs.pop()
        data = open(path, "rb").read()
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        stuffed = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in data.split(b"\r\n"))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        for rcpt in to:
            code = 0
            for attempt in range(2):
                try:
                    s.sendall(b"MAIL FROM:<alice@a.test>\r\n")
                    code, _ = reply(f)
                    if code == 250:
                        s.sendall(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
                        code, _ = reply(f)
                    if code == 250:
                        s.sendall(b"DATA\r\n")
                        code, _ = reply(f)
                    if code == 354:
                        s.sendall(stuffed + b".\r\n")
                        code, _ = reply(f)
                    elif code != 0:
                        s.sendall(b"RSET\r\n")
                        reply(f)
                    if code != 0:
                        break
                except OSError:
                    code = 0
                s.close()
                s, f = connect()
            with lock:
                results.append("%s %s %d" % (os.path.basename(path), rcpt, code))
    s.sendall(b"QUIT\r\n")
    s.close()


def send(args):
    port, to, jobs_n, rest = None, [], 4, []
    it = iter(args)
    for a in it:
        if a == "--port":
            port = int(next(it))
        elif a == "--to":
            to.append(next(it))
        elif a == "--jobs":
            jobs_n = int(next(it))
        else:
            rest.append(a)
    indir, out = rest
    jobs = sorted(os.path.join(indir, p) for p in os.listdir(indir) if p.endswith(".eml"))
    jobs.reverse()
    results, lock = [], threading.Lock()
    threads = [threading.Thread(target=smtp_session, args=(port, jobs, to, results, lock)) for _ in range(jobs_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        f.write("\n".join(sorted(results)) + "\n")
    codes = {}
    for r in results:
        c = r.rsplit(" ", 1)[1]
        codes[c] = codes.get(c, 0) + 1
    print(" ".join("%s=%d" % kv for kv in sorted(codes.items())))


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    if argv[1] == "generate":
        cms = open(argv[argv.index("--cms") + 1], "rb").read()
        generate(argv[2], cms)
    elif argv[1] == "send":
        send(argv[2:])
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
