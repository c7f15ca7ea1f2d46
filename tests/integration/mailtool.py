#!/usr/bin/python3
"""mailtool - helpers for the integration tests, independent of Cables' own C code.

  send --port P --from A --to B [--to C ...] [--mail-opt O ...] [--rcpt-opt O ...]
       [--pause-file F] [--auth USER:PASSWORD] FILE
      Send FILE (bytes as they are) over SMTP to 127.0.0.1:P ("" as --from
      is the null sender; options go on MAIL and on every RCPT).  Prints the
      final reply; exit 0 on 2xx, 4 on 4xx, 5 on 5xx, 3 when no connection.
      With --pause-file, stop in the middle of DATA (the header and part of
      the body sent), create F, and go on when F is removed.  With --auth,
      AUTH PLAIN after EHLO (exit 5 when the server refuses it).
      With --rcpt-replies F, go on past a refused RCPT as a sending MTA
      does (DATA when any was accepted) and write "CODE ADDRESS" per RCPT
      to F; exit as above for DATA, or for the last RCPT when none was
      accepted.
  entity FILE            The content entity: Content-* and MIME-Version fields,
                         an empty line, and the body, CRLF line ends.
  body FILE              The body (after the header section), CRLF line ends.
  header FILE NAME       The unfolded value of the first NAME field.
  strip-sink FILE        A smtp-sink capture without its envelope lines, CRLF.
  make FILE KIND         Write a test message: plain, html-attachment, utf8,
                         big (20 MB attachment), no-body, broken-mime.
  smime-message CMS OUT [--der] [--type T] [--header "Name: value" ...]
                         A message whose body is CMS: openssl's S/MIME output
                         (headers kept) or, with --der, DER (base64-encoded
                         here, as smime-type T, default enveloped-data).
  pgp-message ARMOR OUT [--inline [--charset C]] [--boundary B] [--header "Name: value" ...]
                         An armored OpenPGP message as RFC 3156 PGP/MIME, or
                         inline in a text/plain body.
  pgp-signed ENTITY SIG OUT [--header "Name: value" ...]
                         RFC 3156 multipart/signed: the entity and its armored
                         detached signature.
  pgp-payload FILE       The armored message of an RFC 3156 message, after
                         checking its structure.
  split-signed FILE DATA SIG
                         The signed first part (exact bytes) and the DER
                         signature of a multipart/signed message.
  split-pgp-signed FILE DATA SIG
                         The same for RFC 3156: the armored OpenPGP
                         signature as it is.
"""
import base64
import re
import os
import smtplib
import sys


