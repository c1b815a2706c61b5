#!/usr/bin/env python3
"""wss:// measurements (a benchmark, never a test: nothing here asserts).

    python3 benches/tls.py [--seconds S] [--idle N] [--reps R] [--duration-ms D]
                           [--skip s_time,echo,handshake,idle] [--quick] [--results DIR]

Builds tests/tls/tls_server.c against the release libnopoll.a (and the
mbedTLS variant when libmbedtls-dev is there), makes a P-256 certificate,
then measures on 127.0.0.1:

1. full TLS handshakes (no resumption) driven by `openssl s_time -new` for
   S seconds, against our listener and against `openssl s_server` (the
   OpenSSL ceiling): handshakes per second and the server's CPU time per
   handshake (utime + stime from /proc). The client is single-threaded
   and shares the 2 cores, so the rate is the client's as much as ours;
   CPU per handshake is the server's own figure.
2. echo over TLS with the load generator (benches/loadgen, `--tls`),
   server pinned to CPU 0, load generator to CPU 1, R interleaved
   repetitions, medians: server CPU per message at 50 × 8 × 32 B text,
   10 × 4 × 16 KiB and 4 × 1 × 1 MiB binary, for our wss:// echo
   (c-examples/echo-listener.c with a certificate), libwebsockets wss://
   (benches/servers/lws-echo.c) and the ceiling: benches/servers/tls-echo.c,
   OpenSSL alone echoing decrypted bytes (no WebSocket), set up as our
   listener sets OpenSSL up.
3. full handshakes with 200 in flight (load generator `handshake --tls`:
   TCP, TLS without resumption, the upgrade, the 101 checked; for the
   ceiling TLS and a one-byte echo): handshakes/s and server CPU per
   handshake.
4. memory per idle connection: RSS growth of the server over N upgraded
   WebSocket connections left idle, TLS by OpenSSL, TLS by the mbedTLS
   table, plain ws:// (c-examples/echo-listener), libwebsockets wss://,
   and OpenSSL alone (tls-echo: TLS and a one-byte echo, then idle; the
   same RSS method, so the difference is what our connection adds to
   OpenSSL's own SSL*).

Prints the tables and writes DIR/tls.md and DIR/tls.json (DIR defaults
to benches/results). Every process it starts is stopped.
"""
import argparse
import json
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
    return {"per_s": n / wall, "cpu_us": per}


# (key, label, conns, in flight, size, binary)
ECHO_SHAPES = [
    ("50x8x32", "50 × 8 × 32 B text", 50, 8, 32, False),
    ("10x4x16K", "10 × 4 × 16 KiB binary", 10, 4, 16384, True),
    ("4x1x1M", "4 × 1 × 1 MiB binary", 4, 1, 1048576, True),
]
CEILING = "OpenSSL alone (tls-echo)"
OURS = "nopoll-rs wss:// (C API)"
LWS = "libwebsockets wss://"


