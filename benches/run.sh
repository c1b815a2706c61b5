#!/usr/bin/env bash
# The benchmark suite, one command:
#
#   benches/run.sh            full run (~18 min): 5 interleaved repetitions
#   benches/run.sh --quick    one repetition, short windows (~5 min)
#
# Builds our library and both echo servers (C API and Rust API), the raw
# TCP echo ceiling, the libwebsockets echo server (needs Debian's
# libwebsockets-dev), the tokio-tungstenite echo server and the load
# generator, then runs benches/suite.py (ws://), benches/tls.py (wss://)
# and benches/deflate.py (permessage-deflate), which write
# benches/results/. Loopback only. Everything started is killed on exit;
# each part is bounded by BENCH_TIMEOUT seconds (default 2400). Extra
# arguments go to suite.py (see `python3 benches/suite.py --help`);
# --quick goes to all three. BENCH_ONLY_SUITE=1 runs suite.py alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=benches/build
mkdir -p "$B"
CARGO=${CARGO:-cargo}
CC=${CC:-cc}

children=()
cleanup() {
	for p in "${children[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

for tool in taskset python3; do
	command -v $tool >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
command -v strace >/dev/null || echo "run.sh: strace not found (apt-get install strace): no strace syscall counts" >&2

echo "== building (release)" >&2
. benches/build-ours.sh
if pkg-config --exists libwebsockets 2>/dev/null; then
	$CC -O2 -Wall -Werror -o $B/lws-echo benches/servers/lws-echo.c $(pkg-config --cflags --libs libwebsockets)
else
	rm -f $B/lws-echo
	echo "run.sh: libwebsockets-dev not installed (apt-get install libwebsockets-dev): not measured" >&2
fi
if ! (cd benches/servers/tungstenite-echo && $CARGO build --release --quiet); then
	rm -f benches/servers/tungstenite-echo/target/release/tungstenite-echo
	echo "run.sh: tokio-tungstenite echo server did not build: not measured" >&2
fi

bounded() {
	timeout --signal=TERM --kill-after=20 "${BENCH_TIMEOUT:-2400}" "$@" &
	children+=($!)
	wait $!
}
quick=()
for a in "$@"; do
	if [ "$a" = --quick ]; then quick=(--quick); fi
done

echo "== running the suite" >&2
bounded python3 benches/suite.py "$@"
if [ "${BENCH_ONLY_SUITE:-0}" != 1 ]; then
	echo "== wss:// (benches/tls.py)" >&2
	bounded python3 benches/tls.py "${quick[@]}"
	echo "== permessage-deflate (benches/deflate.py)" >&2
	bounded python3 benches/deflate.py --no-build "${quick[@]}"
fi
