#!/usr/bin/python3
"""dnsdrop - a DNS forwarder for tests: queries for names under a domain
dead*.test are dropped (a domain whose servers never answer);
every other query goes to the real server and its answer comes back.  UDP
and TCP (UDP in one loop: a thread per query is slow here).

usage: dnsdrop.py LISTEN_PORT UPSTREAM_PORT READY_FILE [REVIVE_DIR]

A dead domain D answers again once REVIVE_DIR/D exists.
"""
import os
import select
import socket
import struct
import sys
import threading

LISTEN, UPSTREAM, READY = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
REVIVE_DIR = sys.argv[4] if len(sys.argv) > 4 else None


def dead(msg):
    """Is the question's domain DEAD*.test?  (Only the domain: an owner's hashed label may start with "dead".)"""
    labels, i = [], 12
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].lower())
        i += 1 + n
    if len(labels) < 2 or labels[-1] != b"test" or not labels[-2].startswith(b"dead"):
        return False
    domain = (labels[-2] + b".test").decode(errors="replace")
    return REVIVE_DIR is None or "/" in domain or not os.path.exists(os.path.join(REVIVE_DIR, domain))


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def tcp_one(conn):
    try:
        conn.settimeout(10)
        msg = recv_exactly(conn, struct.unpack("!H", recv_exactly(conn, 2))[0])
        if dead(msg):
            recv_exactly(conn, 1)   # hold the connection until the client gives up
            return
        up = socket.create_connection(("127.0.0.1", UPSTREAM), timeout=5)
        up.sendall(struct.pack("!H", len(msg)) + msg)
        answer = recv_exactly(up, struct.unpack("!H", recv_exactly(up, 2))[0])
        up.close()
        conn.sendall(struct.pack("!H", len(answer)) + answer)
    except OSError:
        pass
    finally:
        conn.close()


def serve_udp(srv):
    """One loop, no thread per query: queries go upstream under IDs of our own, answers come back."""
    up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    up.connect(("127.0.0.1", UPSTREAM))
    waiting, next_id = {}, 0
    while True:
        ready, _, _ = select.select([srv, up], [], [])
        if srv in ready:
            msg, peer = srv.recvfrom(65535)
            if len(msg) >= 12 and not dead(msg):
                next_id = (next_id + 1) & 0xFFFF
                waiting[next_id] = (peer, msg[:2])
                up.send(struct.pack("!H", next_id) + msg[2:])
        if up in ready:
            try:
                answer = up.recv(65535)
            except OSError:
                continue
            back = waiting.pop(struct.unpack("!H", answer[:2])[0], None)
            if back is not None:
                srv.sendto(back[1] + answer[2:], back[0])


def serve_tcp(srv):
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=tcp_one, args=(conn,), daemon=True).start()


def main():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", LISTEN))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("127.0.0.1", LISTEN))
    t.listen(64)
    threading.Thread(target=serve_tcp, args=(t,), daemon=True).start()
    with open(READY, "w") as f:
        f.write("ready\n")
    serve_udp(u)


main()