def crlf(data):
    """Every line break as CRLF."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def split(data):
    """(header fields as raw byte strings, body) of a message, CRLF."""
    data = crlf(data)
    end = data.find(b"\r\n\r\n")
    if end < 0:
        head, body = data, b""
    else:
        head, body = data[:end + 2], data[end + 4:]
    fields = []
    for line in head.split(b"\r\n")[:-1] if head.endswith(b"\r\n") else head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def is_content(field):
    name = field.split(b":", 1)[0].strip().lower()
    return name.startswith(b"content-") or name == b"mime-version"


def entity(data):
    fields, body = split(data)
    out = b"".join(f + b"\r\n" for f in fields if is_content(f))
    return out + b"\r\n" + body


def header(data, name):
    fields, _ = split(data)
    for f in fields:
        key, _, value = f.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return b" ".join(value.replace(b"\r\n", b" ").split())
    return None


def strip_sink(data):
    """smtp-sink -d prepends X-Client-*, X-Helo/Mail/Rcpt-Args and its own Received,
    and appends one newline."""
    if data.endswith(b"\n"):
        data = data[:-1]
    data = crlf(data)
    lines = data.split(b"\r\n")
    i = 0
    while i < len(lines) and lines[i].split(b":", 1)[0] in (
            b"X-Client-Addr", b"X-Client-Proto", b"X-Helo-Args", b"X-Mail-Args", b"X-Rcpt-Args"):
        i += 1
    if i < len(lines) and lines[i].startswith(b"Received: from") and b"smtp-sink" in b"\r\n".join(lines[i:i + 3]):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\r\n".join(lines[i:])


def send(args):
    port, sender, rcpts, path, pause, auth = None, None, [], None, None, None
    rcpt_replies = None
    mail_opts, rcpt_opts = [], []
    it = iter(args)
    for a in it:
        if a == "--mail-opt":
            mail_opts.append(next(it))
        elif a == "--rcpt-opt":
            rcpt_opts.append(next(it))
        elif a == "--pause-file":
            pause = next(it)
        elif a == "--rcpt-replies":
            rcpt_replies = next(it)
        elif a == "--auth":
            auth = next(it).split(":", 1)
        elif a == "--port":
            port = int(next(it))
        elif a == "--from":
            sender = next(it)
        elif a == "--to":
            rcpts.append(next(it))
        else:
            path = a
    data = open(path, "rb").read()
    try:
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=120)
    except OSError as e:
        print("connect: %s" % e)
        return 3
    try:
        smtp.ehlo("client.a.test")
        if auth:
            # AUTH PLAIN over loopback without TLS: the test instance allows it.
            code, msg = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(
                b"\0" + auth[0].encode() + b"\0" + auth[1].encode()).decode())
            if code >= 300:
                print(code, msg.decode())
                return code // 100
        code, msg = smtp.mail(sender, mail_opts)
        if code >= 400:
            print(code, msg.decode())
            return code // 100
        accepted, log = 0, []
        for r in rcpts:
            code, msg = smtp.rcpt(r, rcpt_opts)
            log.append("%d %s\n" % (code, r))
            if code < 400:
                accepted += 1
            elif rcpt_replies is None:
                print(code, msg.decode())
                return code // 100
        if rcpt_replies is not None:
            with open(rcpt_replies, "w") as f:
                f.write("".join(log))
            if accepted == 0:
                print(code, msg.decode())
                return code // 100
        if pause:
            code, msg = data_with_pause(smtp, data, pause)
        else:
            code, msg = smtp.data(data)
        print(code, msg.decode())
        smtp.quit()
        return 0 if code < 300 else code // 100
    except smtplib.SMTPServerDisconnected as e:
        print("disconnected: %s" % e)
        return 4
    except smtplib.SMTPResponseException as e:
        print(e.smtp_code, e.smtp_error.decode(errors="replace"))
        return e.smtp_code // 100


def options(args, flags=(), valued=()):
    """Options after the positional arguments: --FLAG, --NAME VALUE, and
    --header "Name: value" (repeatable, as header lines).  Returns (options, head)."""
    opts, head, i = {}, b"", 0
    while i < len(args):
        name = args[i][2:]
        if name == "header":
            i += 1
            head += args[i].encode() + b"\r\n"
        elif name in flags:
            opts[name] = True
        elif name in valued:
            i += 1
            opts[name] = args[i]
        else:
            raise SystemExit("unknown option " + args[i])
        i += 1
    return opts, head


def smime_message(args):
    cms, out = args[0], args[1]
    opts, head = options(args[2:], flags=("der",), valued=("type",))
    der, smime_type = opts.get("der", False), opts.get("type", "enveloped-data")
    data = open(cms, "rb").read()
    if der:
        body = base64.encodebytes(data).replace(b"\n", b"\r\n")
        msg = head + (b"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=%s; "
                      b"name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n"
                      b"Content-Disposition: attachment; filename=smime.p7m\r\n\r\n" % smime_type.encode()) + body
    else:
        msg = head + crlf(data)
    open(out, "wb").write(msg)


def pgp_message(args):
    """An armored OpenPGP message as RFC 3156 PGP/MIME, or inline in text/plain."""
    armor, out = args[0], args[1]
    opts, head = options(args[2:], flags=("inline",), valued=("charset", "boundary"))
    inline, charset = opts.get("inline", False), opts.get("charset", "us-ascii")
    boundary = opts.get("boundary", "pgp-b0undary")
    head += b"MIME-Version: 1.0\r\n"
    data = crlf(open(armor, "rb").read())
    if inline:
        msg = head + b"Content-Type: text/plain; charset=%s\r\n\r\n" % charset.encode() + data
    else:
        b = boundary.encode()
        msg = head + (b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; '
                      b'boundary="%s"\r\n\r\nThis is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n'
                      b"--%s\r\nContent-Type: application/pgp-encrypted\r\n"
                      b"Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n\r\n"
                      b'--%s\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n'
                      b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n' % (b, b, b)) + \
            data + b"\r\n--%s--\r\n" % b
    open(out, "wb").write(msg)


def pgp_signed(args):
    """RFC 3156 multipart/signed: ENTITY (exact bytes) and an armored detached signature."""
    entity, sig, out = args[0], args[1], args[2]
    _, head = options(args[3:])
    head += b"MIME-Version: 1.0\r\n"
    body = (b'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; '
            b'boundary="sig-b0undary"\r\n\r\nThis is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n'
            b"--sig-b0undary\r\n" + open(entity, "rb").read() + b"\r\n--sig-b0undary\r\n"
            b'Content-Type: application/pgp-signature; name="signature.asc"\r\n\r\n' +
            crlf(open(sig, "rb").read()) + b"\r\n--sig-b0undary--\r\n")
    open(out, "wb").write(head + body)


def split_signed(data, raw=False):
    """(first part, DER signature) of a multipart/signed message, per RFC 1847/2046; raw: the signature part's body as it is."""
    import re
    _, body = split(data)
    ct = header(data, "Content-Type")
    m = re.search(rb'boundary="?([^";\s]+)"?', ct, re.I)
    if not m:
        raise SystemExit("no boundary")
    delim = b"--" + m.group(1)
    if body.startswith(delim + b"\r\n"):
        start1 = len(delim) + 2
    else:
        start1 = body.index(b"\r\n" + delim + b"\r\n") + len(delim) + 4
    end1 = body.index(b"\r\n" + delim + b"\r\n", start1)
    start2 = end1 + len(delim) + 4
    end2 = body.index(b"\r\n" + delim + b"--", start2)
    sig_fields, sig_body = split(body[start2:end2])
    if raw:
        return body[start1:end1], sig_body
    return body[start1:end1], base64.b64decode(b"".join(sig_body.split()))


