#!/usr/bin/env python3
"""permessage-deflate (RFC 7692) on the echo path: a benchmark, never a test.

    python3 benches/deflate.py [--quick] [--reps N] [--duration-ms D] [--results DIR] [--no-build]

Builds (release, as benches/run.sh does: benches/build-ours.sh, and
benches/build/lws-echo when Debian's libwebsockets-dev is installed)
unless --no-build. 50 connections × 8 messages in flight × 1 KiB of
JSON-like text (every message a different record: the keys repeat, the
numbers do not), the load generator offering `permessage-deflate` (no
parameters), compressing what it sends at level 1 with context takeover
when the server allows it, inflating and checking every echo. Servers:

- nopoll-rs C API (c-examples/echo-listener.c): ECHO_DEFLATE=1 (context
  takeover), ECHO_DEFLATE=no-takeover (the server insists on no context
  takeover in both directions), and off (the offer is declined).
- libwebsockets (benches/servers/lws-echo.c): LWS_DEFLATE=1 (its
  lws_extension_callback_pm_deflate with its defaults), and off.

Reported, medians over interleaved repetitions (fresh server per run,
server pinned to CPU 0, load generator to CPU 1): server CPU per message
(utime+stime over the window / messages echoed), messages/s, and bytes on
the wire per message each way (everything the load generator read and
wrote on its sockets over the window, frame headers included).
Writes DIR/deflate.md and DIR/deflate.json.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

import benchlib as B

SHAPES = [("50x8x1K-json", 50, 8, 1024)]


def servers():
    el = os.path.join(B.BUILD, "echo-listener")
    lws = os.path.join(B.BUILD, "lws-echo")
    out = []
    if os.access(el, os.X_OK):
        out += [
            ("nopoll-rs, deflate (takeover)", [el, "{port}"], {"ECHO_DEFLATE": "1"}),
            ("nopoll-rs, deflate (no takeover)", [el, "{port}"], {"ECHO_DEFLATE": "no-takeover"}),
            ("nopoll-rs, deflate off", [el, "{port}"], {"ECHO_DEFLATE": "0"}),
        ]
    if os.access(lws, os.X_OK):
        out += [
            ("libwebsockets, deflate", [lws, "{port}"], {"LWS_DEFLATE": "1"}),
            ("libwebsockets, deflate off", [lws, "{port}"], {"LWS_DEFLATE": "0"}),
        ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--duration-ms", type=int)
    ap.add_argument("--warmup-ms", type=int)
    ap.add_argument("--results", default=os.path.join(B.HERE, "results"))
    ap.add_argument("--no-build", action="store_true", help="use what benches/run.sh built")
    o = ap.parse_args()
    o.reps = o.reps or (1 if o.quick else 5)
    o.duration_ms = o.duration_ms or (1000 if o.quick else 2000)
    o.warmup_ms = o.warmup_ms or (300 if o.quick else 500)
    B.setup()
    if not o.no_build:
        env = dict(os.environ, B="benches/build", CARGO=os.environ.get("CARGO", "cargo"),
                   CC=os.environ.get("CC", "cc"))
        os.makedirs(B.BUILD, exist_ok=True)
        subprocess.run(["bash", "-ec", ". benches/build-ours.sh\n"
                        "if pkg-config --exists libwebsockets; then $CC -O2 -Wall -Werror -o $B/lws-echo "
                        "benches/servers/lws-echo.c $(pkg-config --cflags --libs libwebsockets); fi"],
                       cwd=B.ROOT, env=env, check=True, timeout=1800)
    srv = servers()
    if not srv or not os.access(B.LOADGEN, os.X_OK):
        B.log("deflate: nothing measured (build with benches/run.sh first)")
        return 1

    def run(server, shape):
        _, conns, inflight, size = shape
        return B.loadgen(server, ["echo", "--conns", str(conns), "--inflight", str(inflight), "--size", str(size),
                                  "--json", "--deflate", "--warmup-ms", str(o.warmup_ms),
                                  "--duration-ms", str(o.duration_ms)])

    runs = B.interleaved(o.reps, srv, SHAPES, run)
    base_name = "nopoll-rs, deflate off"
    L = [f"# permessage-deflate, 50 × 8 × 1 KiB JSON-like text\n",
         f"`python3 benches/deflate.py {' '.join(sys.argv[1:])}` at commit {B.commit()}, "
         f"{o.reps} repetition(s), {o.duration_ms} ms windows, {platform.machine()} "
         f"{os.cpu_count()} CPUs. Medians. Bytes per message: what the load generator "
         f"wrote (client → server) and read (server → client) on its sockets over the window, "
         f"divided by the messages echoed (1,024 payload bytes each way uncompressed).\n",
         "| server | negotiated | server CPU µs/msg | × ours off | msgs/s | bytes/msg client → server | "
         "bytes/msg server → client |",
         "|---|---|---:|---:|---:|---:|---:|"]
    summary = {}
    for key, *_ in SHAPES:
        base = B.med([r["cpu_us_per_msg"] for r in runs.get((key, base_name), []) if r])
        for name, *_ in srv:
            rs = [r for r in runs.get((key, name), []) if r]
            if not rs:
                L.append(f"| {name} | failed | – | – | – | – | – |")
                continue
            cpu = B.med([r["cpu_us_per_msg"] for r in rs])
            row = {
                "negotiated": rs[0]["deflate"] or "(declined)",
                "cpu_us_per_msg": cpu,
                "msgs_per_s": B.med([r["msgs_per_s"] for r in rs]),
                "wire_out_per_msg": B.med([r["wire_out_per_msg"] for r in rs]),
                "wire_in_per_msg": B.med([r["wire_in_per_msg"] for r in rs]),
            }
            summary[name] = row
            L.append(f"| {name} | `{row['negotiated']}` | {B.fmt(cpu)} | "
                     f"{B.fmt(cpu / base) + '×' if base else '–'} | {row['msgs_per_s']:,.0f} | "
                     f"{row['wire_out_per_msg']:.0f} | {row['wire_in_per_msg']:.0f} |")
    if not summary:
        B.log("deflate: nothing measured")
        return 1
    text = "\n".join(L) + "\n"
    print(text)
    B.write(os.path.join(o.results, "deflate.md"), text)
    B.write(os.path.join(o.results, "deflate.json"),
            json.dumps({"argv": sys.argv, "commit": B.commit(), "reps": o.reps, "duration_ms": o.duration_ms,
                        "summary": summary,
                        "runs": {f"{k[0]} | {k[1]}": v for k, v in runs.items()}}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
