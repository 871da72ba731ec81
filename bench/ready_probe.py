#!/usr/bin/env python3
"""bench/ready_probe.py: wait until a server answers, for bench/servers.sh.

    ready_probe.py redis|http HOST PORT T0 DEADLINE_S PID

Connects to HOST:PORT again and again (0.25 s connect timeout, 50 ms between tries) until
redis answers PING with +PONG, or HTTP answers GET / with status 200. Prints the seconds from
T0 (a Unix time, e.g. `date +%s.%N` taken just before the VM was started) to the answer, and
exits 0. Exits 1 when DEADLINE_S seconds have passed since T0, or when process PID (the VM's
launcher) is gone.
"""
import os
import socket
import sys
import time


def answers(kind, host, port):
    with socket.create_connection((host, port), timeout=0.25) as s:
        s.settimeout(2.0)
        if kind == "redis":
            s.sendall(b"PING\r\n")
            want = b"+PONG\r\n"
            got = b""
            while len(got) < len(want):
                chunk = s.recv(64)
                if not chunk:
                    break
                got += chunk
            return got.startswith(want)
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host.encode())
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(256)
            if not chunk:
                break
            got += chunk
        status = got.split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and status[1] == b"200"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("redis", "http"):
        sys.exit(__doc__)
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0, deadline, pid = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    while time.time() - t0 < deadline:
        try:
            if answers(kind, host, port):
                print(f"{time.time() - t0:.3f}")
                return
        except OSError:
            pass
        if not alive(pid):
            sys.exit(1)
        time.sleep(0.05)
    sys.exit(1)


if __name__ == "__main__":
    main()
