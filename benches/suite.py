#!/usr/bin/env python3
"""The nopoll-rs benchmark suite: echo servers measured side by side.

Run through benches/run.sh (it builds everything first). Standard library
only. Every server runs pinned to CPU 0, the load generator to CPU 1;
everything listens and connects on loopback only. Each shape is repeated
several times, the servers interleaved (order rotated per repetition), and
the medians reported. Every process started here is killed on exit.

Results go to benches/results/: results.md (tables), results.json (every
run), cpu_per_msg.svg (plot).
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(HERE, "build")
RESULTS = os.path.join(HERE, "results")
LOADGEN = os.path.join(HERE, "loadgen", "target", "release", "nopoll-loadgen")

SERVER_CPU = "0"
LOADGEN_CPU = "1"

# name -> (command without the port, speaks WebSocket)
SERVERS = {
    "raw-tcp": ([os.path.join(BUILD, "raw-echo")], False),
    "nopoll-rs (C API)": ([os.path.join(BUILD, "echo-listener")], True),
    # echo-listener built with -DECHO_UPSTREAM_FLUSH: upstream's flush loop after each send
    "nopoll-rs (C API + upstream flush)": ([os.path.join(BUILD, "upstream-flush-echo")], True),
    "nopoll-rs (Rust API)": ([os.path.join(ROOT, "target", "release", "examples", "echo_server")], True),
    "libwebsockets": ([os.path.join(BUILD, "lws-echo")], True),
    "tokio-tungstenite": (
        [os.path.join(HERE, "servers", "tungstenite-echo", "target", "release", "tungstenite-echo")],
        True,
    ),
}
OURS = ["nopoll-rs (C API)", "nopoll-rs (Rust API)"]

# (key, label, conns, in flight, size, binary)
ECHO_SHAPES = [
    ("1x1x32", "1 conn × 1 in flight × 32 B text", 1, 1, 32, False),
    ("50x8x32", "50 conns × 8 in flight × 32 B text", 50, 8, 32, False),
    ("10x4x16K", "10 conns × 4 in flight × 16 KiB binary", 10, 4, 16384, True),
    ("4x1x1M", "4 conns × 1 in flight × 1 MiB binary", 4, 1, 1048576, True),
]
HANDSHAKE_PARALLEL = 200
IDLE_COUNTS = [1000, 50000]

PROCS = []  # every process started, killed on exit


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def kill_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                p.terminate()
            except OSError:
                pass
    deadline = time.time() + 3
    for p in PROCS:
        try:
            p.wait(timeout=max(0.05, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                p.kill()
                p.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
    PROCS.clear()


def on_signal(sig, _frame):
    kill_all()
    sys.exit(128 + sig)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def nofile_hard():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


CAP_PERCENT = 50  # the capped handshake pass: server CPU quota, % of one core


class CpuCap:
    """A CPU quota for one process (cgroup v2 cpu.max or v1 cpu.cfs_quota_us),
    so the server and not the load generator is the bottleneck. `available()`
    is False where no cgroup is writable (not root, no cpu controller)."""

    V2 = "/sys/fs/cgroup"
    V1 = "/sys/fs/cgroup/cpu"

    def __init__(self, pid, percent, period_us=10000):
        self.path = None
        quota = period_us * percent // 100
        v2 = os.path.exists(os.path.join(self.V2, "cgroup.controllers"))
        self.path = os.path.join(self.V2 if v2 else self.V1, f"nopoll-bench-{os.getpid()}-{pid}")
        os.mkdir(self.path)
        CAPS.append(self)
        try:
            if v2:
                self._write("cpu.max", f"{quota} {period_us}")
            else:
                self._write("cpu.cfs_period_us", str(period_us))
                self._write("cpu.cfs_quota_us", str(quota))
            if pid is not None:
                self._write("cgroup.procs", str(pid))
        except OSError:
            self.remove()
            raise

    def _write(self, f, v):
        with open(os.path.join(self.path, f), "w") as fh:
            fh.write(v)

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)  # the server has exited: the group is empty
            except OSError:
                pass
            self.path = None

    @staticmethod
    def available():
        """Whether a capped group can be made here (tried with no process in it)."""
        try:
            c = CpuCap(None, 100)
        except OSError:
            return False
        c.remove()
        return True


CAPS = []  # every CPU cap made, removed on exit


def remove_caps():
    for c in CAPS:
        c.remove()
    CAPS.clear()


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, preexec_fn=raise_nofile, **kw)
    PROCS.append(p)
    return p


def reap(p, timeout=5):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    if p in PROCS:
        PROCS.remove(p)


class Pinned:
    """A server process pinned to CPU 0 (argv as given, listening on
    `port`), started once it has printed a line; its output in a log file."""

    def __init__(self, name, argv, port, env=None):
        self.name = name
        self.port = port
        self.log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
        e = None
        if env:
            e = dict(os.environ)
            e.update(env)
        self.proc = spawn(
            ["taskset", "-c", SERVER_CPU] + argv,
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=e,
        )
        self.pid = self.proc.pid  # taskset execs the server: same pid
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start: {self.output()}")
            with open(self.log.name, "rb") as f:
                if b"\n" in f.read():
                    return
            time.sleep(0.02)
        raise RuntimeError(f"{name} did not start: {self.output()}")

    def output(self):
        with open(self.log.name, "rb") as f:
            return f.read()[-2000:].decode(errors="replace")

    def stop(self):
        reap(self.proc)
        os.unlink(self.log.name)


class Server(Pinned):
    """One server of SERVERS on the next loopback port."""

    next_port = int(os.environ.get("BENCH_PORT_BASE", "19000"))

    def __init__(self, name):
        cmd, self.ws = SERVERS[name]
        Server.next_port += 1
        super().__init__(name, cmd + [str(Server.next_port)], Server.next_port)

    def rss_kib(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "RssAnon"):
                    out[k] = int(v.split()[0])
        return out


def loadgen_cmd(args):
    return ["taskset", "-c", LOADGEN_CPU, LOADGEN] + args


def last_json(text):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no result from the load generator: {text[-500:]}")


def run_loadgen(args, timeout):
    p = spawn(loadgen_cmd(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        reap(p)
        raise RuntimeError(f"load generator timed out: {args}")
    PROCS.remove(p)
    try:
        return last_json(out.decode())
    except RuntimeError:
        raise RuntimeError(f"load generator failed ({p.returncode}): {err.decode()[-500:]}")


def readline_timeout(stream, timeout):
    """A line from a pipe, or None after `timeout` seconds."""
    end = time.time() + timeout
    buf = b""
    fd = stream.fileno()
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not r:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
        if ch == b"\n":
            return buf.decode(errors="replace")
    return None


def echo_args(shape, server, opts):
    _, _, conns, inflight, size, binary = shape
    a = ["echo", "--port", str(server.port), "--conns", str(conns), "--inflight", str(inflight),
         "--size", str(size), "--warmup-ms", str(opts.warmup_ms), "--duration-ms", str(opts.duration_ms),
         "--server-pid", str(server.pid)]
    if binary:
        a.append("--binary")
    if not server.ws:
        a.append("--raw")
    return a


def handshake_args(server, opts, duration_ms=None):
    return ["handshake", "--port", str(server.port), "--parallel", str(HANDSHAKE_PARALLEL),
            "--duration-ms", str(duration_ms or opts.duration_ms), "--server-pid", str(server.pid)]


# ------------------------------------------------------------------ syscalls

def perf_works():
    try:
        r = subprocess.run(["perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter", "true"],
                           capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and re.search(rb"^\d+,", r.stderr, re.M) is not None


def strace_works():
    try:
        return subprocess.run(["strace", "-V"], capture_output=True, timeout=10).returncode == 0
    except OSError:
        return False


def counted_run(server, args, tool, timeout):
    """Runs the load generator with --wait-go; `tool` ('strace' or 'perf')
    counts the server's system calls over the measured window only.
    Returns (loadgen result, total calls, top calls by name)."""
    lg = spawn(loadgen_cmd(args + ["--wait-go"]), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
               stderr=subprocess.PIPE)
    out_file = tempfile.NamedTemporaryFile(prefix=f"bench-{tool}-", delete=False).name
    tracer = None
    try:
        line = readline_timeout(lg.stdout, timeout)
        if line is None or not line.startswith("READY"):
            raise RuntimeError(f"load generator not ready: {line!r} {lg.stderr.read1(2000) if lg.poll() is not None else ''}")
        if tool == "strace":
            tracer = spawn(["taskset", "-c", LOADGEN_CPU, "strace", "-c", "-f", "-o", out_file, "-p", str(server.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            attached = readline_timeout(tracer.stderr, 10)
            if attached is None or "attached" not in attached:
                raise RuntimeError(f"strace did not attach: {attached!r}")
            time.sleep(0.2)  # the other threads of a multi-threaded server
        else:
            tracer = spawn(["taskset", "-c", LOADGEN_CPU, "perf", "stat", "-x", ",", "-e", "raw_syscalls:sys_enter",
                            "-o", out_file, "-p", str(server.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        lg.stdin.write(b"go\n")
        lg.stdin.flush()
        res = None
        end = time.time() + timeout
        while time.time() < end:
            line = readline_timeout(lg.stdout, max(0.1, end - time.time()))
            if line is None:
                break
            if line.startswith("{"):
                res = json.loads(line)
                break
        if res is None:
            raise RuntimeError("load generator gave no result")
        time.sleep(0.2)
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=20)
        PROCS.remove(tracer)
        lg.wait(timeout=20)
        PROCS.remove(lg)
        with open(out_file) as f:
            text = f.read()
        if tool == "strace":
            total, top = parse_strace(text)
        else:
            m = re.search(r"^(\d+),", text, re.M)
            total, top = (int(m.group(1)) if m else None), {}
        return res, total, top
    finally:
        for p in (tracer, lg):
            if p is not None and p in PROCS:
                reap(p)
        try:
            os.unlink(out_file)
        except OSError:
            pass


def parse_strace(text):
    total, top = None, {}
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 5 and f[-1] == "total":
            total = int(f[3])
        elif len(f) >= 5 and re.match(r"^\d+\.\d+$", f[0]) and f[3].isdigit():
            top[f[-1]] = int(f[3])
    return total, dict(sorted(top.items(), key=lambda kv: -kv[1])[:6])


# ------------------------------------------------------------------ memory

def idle_run(server, count, timeout):
    """Opens `count` idle connections (in several load generator processes
    when one cannot hold them all) and returns the server's RSS growth."""
    per_proc = max(1, nofile_hard() - 200)
    sizes = []
    left = count
    while left > 0:
        sizes.append(min(per_proc, left))
        left -= sizes[-1]
    # Warm the server with a few connections first (lazy buffers, allocator arenas).
    warm = run_idle_procs(server, [16], timeout)
    for p in warm:
        p.stdin.close()
        p.wait(timeout=20)
        PROCS.remove(p)
    time.sleep(0.3)
    before = server.rss_kib()
    procs = run_idle_procs(server, sizes, timeout)
    opened = failed = 0
    secs = 0.0
    errors = []
    for p, _n in zip(procs, sizes):
        info = p.idle_info
        opened += info["open"]
        failed += info["failed"]
        secs = max(secs, info["seconds"])
        errors += info.get("errors", [])
    time.sleep(0.5)
    after = server.rss_kib()
    for p in procs:
        p.stdin.close()
    for p in procs:
        p.wait(timeout=30)
        PROCS.remove(p)
    per_conn = (after["VmRSS"] - before["VmRSS"]) * 1024 / opened if opened else None
    anon = (after.get("RssAnon", 0) - before.get("RssAnon", 0)) * 1024 / opened if opened else None
    return {"requested": count, "open": opened, "failed": failed, "open_seconds": secs,
            "rss_before_kib": before["VmRSS"], "rss_after_kib": after["VmRSS"],
            "bytes_per_conn": per_conn, "anon_bytes_per_conn": anon, "errors": errors[:3]}


