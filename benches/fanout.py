#!/usr/bin/env python3
"""Broadcast fan-out through Redis: 2 chat-server-redis instances x 500
clients against 1 instance x 1,000 clients, Redis in the path for both.
A benchmark, not a test: it prints and writes numbers, asserts nothing
about them.

    benches/fanout.py [--clients 1000] [--messages 200] [--rates 20,50,100]
                      [--reps 3] [--out benches/results/fanout.md]

Needs redis-server and build/examples/chat-server-redis
(make build/examples/chat-server-redis) and the load client
(cargo build --release --example fanout_load). Loopback only; every
process it starts is stopped when it ends. The load client runs all
clients in one event loop; SENDERS=10 of them send MESSAGES lines at RATE
lines/s in total; every client receives every line (deliveries =
clients x messages). Reported: deliveries/s over the window (from the
first send to the last delivery) and the send-to-arrival latency p50/p99
over every delivery. Each instance is one thread; on a 2-core machine
the load client, Redis and the instances share the cores, so the figures
compare the two layouts on this machine only."""
import argparse, json, os, pathlib, resource, signal, socket, statistics, subprocess, sys, time

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHAT = ROOT / "build/examples/chat-server-redis"
LOAD = ROOT / "target/release/examples/fanout_load"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run_layout(instances, clients, messages, rate):
    procs = []
    try:
        rport = free_port()
        procs.append(subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL))
        wait_port(rport)
        ports = []
        for _ in range(instances):
            p = free_port()
            procs.append(subprocess.Popen([str(CHAT), str(p), "--redis", f"127.0.0.1:{rport}"],
                                          stdout=subprocess.DEVNULL))
            wait_port(p)
            ports.append(str(p))
        time.sleep(0.3)  # the instances subscribe
        out = subprocess.run([str(LOAD), ",".join(ports), str(clients), "10", str(messages), str(rate)],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise SystemExit(f"fanout_load failed:\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rates", default="20,50,100")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benches/results/fanout.md"))
    a = ap.parse_args()
    for f in (CHAT, LOAD):
        if not f.exists():
            raise SystemExit(f"{f} is not built (see the docstring)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * a.clients + 256)), hard))
    rows = []
    for rate in [float(r) for r in a.rates.split(",")]:
        for inst in (1, 2):
            runs = []
            for rep in range(a.reps):
                r = run_layout(inst, a.clients, a.messages, rate)
                print(f"{inst} x {a.clients // inst}, {rate:g} lines/s, rep {rep + 1}: {r}", flush=True)
                runs.append(r)
            med = lambda k: statistics.median(x[k] for x in runs)
            lost = sum(x["expected"] - x["deliveries"] for x in runs)
            rows.append((f"{inst} x {a.clients // inst}", rate, med("deliveries_per_s"), med("p50_us"),
                         med("p99_us"), lost))
    lines = [
        f"Broadcast fan-out through Redis (`benches/fanout.py`, {a.clients} clients, "
        f"{a.messages} lines from 10 senders per run, median of {a.reps} runs, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores shared by everything)",
        "",
        "| layout | lines/s sent | deliveries/s | latency p50 | latency p99 | deliveries missing (all runs) |",
        "|---|---|---|---|---|---|",
    ]
    for name, rate, dps, p50, p99, lost in rows:
        lines.append(f"| {name} | {rate:g} | {dps:,.0f} | {p50 / 1000:.2f} ms | {p99 / 1000:.2f} ms | {lost} |")
    text = "\n".join(lines) + "\n"
    print(text)
    pathlib.Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.out).write_text(text)


if __name__ == "__main__":
    sys.exit(main())