def loadgen_passes(a, tmp, cert, key, skip, out):
    """Echo and 200-in-flight handshakes over TLS with the load generator."""
    import benchlib as B
    B.setup()
    servers = [(CEILING, [os.path.join(tmp, "tls-echo"), "{port}", cert, key], None),
               (OURS, [os.path.join(tmp, "echo-listener"), "{port}", cert, key], None)]
    if os.path.exists(os.path.join(tmp, "lws-echo")):
        servers.append((LWS, [os.path.join(tmp, "lws-echo"), "{port}", cert, key], None))
    else:
        print("libwebsockets-dev not installed: libwebsockets not measured")
    raw = {CEILING}

    def echo(srv, shape):
        _, _, conns, inflight, size, binary = shape
        args = ["echo", "--tls", "--conns", str(conns), "--inflight", str(inflight), "--size", str(size),
                "--warmup-ms", str(a.warmup_ms), "--duration-ms", str(a.duration_ms)]
        return B.loadgen(srv, args + (["--binary"] if binary else []) + (["--raw"] if srv.name in raw else []))

    def hs(srv, shape):
        r = B.loadgen(srv, ["handshake", "--tls", "--parallel", "200", "--duration-ms", str(a.duration_ms)]
                      + (["--raw"] if srv.name in raw else []))
        if r.get("failed"):
            B.log("  %s: %d handshakes failed: %s" % (srv.name, r["failed"], r.get("errors")))
        return r

    names = [n for n, *_ in servers]
    if "echo" not in skip:
        print("== echo over TLS: server CPU per message (µs), medians of %d, %d ms windows" % (a.reps, a.duration_ms))
        runs = B.interleaved(a.reps, servers, ECHO_SHAPES, echo)
        out["echo_runs"] = {"%s | %s" % k: v for k, v in runs.items()}
        rows = {}
        for key, label, *_ in ECHO_SHAPES:
            for n in names:
                rs = [r for r in runs.get((key, n), []) if r]
                rows[(key, n)] = {"cpu": B.med([r["cpu_us_per_msg"] for r in rs]),
                                  "rate": B.med([r["msgs_per_s"] for r in rs])} if rs else None
        out["echo"] = {"%s | %s" % k: v for k, v in rows.items()}
        L = ["| shape | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for key, label, *_ in ECHO_SHAPES:
            ceil = (rows.get((key, CEILING)) or {}).get("cpu")
            cells = []
            for n in names:
                r = rows.get((key, n))
                if not r or r["cpu"] is None:
                    cells.append("–")
                    continue
                c = B.fmt(r["cpu"])
                if n != CEILING and ceil:
                    c += " (%.2f×)" % (r["cpu"] / ceil)
                cells.append(c + " · %s msg/s" % B.fmt(r["rate"]))
            L.append("| %s | %s |" % (label, " | ".join(cells)))
        out["echo_table"] = "\n".join(L)
        print(out["echo_table"])
    if "handshake" not in skip:
        print("== full TLS handshakes, 200 in flight (load generator), medians of %d" % a.reps)
        runs = B.interleaved(a.reps, servers, [("hs200",)], hs)
        out["handshake_runs"] = {"%s | %s" % k: v for k, v in runs.items()}
        L = ["| server | handshakes/s | server CPU µs per handshake | p50 latency ms |", "|---|---:|---:|---:|"]
        for n in names:
            rs = [r for r in runs.get(("hs200", n), []) if r and r.get("handshakes")]
            if not rs:
                L.append("| %s | – | – | – |" % n)
                continue
            L.append("| %s | %s | %s | %s |" % (
                n, B.fmt(B.med([r["handshakes_per_s"] for r in rs])),
                B.fmt(B.med([r["server_cpu_us"] / r["handshakes"] for r in rs])),
                B.fmt(B.med([r["lat_p50_us"] for r in rs]) / 1000)))
        out["handshake_table"] = "\n".join(L)
        print(out["handshake_table"])


def idle(name, argv, pattern, tls, n, raw=False):
    p, port = start(argv, pattern)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            s = ctx.wrap_socket(s, server_hostname="localhost")
        if raw:
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise SystemExit("%s did not echo" % name)
            return s
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
    return (after - base) / n


def report(a, out):
    """DIR/tls.md (tables) and DIR/tls.json (every run)."""
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    L = ["# wss:// measurements\n",
         "`python3 benches/tls.py %s` at commit %s (%d CPUs). Server CPU per message: utime+stime over "
         "the window / messages echoed; ratio to OpenSSL alone in parentheses.\n"
         % (" ".join(sys.argv[1:]), rev, os.cpu_count())]
    if out.get("s_time"):
        L += ["## Full handshakes, one client (`openssl s_time -new`, %d s)\n" % a.seconds,
              "| server | handshakes/s | server CPU µs per handshake |", "|---|---:|---:|"]
        L += ["| %s | %.0f | %.0f |" % (n, r["per_s"], r["cpu_us"]) for n, r in out["s_time"].items()]
        L.append("")
    if out.get("echo_table"):
        L += ["## Echo over TLS (load generator, medians of %d, %d ms windows)\n" % (a.reps, a.duration_ms),
              out["echo_table"], ""]
    if out.get("handshake_table"):
        L += ["## Full handshakes, 200 in flight (load generator, medians of %d)\n" % a.reps,
              out["handshake_table"], ""]
    if out.get("idle_kib"):
        L += ["## Memory per idle connection (%d connections, RSS growth / N)\n" % a.idle,
              "| server | KiB per idle connection |", "|---|---:|"]
        L += ["| %s | %.1f |" % (n, v) for n, v in out["idle_kib"].items()]
        L.append("")
    if len(L) == 2:
        print("tls.py: nothing measured")
        return
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "tls.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    with open(os.path.join(a.results, "tls.json"), "w") as f:
        json.dump(dict(out, commit=rev), f, indent=1)
        f.write("\n")
    print("wrote %s/tls.md and tls.json" % a.results)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--idle", type=int, default=200)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--duration-ms", type=int, default=None)
    ap.add_argument("--warmup-ms", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="one repetition, 1 s windows")
    ap.add_argument("--skip", default="", help="comma-separated: s_time,echo,handshake,idle")
    ap.add_argument("--results", default=os.path.join(ROOT, "benches", "results"))
    a = ap.parse_args()
    a.reps = a.reps or (1 if a.quick else 3)
    a.duration_ms = a.duration_ms or (1000 if a.quick else 2000)
    a.warmup_ms = a.warmup_ms or (300 if a.quick else 500)
    skip = set(filter(None, a.skip.split(",")))
    out = {"argv": sys.argv, "reps": a.reps, "duration_ms": a.duration_ms}
    tmp = tempfile.mkdtemp(prefix="nopoll-tls-bench-")
    try:
        sh("cargo build --release --quiet", cwd=ROOT)
        lib = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "libnopoll.a")
        cflags = "-ansi -O2 -I%s/include" % ROOT
        libs = "-lssl -lcrypto -lpthread -ldl -lm"
        sh("cc %s tests/tls/tls_server.c %s %s -o %s/tls_server" % (cflags, lib, libs, tmp), cwd=ROOT)
        sh("cc %s c-examples/echo-listener.c %s %s -o %s/echo-listener" % (cflags, lib, libs, tmp), cwd=ROOT)
        sh("cc -O2 -Wall -Werror benches/servers/tls-echo.c -lssl -lcrypto -o %s/tls-echo" % tmp, cwd=ROOT)
        if subprocess.run(["pkg-config", "--exists", "libwebsockets"]).returncode == 0:
            sh("cc -O2 -Wall -Werror benches/servers/lws-echo.c $(pkg-config --cflags --libs libwebsockets) "
               "-o %s/lws-echo" % tmp, cwd=ROOT)
        sh("cargo build --release --quiet", cwd=os.path.join(ROOT, "benches", "loadgen"))
        mbed = os.path.exists("/usr/include/mbedtls/ssl.h")
        if mbed:
            sh("cc -std=c99 -O2 -I%s/include -c c-examples/tls/nopoll_mbedtls.c -o %s/m.o" % (ROOT, tmp), cwd=ROOT)
            sh("cc %s -DNOPOLL_TEST_MBEDTLS tests/tls/tls_server.c %s/m.o %s -lmbedtls -lmbedx509 -lmbedcrypto %s "
               "-o %s/tls_server_mbedtls" % (cflags, tmp, lib, libs, tmp), cwd=ROOT)
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -out c.pem "
           "-days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost", cwd=tmp)
        cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")

        st = out["s_time"] = {}
        if "s_time" not in skip:
            print("== full handshakes (openssl s_time -new, %d s)" % a.seconds)
            p, port = start([os.path.join(tmp, "tls_server"), cert, key], r"^ready (\d+)")
            st["nopoll-rs (OpenSSL)"] = handshakes("nopoll-rs (OpenSSL)", p, port, a.seconds)
            stop(p)
            if mbed:
                p, port = start([os.path.join(tmp, "tls_server_mbedtls"), cert, key], r"^ready (\d+)")
                st["nopoll-rs (mbedTLS table, TLS 1.2)"] = handshakes("nopoll-rs (mbedTLS table, TLS 1.2)", p,
                                                                      port, a.seconds)
                stop(p)
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            p = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert", cert, "-key",
                                  key, "-quiet", "-naccept", "1000000"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(1)
            st["openssl s_server (ceiling)"] = handshakes("openssl s_server (ceiling)", p, port, a.seconds)
            stop(p)

        loadgen_passes(a, tmp, cert, key, skip, out)

        mem = out["idle_kib"] = {}
        if "idle" not in skip:
            print("== memory per idle connection (%d connections)" % a.idle)
            mem["nopoll-rs wss:// (OpenSSL)"] = idle("nopoll-rs wss:// (OpenSSL)",
                                                     [os.path.join(tmp, "tls_server"), cert, key],
                                                     r"^ready (\d+)", True, a.idle)
            mem[CEILING] = idle(CEILING + ", TLS + 1 byte", [os.path.join(tmp, "tls-echo"), "0", cert, key],
                                r"127.0.0.1:(\d+)", True, a.idle, raw=True)
            if mbed:
                mem["nopoll-rs wss:// (mbedTLS table)"] = idle(
                    "nopoll-rs wss:// (mbedTLS table)", [os.path.join(tmp, "tls_server_mbedtls"), cert, key],
                    r"^ready (\d+)", True, a.idle)
            if os.path.exists(os.path.join(tmp, "lws-echo")):
                s = socket.socket()
                s.bind(("127.0.0.1", 0))
                lport = s.getsockname()[1]
                s.close()
                mem[LWS] = idle(LWS, [os.path.join(tmp, "lws-echo"), str(lport), cert, key],
                                r"127.0.0.1:(\d+)", True, a.idle)
            mem["nopoll-rs ws:// (plain)"] = idle("nopoll-rs ws:// (plain)", [os.path.join(tmp, "echo-listener"), "0"],
                                                  r"(\d+)/\s*$", False, a.idle)
        report(a, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
