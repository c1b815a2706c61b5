#!/usr/bin/env bash
# Is the raw TCP echo's CPU per message a kernel floor, or epoll's?
#
#   benches/probes/ceiling.sh [REPS]      (default 7; ~10 s per repetition)
#
# Runs servers/raw-echo.c (epoll) and uring-echo.c (io_uring, one receive
# in flight per socket, one io_uring_enter per loop pass) in turn, REPS
# times interleaved, each under the load generator's 50 × 8 × 32 B echo
# (server on CPU 0, load on CPU 1, loopback), and prints each one's median
# server CPU per message. Needs liburing (apt-get install liburing-dev).
# Every server started is killed on exit; each run is bounded by timeout.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-7}
B=benches/build
CC=${CC:-cc}
mkdir -p $B
$CC -O2 -Wall -Werror -o $B/raw-echo benches/servers/raw-echo.c
$CC -O2 -Wall -Werror -o $B/uring-echo benches/probes/uring-echo.c -luring
(cd benches/loadgen && ${CARGO:-cargo} build --release --quiet)
LG=benches/loadgen/target/release/nopoll-loadgen

srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; wait 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM HUP

one() { # server binary -> CPU µs per message
	local port=$((20000 + RANDOM % 20000))
	taskset -c 0 "$1" $port >/dev/null 2>&1 &
	srv=$!
	sleep 0.3
	timeout 30 taskset -c 1 $LG echo --port $port --raw --conns 50 --inflight 8 --size 32 \
		--warmup-ms 500 --duration-ms 2000 --server-pid $srv | tail -1 |
		python3 -c "import json,sys; print(json.loads(sys.stdin.read())['cpu_us_per_msg'])"
	kill $srv
	wait $srv 2>/dev/null || true
	srv=
}

epoll=() uring=()
for r in $(seq "$REPS"); do
	epoll+=("$(one $B/raw-echo)")
	uring+=("$(one $B/uring-echo)")
	echo "rep $r: epoll ${epoll[-1]} µs/msg, io_uring ${uring[-1]} µs/msg" >&2
done
python3 - "${epoll[*]}" "${uring[*]}" <<'PY'
import statistics, sys
e = statistics.median(map(float, sys.argv[1].split()))
u = statistics.median(map(float, sys.argv[2].split()))
print(f"raw TCP echo, server CPU per 32 B message (median): epoll {e:.3f} µs, io_uring {u:.3f} µs, io_uring/epoll {u / e:.3f}")
PY
