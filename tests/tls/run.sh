#!/usr/bin/env bash
# wss:// against independent peers (tests/tls/test_tls.py): Python ssl +
# websockets both ways, raw TLS sockets, openssl s_client probes.
# Certificates are made at run time with the openssl command.
#
#   tests/tls/run.sh [pytest args...]
#
# Uses the peers venv (tests/peers/requirements.txt; PEERS_VENV, PYTHON).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="${PEERS_VENV:-/tmp/nopoll-peers-venv}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/tls/bin"
. "$ROOT/tests/venv.sh"
ensure_venv peers "$VENV" "$ROOT/tests/peers/requirements.txt" "${PYTHON:-python3}"
timeout 1800 "${CARGO:-cargo}" build --release --quiet
mkdir -p "$BIN"
CFLAGS=(-ansi -Wall -Werror -Wstrict-prototypes -O2 -I"$ROOT/include")
for src in tests/tls/tls_server.c tests/tls/tls_client.c c-examples/chat-server.c; do
  "${CC:-cc}" "${CFLAGS[@]}" "$src" "$TARGET/release/libnopoll.a" -lssl -lcrypto -lpthread -ldl -lm \
    -o "$BIN/$(basename "$src" .c)"
done
export NOPOLL_TLS_BIN="$BIN" PYTHONDONTWRITEBYTECODE=1
cd "$ROOT/tests/tls"
timeout -k 10 "${TLS_TOTAL_TIMEOUT:-300}" "$VENV/bin/python" -m pytest -p no:cacheprovider \
  --timeout=60 -rs -q "$@"