def data_with_pause(smtp, data, pause):
    """DATA in two halves, waiting between them until the pause file is gone."""
    import time
    code, msg = smtp.docmd("DATA")
    if code != 354:
        return code, msg
    data = crlf(data)
    data = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in data.split(b"\r\n"))
    cut = data.find(b"\r\n\r\n") + 4
    cut = data.find(b"\r\n", cut) + 2          # the header and the first body line
    smtp.send(data[:cut])
    open(pause, "w").close()
    for _ in range(1200):
        if not os.path.exists(pause):
            break
        time.sleep(0.05)
    smtp.send(data[cut:] + (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    return smtp.getreply()


def pgp_payload(data):
    """The armored OpenPGP message of an RFC 3156 multipart/encrypted message,
    after checking its structure; SystemExit naming what is wrong."""
    fields, body = split(data)
    ctype = header(data, "Content-Type")
    if ctype is None:
        raise SystemExit("no Content-Type")
    low = ctype.decode().lower()
    if not low.startswith("multipart/encrypted") or 'protocol="application/pgp-encrypted"' not in low:
        raise SystemExit("not RFC 3156 multipart/encrypted: " + ctype.decode())
    m = re.search(r'boundary="([^"]+)"', ctype.decode())
    if m is None:
        raise SystemExit("no boundary")
    delim = b"--" + m.group(1).encode()
    parts = body.split(b"\r\n" + delim)
    if not body.count(delim + b"--") == 1:
        raise SystemExit("no closing boundary")
    chunks = re.split(b"(?:^|\r\n)" + re.escape(delim) + b"(?:--)?[ \t]*\r\n", body)
    chunks = [c for c in chunks[1:]]
    if len(chunks) < 2:
        raise SystemExit("fewer than two body parts")
    first, second = chunks[0], chunks[1]
    if b"Content-Type: application/pgp-encrypted" not in first or b"\r\n\r\nVersion: 1" not in first:
        raise SystemExit("first part is not application/pgp-encrypted with Version: 1")
    head2, _, payload = second.partition(b"\r\n\r\n")
    if b"Content-Type: application/octet-stream" not in head2:
        raise SystemExit("second part is not application/octet-stream")
    if not payload.startswith(b"-----BEGIN PGP MESSAGE-----\r\n"):
        raise SystemExit("second part is not an armored OpenPGP message")
    del parts
    return payload


def make(path, kind):
    head = (b"From: Alice <alice@a.test>\r\nTo: Bob <bob@b.test>\r\n"
            b"Subject: test %s\r\nMessage-ID: <%s@a.test>\r\n" % (kind.encode(), kind.encode()))
    if kind == "plain":
        msg = head + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" \
            b"Hello Bob,\r\n\r\nthe meeting is at noon. PLAINTEXT-MARKER\r\n.leading dot\r\n\r\nAlice\r\n"
    elif kind == "utf8":
        msg = head + b"MIME-Version: 1.0\r\nContent-Type: text/plain;\r\n\tcharset=\"utf-8\"\r\n" \
            b"Content-Transfer-Encoding:8bit\r\n\r\n" + \
            "Grüße aus Köln – 東京 PLAINTEXT-MARKER\r\n".encode("utf-8") * 20
    elif kind in ("html-attachment", "big"):
        size = 20 * 1024 * 1024 if kind == "big" else 3000
        blob = bytes((i * 37 + i // 256) % 256 for i in range(size)) if kind != "big" else os.urandom(size)
        b64 = base64.encodebytes(blob).replace(b"\n", b"\r\n")
        msg = head + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\n" \
            b"This is a multi-part message in MIME format.\r\n" \
            b"--=_b1\r\nContent-Type: multipart/alternative; boundary=\"=_b2\"\r\n\r\n" \
            b"--=_b2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPLAINTEXT-MARKER\r\n" \
            b"--=_b2\r\nContent-Type: text/html; charset=us-ascii\r\n\r\n<p>PLAINTEXT-MARKER</p>\r\n" \
            b"--=_b2--\r\n" \
            b"--=_b1\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n" \
            b"Content-Disposition: attachment; filename=\"data.bin\"\r\n" \
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--=_b1--\r\n"
    elif kind == "latin1":
        msg = head + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n" \
            b"Content-Transfer-Encoding: 8bit\r\n\r\n" + \
            "Grüße, café, naïve PLAINTEXT-MARKER\r\n".encode("iso-8859-1") * 10
    elif kind == "no-body":
        msg = head + b"\r\n"
    elif kind == "broken-mime":
        msg = head + b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\r\n" \
            b"Content-Transfer-Encoding: base64\r\n\r\n--nothing\r\nPLAINTEXT-MARKER ===\r\n" \
            b"--missing-end\r\n\x01\x02 not base64 at all\r\n"
    else:
        raise SystemExit("unknown kind " + kind)
    with open(path, "wb") as f:
        f.write(msg)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    out = sys.stdout.buffer
    if cmd == "send":
        return send(args)
    if cmd == "make":
        make(args[0], args[1])
        return 0
    if cmd == "pgp-signed":
        pgp_signed(args)
        return 0
    if cmd == "pgp-message":
        pgp_message(args)
        return 0
    if cmd == "smime-message":
        smime_message(args)
        return 0
    if cmd in ("split-signed", "split-pgp-signed"):
        part, sig = split_signed(open(args[0], "rb").read(), cmd == "split-pgp-signed")
        open(args[1], "wb").write(part)
        open(args[2], "wb").write(sig)
        return 0
    data = open(args[0], "rb").read()
    if cmd == "entity":
        out.write(entity(data))
    elif cmd == "body":
        out.write(split(data)[1])
    elif cmd == "header":
        value = header(data, args[1])
        if value is None:
            return 1
        out.write(value + b"\n")
    elif cmd == "pgp-payload":
        out.write(pgp_payload(data))
    elif cmd == "strip-sink":
        out.write(strip_sink(data))
    else:
        raise SystemExit("unknown command " + cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
