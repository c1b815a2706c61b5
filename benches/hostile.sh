#!/usr/bin/env bash
# Memory and CPU of our C echo server (c-examples/echo-listener) under
# hostile load (issue 18): a non-reading client, a ping flood without
# reads, endless fragmented messages, slowloris; each beside a
# well-behaved client whose echo is checked. A measurement, not a test.
#
#   benches/hostile.sh [SECONDS_PER_ATTACK]     (default 10)
#
# Builds what it measures (release). Loopback only; the server is stopped
# (by pid) when the script exits. Prints a Markdown table (benches/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
B=benches/build
mkdir -p "$B"
CARGO=${CARGO:-cargo}
CC=${CC:-cc}
$CARGO build --release --quiet
$CC -ansi -Wall -Werror -Wstrict-prototypes -O2 -Iinclude -o $B/echo-listener c-examples/echo-listener.c \
	target/release/libnopoll.a -lssl -lcrypto -lpthread -ldl -lm -lrt -lutil
server=
cleanup() { if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
port=$((20000 + RANDOM % 20000))
$B/echo-listener "$port" >/dev/null &
server=$!
for _ in $(seq 50); do
	if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
	sleep 0.1
done
echo "# benches/hostile.sh $SECS, commit $(git rev-parse --short HEAD)"
timeout $((SECS * 4 + 120)) python3 benches/hostile/attack.py "$server" "$port" "$SECS"
