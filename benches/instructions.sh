#!/usr/bin/env bash
# User-space instructions per message, counted by valgrind's callgrind:
#
#   benches/instructions.sh [SIZE]     (default 32: the 50 x 8 x SIZE B echo)
#
# Timing on this shared 2-core machine moves by +-5 % from run to run, more
# than most single changes to the message path; an instruction count does
# not move at all (same binary, same input, whatever else the machine
# does), so this is the figure to compare before and after such a change.
# It counts user space only (the kernel's share, the same for every server
# here, is not in it) and instructions, not cycles: an atomic
# read-modify-write or a store-forwarding stall costs far more time than
# its one instruction, so confirm a gain with benches/run.sh.
#
# Each server (our C echo listener and Rust echo server, raw TCP) runs under
# callgrind on loopback while the load generator keeps 50 connections x 8
# messages in flight for 4 s; the total, divided by the messages echoed,
# is printed with the top functions (inclusive). Start-up and the 50
# handshakes are in the total too (under 0.5 % of it). Needs valgrind;
# builds what it measures (release). The summary goes to
# benches/results/instructions.txt, callgrind's files to
# benches/build/instructions/ (callgrind_annotate reads them).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-32}
B=benches/build
OUT=$B/instructions
SUMMARY=benches/results/instructions.txt
mkdir -p "$B" "$OUT"
CARGO=${CARGO:-cargo}
CC=${CC:-cc}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is required (apt-get install valgrind)" >&2; exit 1; }

server=
cleanup() {
	if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; fi
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "== building (release)" >&2
. benches/build-ours.sh
LOADGEN=benches/loadgen/target/release/nopoll-loadgen

measure() { # NAME BINARY [--raw]
	local name=$1 bin=$2 raw=${3:-}
	local port=$((20000 + RANDOM % 20000))
	rm -f "$OUT/$name.callgrind"
	timeout 300 valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind" \
		"$bin" "$port" >/dev/null 2>"$OUT/$name.valgrind.log" &
	server=$!
	# valgrind starts slowly: wait until the port answers (bounded).
	for _ in $(seq 100); do
		if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
		sleep 0.1
	done
	timeout 60 $LOADGEN echo --port "$port" --conns 50 --inflight 8 --size "$SIZE" \
		--warmup-ms 0 --duration-ms 4000 $raw | tail -1 >"$OUT/$name.loadgen.json"
	kill -INT "$server" 2>/dev/null || true
	sleep 1
	kill -TERM "$server" 2>/dev/null || true
	wait "$server" 2>/dev/null || true
	server=
	python3 - "$name" "$OUT" <<'PY'
import json, re, subprocess, sys
name, out = sys.argv[1], sys.argv[2]
msgs = json.load(open(f"{out}/{name}.loadgen.json"))["messages"]
data = open(f"{out}/{name}.callgrind").read()
total = int(re.search(r"^(?:summary|totals): (\d+)", data, re.M).group(1))
print(f"{name}: {total / msgs:.0f} instructions per message ({msgs} messages, {total} instructions)")
report = subprocess.run(["callgrind_annotate", "--inclusive=yes", f"{out}/{name}.callgrind"],
                        capture_output=True, text=True).stdout
shown = 0
for line in report.splitlines():
    m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S+)", line)
    if not m or "PROGRAM TOTALS" in line:
        continue
    fn = m.group(2).split(":", 1)[-1]
    per = int(m.group(1).replace(",", "")) / msgs
    # The chain from main down to the loop is the whole total: skip it.
    if per > 0.98 * total / msgs or per < 10 or shown >= 15:
        continue
    print(f"  {per:7.0f}  {fn[:100]}")
    shown += 1
PY
}

{
	echo "# benches/instructions.sh $SIZE (50 x 8 x $SIZE B echo), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
	measure raw-tcp $B/raw-echo --raw
	measure nopoll-rs-c $B/echo-listener
	measure nopoll-rs-c-upstream-flush $B/upstream-flush-echo
	measure nopoll-rs-rust target/release/examples/echo_server
} | tee "$SUMMARY"