def run_idle_procs(server, sizes, timeout):
    procs = []
    for i, n in enumerate(sizes):
        # Source addresses 127.0.0.2.. so that no one address runs out of ports.
        src = ",".join(f"127.0.0.{2 + i * 4 + k}" for k in range(4))
        p = spawn(loadgen_cmd(["idle", "--port", str(server.port), "--conns", str(n), "--parallel",
                               str(HANDSHAKE_PARALLEL), "--src", src, "--wait-go"]),
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = None
        end = time.time() + timeout
        while time.time() < end:
            line = readline_timeout(p.stdout, max(0.1, end - time.time()))
            if line is None or line.startswith("READY"):
                break
        if line is None:
            reap(p)
            raise RuntimeError(f"idle load generator failed: {p.stderr.read1(2000) if p.poll() is not None else 'timeout'}")
        p.idle_info = json.loads(line.split(" ", 1)[1])
        procs.append(p)
    return procs


# ------------------------------------------------------------------ report

def med(values):
    v = [x for x in values if x is not None]
    return statistics.median(v) if v else None


def fmt(x, digits=3):
    if x is None:
        return "–"
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}g}"


def ratio(a, b):
    return a / b if a is not None and b not in (None, 0) else None


def summarize(runs, names):
    """Medians per (kind, shape, server)."""
    s = {}
    for r in runs:
        key = (r["kind"], r["shape"], r["server"])
        s.setdefault(key, []).append(r)
    out = {}
    for key, rs in s.items():
        fields = set()
        for r in rs:
            fields |= {k for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        out[key] = {f: med([r.get(f) for r in rs]) for f in fields}
        out[key]["n"] = len(rs)
        out[key]["failed_total"] = sum(r.get("failed", 0) or 0 for r in rs)
    return out


def svg_plot(summ, names, path):
    """CPU per message by message size, log-log, one line per server."""
    sizes = [(32, "50x8x32"), (16384, "10x4x16K"), (1048576, "4x1x1M")]
    colors = {"raw-tcp": "#555555", "nopoll-rs (C API)": "#d62728", "nopoll-rs (Rust API)": "#ff7f0e",
              "libwebsockets": "#1f77b4", "tokio-tungstenite": "#2ca02c"}
    import math
    pts = {}
    for n in names:
        for size, shape in sizes:
            v = summ.get(("echo", shape, n), {}).get("cpu_us_per_msg")
            if v:
                pts.setdefault(n, []).append((size, v))
    allv = [v for p in pts.values() for _, v in p] or [1]
    ymin = 10 ** math.floor(math.log10(min(allv)))
    ymax = max(10 ** math.ceil(math.log10(max(allv))), ymin * 10)
    W, H, L, R, T, B = 760, 480, 80, 200, 50, 60
    pw, ph = W - L - R, H - T - B

    def x(size):
        return L + (math.log10(size) - math.log10(16)) / (math.log10(2 * 1048576) - math.log10(16)) * pw

    def y(v):
        return T + ph - (math.log10(v) - math.log10(ymin)) / (math.log10(ymax) - math.log10(ymin)) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="25" font-size="15" font-weight="bold">Server CPU time per echoed message (lower is better)</text>',
         f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    d = ymin
    while d <= ymax * 1.0001:
        yy = y(d)
        o.append(f'<line x1="{L}" y1="{yy:.1f}" x2="{L + pw}" y2="{yy:.1f}" stroke="#e5e5e5"/>')
        label = f"{d:g}"
        o.append(f'<text x="{L - 6}" y="{yy + 4:.1f}" text-anchor="end">{label}</text>')
        d *= 10
    for size, _ in sizes:
        xx = x(size)
        o.append(f'<line x1="{xx:.1f}" y1="{T}" x2="{xx:.1f}" y2="{T + ph}" stroke="#e5e5e5"/>')
        lab = {32: "32 B (50×8)", 16384: "16 KiB (10×4)", 1048576: "1 MiB (4×1)"}[size]
        o.append(f'<text x="{xx:.1f}" y="{T + ph + 18}" text-anchor="middle">{lab}</text>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 15}" text-anchor="middle">message size (conns × in flight)</text>')
    o.append(f'<text x="18" y="{T + ph / 2}" text-anchor="middle" transform="rotate(-90 18 {T + ph / 2})">'
             f'server CPU µs per message (log)</text>')
    ly = T + 10
    for n in names:
        if n not in pts:
            continue
        c = colors.get(n, "#000")
        dash = ' stroke-dasharray="5,4"' if n == "raw-tcp" else ""
        path_d = " ".join(f"{'M' if i == 0 else 'L'}{x(s):.1f},{y(v):.1f}" for i, (s, v) in enumerate(pts[n]))
        o.append(f'<path d="{path_d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for s, v in pts[n]:
            o.append(f'<circle cx="{x(s):.1f}" cy="{y(v):.1f}" r="3.5" fill="{c}"><title>{n}: {v:.3g} µs</title></circle>')
        o.append(f'<line x1="{L + pw + 15}" y1="{ly}" x2="{L + pw + 40}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        o.append(f'<text x="{L + pw + 45}" y="{ly + 4}">{n}</text>')
        ly += 20
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def report(meta, runs, names, opts):
    summ = summarize(runs, names)
    ws = [n for n in names if SERVERS[n][1]]
    L = []
    L.append("# Benchmark results\n")
    L.append(f"Command: `{meta['command']}` — {meta['date']}, commit `{meta['commit']}`, "
             f"{meta['cpu']} ({meta['cores']} cores), Linux {meta['kernel']}. Server pinned to CPU {SERVER_CPU}, "
             f"load generator to CPU {LOADGEN_CPU}, loopback only. Medians of {opts.reps} interleaved repetitions "
             f"({opts.duration_ms} ms measured windows after {opts.warmup_ms} ms warm-up). "
             f"Server CPU = utime+stime from /proc/PID/stat over the window. "
             f"Syscalls: `strace -c -f -p` (and `perf stat -e raw_syscalls:sys_enter -p`, which barely slows the "
             f"server) attached for a measured window only.\n")
    L.append("## Echo\n")
    for key, label, *_ in ECHO_SHAPES:
        L.append(f"### {label}\n")
        L.append("| server | msg/s | MB/s | p50 µs | p99 µs | CPU µs/msg | × raw TCP | syscalls/msg (strace) | syscalls/msg (perf) |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        raw = summ.get(("echo", key, "raw-tcp"), {}).get("cpu_us_per_msg")
        for n in names:
            s = summ.get(("echo", key, n))
            if not s:
                continue
            st = summ.get(("strace", key, n), {})
            pf = summ.get(("perf", key, n), {})
            L.append(f"| {n} | {fmt(s.get('msgs_per_s'))} | {fmt(s.get('mb_per_s'))} | {fmt(s.get('lat_p50_us'))} | "
                     f"{fmt(s.get('lat_p99_us'))} | {fmt(s.get('cpu_us_per_msg'))} | "
                     f"{fmt(ratio(s.get('cpu_us_per_msg'), raw))} | {fmt(st.get('syscalls_per_unit'))} | "
                     f"{fmt(pf.get('syscalls_per_unit'))} |")
        L.append("")
    L.append("### CPU per message, ratios (row ÷ column; below 1 means the row server spends less)\n")
    L.append("| shape | server | " + " | ".join(f"÷ {n}" for n in names) + " |")
    L.append("|---|---|" + "---:|" * len(names))
    for key, *_ in ECHO_SHAPES:
        for a in OURS:
            va = summ.get(("echo", key, a), {}).get("cpu_us_per_msg")
            if va is None:
                continue
            cells = [fmt(ratio(va, summ.get(("echo", key, b), {}).get("cpu_us_per_msg"))) for b in names]
            L.append(f"| {key} | {a} | " + " | ".join(cells) + " |")
    L.append("")
    L.append(f"## Opening handshakes, {HANDSHAKE_PARALLEL} in flight\n")
    L.append("Each: TCP connect, upgrade request, 101 with Sec-WebSocket-Accept checked, abortive close. "
             "On two cores the load generator (whose CPU also carries the kernel's loopback TCP set-up) "
             "is the bottleneck of the measured rate; `per server CPU-s` is handshakes per second of server "
             "CPU time, the rate one server core would sustain.\n")
    L.append("| server | handshakes/s | failed | p50 µs | p99 µs | server CPU µs/handshake | per server CPU-s | "
             "syscalls/handshake (strace) | syscalls/handshake (perf) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ws:
        s = summ.get(("handshake", "hs", n))
        if not s:
            continue
        st = summ.get(("strace", "hs", n), {})
        pf = summ.get(("perf", "hs", n), {})
        L.append(f"| {n} | {fmt(s.get('handshakes_per_s'))} | {s.get('failed_total', 0)} | {fmt(s.get('lat_p50_us'))} | "
                 f"{fmt(s.get('lat_p99_us'))} | {fmt(s.get('cpu_us_per_hs'))} | {fmt(s.get('hs_per_cpu_s'))} | "
                 f"{fmt(st.get('syscalls_per_unit'))} | {fmt(pf.get('syscalls_per_unit'))} |")
    if meta.get("cap_percent"):
        L.append("")
        L.append(f"### Server-bound: each server limited to {meta['cap_percent']}% of its core\n")
        L.append(f"The same measurement with the server in a cgroup whose CPU quota is {meta['cap_percent']}% of "
                 "one core (10 ms period), so that the server, not the load generator, is the bottleneck "
                 "for every server.\n")
        L.append("| server | handshakes/s | failed | p50 µs | p99 µs | server CPU µs/handshake | ÷ libwebsockets |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        lws_c = summ.get(("handshake", "hs-capped", "libwebsockets"), {}).get("handshakes_per_s")
        for n in ws:
            s = summ.get(("handshake", "hs-capped", n))
            if not s:
                continue
            L.append(f"| {n} | {fmt(s.get('handshakes_per_s'))} | {s.get('failed_total', 0)} | "
                     f"{fmt(s.get('lat_p50_us'))} | {fmt(s.get('lat_p99_us'))} | {fmt(s.get('cpu_us_per_hs'))} | "
                     f"{fmt(ratio(s.get('handshakes_per_s'), lws_c))} |")
    L.append("")
    L.append("## Idle connections: server memory\n")
    L.append("RSS growth of the server process (VmRSS, /proc/PID/status) divided by the connections opened "
             "(after a 16-connection warm-up), measured 0.5 s after the last handshake.\n")
    L.append("| server | " + " | ".join(f"{c:,} requested: opened / failed / bytes per conn" for c in IDLE_COUNTS) + " |")
    L.append("|---|" + "---:|" * len(IDLE_COUNTS))
    for n in ws:
        cells = []
        for c in IDLE_COUNTS:
            s = summ.get(("idle", str(c), n))
            cells.append("–" if not s else f"{fmt(s.get('open'))} / {s.get('failed_total', 0)} / {fmt(s.get('bytes_per_conn'))}")
        L.append(f"| {n} | " + " | ".join(cells) + " |")
    L.append("")
    if meta.get("idle_note"):
        L.append(meta["idle_note"] + "\n")
    # Targets
    L.append("## Targets\n")
    L.append("| target | nopoll-rs (C API) | nopoll-rs (Rust API) |")
    L.append("|---|---|---|")
    targets = []

    def cpu_target(shape, limit, label):
        row = [label]
        for n in OURS:
            v = ratio(summ.get(("echo", shape, n), {}).get("cpu_us_per_msg"),
                      summ.get(("echo", shape, "raw-tcp"), {}).get("cpu_us_per_msg"))
            row.append(v is not None and v <= limit and f"{v:.2f}× — met" or (f"{v:.2f}× — missed" if v else "–"))
        targets.append(row)

    cpu_target("50x8x32", 1.1, "CPU/msg ≤ 1.1× raw TCP at 50 × 8 × 32 B")
    cpu_target("10x4x16K", 1.4, "CPU/msg ≤ 1.4× raw TCP at 16 KiB")
    cpu_target("4x1x1M", 1.6, "CPU/msg ≤ 1.6× raw TCP at 1 MiB")
    row = ["handshakes/s (200 in flight) ≥ 1.6× libwebsockets, no failure"]
    lws = summ.get(("handshake", "hs", "libwebsockets"), {})
    for n in OURS:
        s = summ.get(("handshake", "hs", n), {})
        r1 = ratio(s.get("handshakes_per_s"), lws.get("handshakes_per_s"))
        r2 = ratio(s.get("hs_per_cpu_s"), lws.get("hs_per_cpu_s"))
        fails = s.get("failed_total", 0)
        if r1 is None:
            row.append("–")
            continue
        ok = "met" if r1 >= 1.6 and not fails else "missed"
        text = f"{r1:.2f}× measured rate — {ok} ({fails} failed); {fmt(r2)}× per server CPU-s"
        c = summ.get(("handshake", "hs-capped", n), {})
        r3 = ratio(c.get("handshakes_per_s"), summ.get(("handshake", "hs-capped", "libwebsockets"), {})
                   .get("handshakes_per_s"))
        if r3 is not None:
            cfails = c.get("failed_total", 0)
            ok3 = "met" if r3 >= 1.6 and not cfails else "missed"
            text += f"; server-bound ({meta.get('cap_percent')}% of a core): {r3:.2f}× — {ok3} ({cfails} failed)"
        row.append(text)
    targets.append(row)
    row = ["50,000 idle connections, ≤ 1 KB user-space memory each"]
    for n in OURS:
        s = summ.get(("idle", str(IDLE_COUNTS[-1]), n), {})
        b, opened = s.get("bytes_per_conn"), s.get("open")
        if b is None:
            row.append("–")
            continue
        full = opened is not None and opened >= IDLE_COUNTS[-1]
        verdict = ("met" if b <= 1024 else "missed") if full else (
            f"{'≤' if b <= 1024 else '>'} 1 KB at {opened:,.0f} (50,000 not measurable here)")
        row.append(f"{b:.0f} B/conn — {verdict}")
    targets.append(row)
    # Issue 17 item 3: a program that flushes whenever bytes are pending
    # keeps the batching.
    up, base = "nopoll-rs (C API + upstream flush)", "nopoll-rs (C API)"
    v = ratio(summ.get(("echo", "50x8x32", up), {}).get("cpu_us_per_msg"),
              summ.get(("echo", "50x8x32", base), {}).get("cpu_us_per_msg"))
    sc = [summ.get((tool, "50x8x32", up), {}).get("syscalls_per_unit") for tool in ("strace", "perf")]
    worst = max([x for x in sc if x is not None], default=None)
    if v is not None:
        verdict = "met" if v <= 1.15 and (worst is None or worst <= 0.5) else "missed"
        targets.append(["upstream flush loop: CPU/msg ≤ 1.15× echo-listener, ≤ 0.5 syscalls/msg at 50 × 8 × 32 B",
                        f"{v:.2f}×, {fmt(worst)} syscalls/msg — {verdict}", "–"])
    for shape, limit, label, unit in (("50x8x32", 0.3, "≤ 0.3 syscalls per message at 50 × 8", "msg"),
                                      ("hs", 16, "≤ 16 syscalls per handshake", "handshake")):
        row = [label]
        for n in OURS:
            st = summ.get(("strace", shape, n), {}).get("syscalls_per_unit")
            pf = summ.get(("perf", shape, n), {}).get("syscalls_per_unit")
            parts = []
            for tool, v in (("strace", st), ("perf", pf)):
                if v is not None:
                    parts.append(f"{v:.3g} ({tool})")
            worst = max([v for v in (st, pf) if v is not None], default=None)
            row.append(", ".join(parts) + (" — met" if worst is not None and worst <= limit else " — missed") if parts else "–")
        targets.append(row)
    for row in targets:
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("![CPU per message](cpu_per_msg.svg)\n")
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write("\n".join(L))
    svg_plot(summ, names, os.path.join(RESULTS, "cpu_per_msg.svg"))
    return "\n".join(L)


# ------------------------------------------------------------------ main

def main():
    global RESULTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="one repetition, short windows (a few minutes)")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--duration-ms", type=int, default=None)
    ap.add_argument("--warmup-ms", type=int, default=None)
    ap.add_argument("--servers", default=None, help="comma-separated subset of: " + ", ".join(SERVERS))
    ap.add_argument("--skip", default="", help="comma-separated passes to skip: echo,handshake,syscalls,idle")
    ap.add_argument("--command", default="benches/run.sh")
    ap.add_argument("--results", default=None, help=f"folder for the results (default {RESULTS})")
    opts = ap.parse_args()
    opts.reps = opts.reps or (1 if opts.quick else 5)
    opts.duration_ms = opts.duration_ms or (1000 if opts.quick else 2000)
    opts.warmup_ms = opts.warmup_ms or (300 if opts.quick else 500)
    RESULTS = opts.results or RESULTS
    sys_reps = 1 if opts.quick else 2
    skip = set(filter(None, opts.skip.split(",")))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    atexit.register(remove_caps)  # after kill_all (atexit runs in reverse)
    atexit.register(kill_all)
    raise_nofile()
    os.makedirs(RESULTS, exist_ok=True)

    names = [n for n in SERVERS if os.access(SERVERS[n][0][0], os.X_OK)]
    if opts.servers:
        want = [s.strip() for s in opts.servers.split(",")]
        names = [n for n in names if n in want]
    missing = [n for n in SERVERS if n not in names]
    if missing:
        log(f"suite: not measured (not built or not selected): {', '.join(missing)}")
    ws = [n for n in names if SERVERS[n][1]]

    def commit():
        try:
            return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True).stdout.strip()
        except OSError:
            return "?"

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    meta = {"command": opts.command + (" --quick" if opts.quick else ""),
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": commit(),
            "kernel": platform.release(), "cpu": cpu, "cores": os.cpu_count(), "servers": names,
            "reps": opts.reps, "duration_ms": opts.duration_ms, "nofile_hard": nofile_hard()}
    runs = []
    t_start = time.time()

    def record(kind, shape, name, res, **extra):
        r = {"kind": kind, "shape": shape, "server": name}
        r.update(res)
        r.update(extra)
        runs.append(r)

    def with_server(name, fn):
        srv = Server(name)
        try:
            return fn(srv)
        finally:
            srv.stop()

    timeout = (opts.warmup_ms + opts.duration_ms) / 1000 + 60
    can_cap = "handshake" not in skip and CpuCap.available()
    if "handshake" not in skip and not can_cap:
        log("suite: no writable cpu cgroup (needs root): no capped handshake pass")
    meta["cap_percent"] = CAP_PERCENT if can_cap else None
    for rep in range(opts.reps):
        k = rep % max(1, len(names))  # no server built: nothing to rotate
        order = names[k:] + names[:k]
        if "echo" not in skip:
            for shape in ECHO_SHAPES:
                for n in order:
                    try:
                        res = with_server(n, lambda s: run_loadgen(echo_args(shape, s, opts), timeout))
                        record("echo", shape[0], n, res)
                        log(f"[{time.time() - t_start:6.0f}s] rep {rep + 1} {shape[0]:9} {n:22} "
                            f"{res['msgs_per_s']:>12,.0f} msg/s {res['cpu_us_per_msg']:8.3f} µs/msg")
                    except RuntimeError as e:
                        log(f"rep {rep + 1} {shape[0]} {n}: FAILED: {e}")
                        record("echo", shape[0], n, {"error": str(e)})
        if "handshake" not in skip:
            for n in order:
                if n not in ws:
                    continue
                try:
                    res = with_server(n, lambda s: run_loadgen(handshake_args(s, opts), timeout))
                    hs = res["handshakes"]
                    res["cpu_us_per_hs"] = res["server_cpu_us"] / hs if hs else None
                    res["hs_per_cpu_s"] = hs / (res["server_cpu_us"] / 1e6) if res["server_cpu_us"] else None
                    record("handshake", "hs", n, res)
                    log(f"[{time.time() - t_start:6.0f}s] rep {rep + 1} handshake {n:22} "
                        f"{res['handshakes_per_s']:>10,.0f}/s failed {res['failed']} "
                        f"{res['cpu_us_per_hs'] or 0:.1f} µs CPU each")
                except RuntimeError as e:
                    log(f"rep {rep + 1} handshake {n}: FAILED: {e}")
                    record("handshake", "hs", n, {"error": str(e), "failed": 1})
            for n in order if can_cap else []:
                if n not in ws:
                    continue

                def capped():
                    srv, cap = Server(n), None
                    try:
                        cap = CpuCap(srv.pid, CAP_PERCENT)
                        return run_loadgen(handshake_args(srv, opts), timeout)
                    finally:
                        srv.stop()
                        if cap:
                            cap.remove()
                try:
                    res = capped()
                    hs = res["handshakes"]
                    res["cpu_us_per_hs"] = res["server_cpu_us"] / hs if hs else None
                    record("handshake", "hs-capped", n, res)
                    log(f"[{time.time() - t_start:6.0f}s] rep {rep + 1} handshake, server capped at "
                        f"{CAP_PERCENT}% {n:22} {res['handshakes_per_s']:>10,.0f}/s failed {res['failed']}")
                except (RuntimeError, OSError) as e:
                    log(f"rep {rep + 1} capped handshake {n}: FAILED: {e}")
                    record("handshake", "hs-capped", n, {"error": str(e), "failed": 1})

    if "syscalls" not in skip:
        tools = [t for t, ok in (("strace", strace_works()), ("perf", perf_works())) if ok]
        if not tools:
            log("suite: neither strace nor perf works here: no syscall counts")
        sys_opts = argparse.Namespace(**vars(opts))
        sys_opts.duration_ms = 1000
        for rep in range(sys_reps):
            for tool in tools:
                for shape in ECHO_SHAPES + [("hs", "handshake", 0, 0, 0, False)]:
                    for n in names:
                        if shape[0] == "hs" and n not in ws:
                            continue
                        try:
                            def go(s):
                                args = (handshake_args(s, sys_opts) if shape[0] == "hs"
                                        else echo_args(shape, s, sys_opts))
                                return counted_run(s, args, tool, timeout + 30)
                            res, total, top = with_server(n, go)
                            units = res.get("handshakes") if shape[0] == "hs" else res.get("messages")
                            per = total / units if total is not None and units else None
                            record(tool, shape[0], n, {"syscalls": total, "units": units, "syscalls_per_unit": per,
                                                       "top": top})
                            log(f"[{time.time() - t_start:6.0f}s] {tool:6} {shape[0]:9} {n:22} "
                                f"{per if per is not None else float('nan'):8.3f} syscalls/"
                                f"{'handshake' if shape[0] == 'hs' else 'msg'}  {top}")
                        except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                            log(f"{tool} {shape[0]} {n}: FAILED: {e}")

    if "idle" not in skip:
        hard = nofile_hard()
        cap = hard - 200
        for count in IDLE_COUNTS:
            real = count
            if count + 200 > hard:
                real = cap
                meta["idle_note"] = (
                    f"**{count:,} idle connections cannot be opened on this machine**: the open-file limit is "
                    f"{hard:,} (hard), and raising it needs CAP_SYS_RESOURCE, which this environment does not "
                    f"grant; one server process cannot hold more sockets than that. The "
                    f"{count:,} column holds the largest count that fits ({cap:,}), opened from several source "
                    f"addresses 127.0.0.2.. .")
            for rep in range(max(1, min(3, opts.reps))):
                for n in ws:
                    try:
                        res = with_server(n, lambda s: idle_run(s, real, 180))
                        record("idle", str(count), n, res)
                        log(f"[{time.time() - t_start:6.0f}s] idle {real:6} {n:22} opened {res['open']} "
                            f"failed {res['failed']} {res['bytes_per_conn'] or 0:8.0f} B/conn")
                    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
                        log(f"idle {count} {n}: FAILED: {e}")
                        record("idle", str(count), n, {"error": str(e), "failed": real})

    meta["seconds"] = round(time.time() - t_start)
    if not runs:
        # Every pass skipped (or no server built): the results of the last
        # real run stay as they are rather than being replaced by empty tables.
        log(f"suite: nothing measured; {RESULTS}/ left as it was")
        sys.exit(1)
    with open(os.path.join(RESULTS, "results.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs}, f, indent=1)
    text = report(meta, runs, names, opts)
    print(text)
    log(f"suite: done in {meta['seconds']} s; results in {RESULTS}/")


if __name__ == "__main__":
    main()
