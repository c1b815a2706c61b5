#!/usr/bin/env python3
"""wss:// measurements (a benchmark, never a test: nothing here asserts).

    python3 benches/tls.py [--seconds S] [--idle N]

Builds tests/tls/tls_server.c against the release libnopoll.a (and the
mbedTLS variant when libmbedtls-dev is there), makes a P-256 certificate,
then measures on 127.0.0.1:

1. full TLS handshakes (no resumption) driven by `openssl s_time -new` for
   S seconds, against our listener and against `openssl s_server` (the
   OpenSSL ceiling): handshakes per second and the server's CPU time per
   handshake (utime + stime from /proc). The client is single-threaded
   and shares the 2 cores, so the rate is the client's as much as ours;
   CPU per handshake is the server's own figure.
2. memory per idle connection: RSS growth of the server over N upgraded
   WebSocket connections left idle, TLS by OpenSSL, TLS by the mbedTLS
   table, and plain ws:// (c-examples/echo-listener).

Prints a table; writes nothing. Every process it starts is stopped.
"""
import argparse
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICK = os.sysconf("SC_CLK_TCK")


def sh(cmd, cwd=None):
    subprocess.run(cmd, cwd=cwd, shell=True, check=True, timeout=1800,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))


def start(argv, pattern, stderr=subprocess.DEVNULL):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        line = p.stdout.readline()
        m = re.search(pattern, line)
        if m:
            return p, int(m.group(1))
    p.kill()
    raise SystemExit("%s did not start" % argv[0])


def stop(p):
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def handshakes(name, p, port, seconds):
    c0 = cpu_s(p.pid)
    r = subprocess.run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                        "-time", str(seconds)], capture_output=True, text=True, timeout=seconds + 60)
    c1 = cpu_s(p.pid)
    m = re.search(r"(\d+) connections in (\d+) real seconds", r.stdout)
    n, wall = (int(m.group(1)), int(m.group(2))) if m else (0, seconds)
    per = (c1 - c0) / n * 1e6 if n else float("nan")
    print("%-34s %8.0f /s   %8.0f us server CPU per handshake   (%d in %d s)" % (name, n / wall, per, n, wall))


def idle(name, argv, pattern, tls, n):
    p, port = start(argv, pattern)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        h = b""
        while b"\r\n\r\n" not in h:
            c = s.recv(1)
            if not c:
                raise SystemExit("%s closed during the upgrade" % name)
            h += c
        return s
    socks = [one() for _ in range(10)]
    time.sleep(0.5)
    base = rss_kib(p.pid)
    socks += [one() for _ in range(n)]
    time.sleep(0.5)
    after = rss_kib(p.pid)
    print("%-34s %8.1f KiB per idle connection   (RSS %d -> %d KiB over %d)" % (name, (after - base) / n, base, after, n))
    for s in socks:
        s.close()
    stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=200)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="nopoll-tls-bench-")
    try:
        sh("cargo build --release --quiet", cwd=ROOT)
        lib = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "libnopoll.a")
        cflags = "-ansi -O2 -I%s/include" % ROOT
        libs = "-lssl -lcrypto -lpthread -ldl -lm"
        sh("cc %s tests/tls/tls_server.c %s %s -o %s/tls_server" % (cflags, lib, libs, tmp), cwd=ROOT)
        sh("cc %s c-examples/echo-listener.c %s %s -o %s/echo-listener" % (cflags, lib, libs, tmp), cwd=ROOT)
        mbed = os.path.exists("/usr/include/mbedtls/ssl.h")
        if mbed:
            sh("cc -std=c99 -O2 -I%s/include -c c-examples/tls/nopoll_mbedtls.c -o %s/m.o" % (ROOT, tmp), cwd=ROOT)
            sh("cc %s -DNOPOLL_TEST_MBEDTLS tests/tls/tls_server.c %s/m.o %s -lmbedtls -lmbedx509 -lmbedcrypto %s "
               "-o %s/tls_server_mbedtls" % (cflags, tmp, lib, libs, tmp), cwd=ROOT)
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem "
           "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost", cwd=tmp)
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")

        print("== full handshakes (openssl s_time -new, %d s)" % a.seconds)
        p, port = start([os.path.join(tmp, "tls_server"), cert, key], r"^ready (\d+)")
        handshakes("nopoll-rs (OpenSSL)", p, port, a.seconds)
        stop(p)
        if mbed:
            p, port = start([os.path.join(tmp, "tls_server_mbedtls"), cert, key], r"^ready (\d+)")
            handshakes("nopoll-rs (mbedTLS table, TLS 1.2)", p, port, a.seconds)
            stop(p)
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        p = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", cert, "-key", key,
                              "-quiet", "-naccept", "1000000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        handshakes("openssl s_server (ceiling)", p, port, a.seconds)
        stop(p)

        print("== memory per idle connection (%d upgraded WebSocket connections)" % a.idle)
        idle("nopoll-rs wss:// (OpenSSL)", [os.path.join(tmp, "tls_server"), cert, key], r"^ready (\d+)", True, a.idle)
        if mbed:
            idle("nopoll-rs wss:// (mbedTLS table)", [os.path.join(tmp, "tls_server_mbedtls"), cert, key],
                 r"^ready (\d+)", True, a.idle)
        idle("nopoll-rs ws:// (plain)", [os.path.join(tmp, "echo-listener"), "0"], r"(\d+)/\s*$", False, a.idle)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
