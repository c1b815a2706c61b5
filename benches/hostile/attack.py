"""Memory and CPU of a server under hostile load (issue 18): one attack at
a time against a running server (PID, PORT), with a well-behaved client
echoing beside it; prints one line per attack: peak RSS, RSS growth, CPU
seconds the server used, and the good client's echo count and worst
round trip. Loopback only. Standard library only.

    python3 attack.py PID PORT [SECONDS]
"""
import os
import socket
import struct
import sys
import threading
import time

PID, PORT = int(sys.argv[1]), int(sys.argv[2])
SECS = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
HZ = os.sysconf("SC_CLK_TCK")


def rss_kib():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s():
    with open("/proc/%d/stat" % PID) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / HZ


def frame(fin, op, payload):
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | op])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + b"\0\0\0\0" + payload


def ws_open():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("no 101")
        buf += d
    return s


class Good(threading.Thread):
    """Echoes a small message every 10 ms; records round trips."""

    def __init__(self):
        super().__init__(daemon=True)
        self.s = ws_open()
        self.stop = False
        self.rtts = []
        self.failed = None

    def run(self):
        try:
            i = 0
            while not self.stop:
                msg = b"good %d" % i
                t = time.monotonic()
                self.s.sendall(frame(True, 1, msg))
                want = 2 + len(msg)
                got = b""
                while len(got) < want:
                    d = self.s.recv(want - len(got))
                    if not d:
                        raise RuntimeError("closed")
                    got += d
                if got[2:] != msg:
                    raise RuntimeError("bad echo")
                self.rtts.append(time.monotonic() - t)
                i += 1
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001 (reported)
            self.failed = repr(e)


def until(deadline, f):
    while time.monotonic() < deadline:
        if not f():
            return


def non_reading(deadline):
    s = ws_open()
    s.settimeout(0.5)
    msg = frame(True, 2, b"\x5a" * (1 << 20))
    def go():
        try:
            s.sendall(msg)
        except socket.timeout:
            pass  # blocked by TCP: the server stopped reading
        return True
    until(deadline, go)
    return [s]


def ping_flood(deadline):
    s = ws_open()
    s.settimeout(0.5)
    batch = frame(True, 9, b"p" * 125) * 1000
    def go():
        try:
            s.sendall(batch)
        except socket.timeout:
            pass
        return True
    until(deadline, go)
    return [s]


def endless_fragments(deadline):
    socks = [ws_open() for _ in range(8)]
    piece = b"A" * 65536
    for s in socks:
        s.settimeout(0.5)
        s.sendall(frame(False, 2, piece))
    cont = frame(False, 0, piece)
    def go():
        live = 0
        for s in socks:
            try:
                s.sendall(cont)
                live += 1
            except (socket.timeout, OSError):
                pass
        return live > 0
    until(deadline, go)
    return socks


def slowloris(deadline):
    socks = []
    while time.monotonic() < deadline and len(socks) < 1000:
        try:
            s = socket.create_connection(("127.0.0.1", PORT), timeout=2)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        except OSError:
            break
    until(deadline, lambda: time.sleep(0.1) or True)
    return socks


ATTACKS = [("non-reading client, 1 MiB messages", non_reading),
           ("ping flood without reads", ping_flood),
           ("8 endless fragmented messages", endless_fragments),
           ("slowloris, 1000 partial handshakes", slowloris)]

print("| attack (%gs) | RSS before | peak RSS | server CPU s | good client echoes | good worst RTT |" % SECS)
print("| --- | --- | --- | --- | --- | --- |")
for name, attack in ATTACKS:
    good = Good()
    good.start()
    r0, c0, peak = rss_kib(), cpu_s(), 0
    done = threading.Event()
    def sample():
        global peak
        while not done.is_set():
            peak = max(peak, rss_kib())
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    socks = attack(time.monotonic() + SECS)
    done.set()
    sampler.join()
    cpu = cpu_s() - c0
    good.stop = True
    good.join(5)
    for s in socks:
        s.close()
    worst = max(good.rtts) * 1000 if good.rtts else float("nan")
    print("| %s | %d MiB | %d MiB | %.1f | %d%s | %.1f ms |" % (
        name, r0 // 1024, peak // 1024, cpu, len(good.rtts),
        " (FAILED: %s)" % good.failed if good.failed else "", worst))
    sys.stdout.flush()
    time.sleep(1)
