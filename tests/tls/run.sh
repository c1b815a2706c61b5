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
# The same two programs with TLS by c-examples/tls/nopoll_mbedtls.c (the C
# table, nopoll_install_tls_ops) when Debian's libmbedtls-dev is there.
if [ -f /usr/include/mbedtls/ssl.h ]; then
  "${CC:-cc}" -std=c99 -Wall -Werror -O2 -I"$ROOT/include" -c c-examples/tls/nopoll_mbedtls.c -o "$BIN/nopoll_mbedtls.o"
  for p in tls_server tls_client; do
    "${CC:-cc}" "${CFLAGS[@]}" -DNOPOLL_TEST_MBEDTLS "tests/tls/$p.c" "$BIN/nopoll_mbedtls.o" \
      "$TARGET/release/libnopoll.a" -lmbedtls -lmbedx509 -lmbedcrypto -lssl -lcrypto -lpthread -ldl -lm \
      -o "$BIN/${p}_mbedtls"
  done
else
  echo "tls: /usr/include/mbedtls/ssl.h missing: the mbedTLS table tests will be SKIPPED (apt-get install libmbedtls-dev)"
fi
export NOPOLL_TLS_BIN="$BIN" PYTHONDONTWRITEBYTECODE=1
cd "$ROOT/tests/tls"
timeout -k 10 "${TLS_TOTAL_TIMEOUT:-300}" "$VENV/bin/python" -m pytest -p no:cacheprovider \
  --timeout=60 -rs -q "$@"
