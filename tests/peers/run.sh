#!/usr/bin/env bash
# Interop with independent WebSocket implementations, both directions:
# Python `websockets` (client vs our C servers, server vs our C client) and
# headless Chromium vs c-examples/echo-listener.
#
#   tests/peers/run.sh [pytest args...]
#
# Environment:
#   PEERS_VENV               venv (default /tmp/nopoll-peers-venv), pinned
#                            tests/peers/requirements.txt, reinstalled when it changes
#   PYTHON                   interpreter for the venv (default python3)
#   NOPOLL_INSTALL_DEPS=1    apt-get install chromium when missing; otherwise the
#                            browser test is skipped with a message
#   PEERS_TEST_TIMEOUT       per-test limit in seconds (default 90)
#   PEERS_TOTAL_TIMEOUT      limit for the whole pytest run (default 600)
#   CARGO, CC
#
# Builds the library (cargo build --release) and the C programs into
# target/peers/bin. Only 127.0.0.1 is used; every process a test starts is
# stopped by the test (by pid). The last line is pytest's summary; the exit
# status is pytest's.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${PEERS_VENV:-/tmp/nopoll-peers-venv}"
REQS="$ROOT/tests/peers/requirements.txt"
PY="${PYTHON:-python3}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/peers/bin"

# 1. venv with the pinned requirements
. "$ROOT/tests/venv.sh"
ensure_venv peers "$VENV" "$REQS" "$PY"

# 2. chromium (Debian package only; never downloaded by a tool)
if [ ! -x /usr/bin/chromium ]; then
  if [ "${NOPOLL_INSTALL_DEPS:-0}" = 1 ]; then
    echo "peers: apt-get install chromium"
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get update -qq
    timeout 900 apt-get install -y -qq chromium >/dev/null
  else
    echo "peers: /usr/bin/chromium not installed: the browser test will be SKIPPED" \
         "(NOPOLL_INSTALL_DEPS=1 installs Debian's chromium)"
  fi
fi

# 3. library and C programs
timeout 1800 "${CARGO:-cargo}" build --release --quiet
mkdir -p "$BIN"
CFLAGS=(-ansi -Wall -Werror -Wstrict-prototypes -O2 -I"$ROOT/include")
if [ ! -f "$ROOT/include/nopoll.h" ]; then
  GEN="$(ls -t "$TARGET"/*/build/nopoll-*/out/nopoll.h | head -n1)"
  CFLAGS+=(-I"$(dirname "$GEN")")
fi
for src in c-examples/echo-listener.c tests/peers/c_peer_client.c tests/peers/c_peer_server.c; do
  "${CC:-cc}" "${CFLAGS[@]}" "$src" "$TARGET/release/libnopoll.a" -lssl -lcrypto -lpthread -ldl -lm \
    -o "$BIN/$(basename "$src" .c)"
done

# 4. tests
export NOPOLL_PEERS_BIN="$BIN"
export PYTHONDONTWRITEBYTECODE=1
cd "$ROOT/tests/peers"
set +e
timeout -k 10 "${PEERS_TOTAL_TIMEOUT:-600}" "$VENV/bin/python" -m pytest -p no:cacheprovider \
  --timeout="${PEERS_TEST_TIMEOUT:-90}" -rs -q "$@"
rc=$?
[ "$rc" = 124 ] && echo "peers: the whole run hit PEERS_TOTAL_TIMEOUT"
exit "$rc"
