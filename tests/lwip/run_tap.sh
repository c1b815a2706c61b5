#!/usr/bin/env bash
# The TAP variant of the lwIP proof: our C API echo server runs on lwIP over
# a tap device (lwip-demo tap-server, our own PBUF_RAM netif) and Python
# `websockets`, on the Linux kernel's TCP stack, connects to it: handshake,
# text and binary echo up to 64 KiB, fragments, ping, 8 connections at
# once, close codes both ways.
#
#   tests/lwip/run_tap.sh
#
# Needs root and /dev/net/tun; otherwise it prints SKIP and exits 0.
# Everything happens inside a network namespace created here: it holds only
# its own loopback and the tap, with addresses from 192.0.2.0/24 (RFC 5737
# TEST-NET-1) and no route out. The namespace (and the tap in it) is
# deleted on exit, whatever happens.
#
# Environment: LWIP_TAP_VENV (default target/lwip/venv: Python with
# `websockets`, pinned in tests/lwip/requirements.txt, reinstalled when that
# changes), PYTHON (default python3), LWIP_TAP_MTU (netif MTU on both sides,
# default 1500), CARGO, CC, CARGO_TARGET_DIR, NOPOLL_LWIP_DEMO_LOG=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CARGO="${CARGO:-cargo}"
VENV="${LWIP_TAP_VENV:-$TARGET/lwip/venv}"
REQS="$ROOT/tests/lwip/requirements.txt"
PY="${PYTHON:-python3}"
NS="nopoll-lwip-$$"
TAP=lwtap0
KIP=192.0.2.1      # kernel side of the tap
LIP=192.0.2.2      # lwIP
PORT=8080
MTU="${LWIP_TAP_MTU:-1500}"

if [ "$(id -u)" != 0 ]; then
  echo "lwip-tap: SKIP: needs root (network namespace and tap device)"
  exit 0
fi
if [ ! -c /dev/net/tun ]; then
  echo "lwip-tap: SKIP: no /dev/net/tun"
  exit 0
fi
if ! command -v ip >/dev/null; then
  echo "lwip-tap: SKIP: no ip(8) (iproute2)"
  exit 0
fi
if ! pkg-config --exists lwip 2>/dev/null; then
  echo "lwip-tap: FAIL: Debian's liblwip-dev is not installed (apt-get install -y liblwip-dev pkg-config)"
  exit 1
fi

LOG="$(mktemp -d)"
SPID=""
cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Python websockets in a venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "lwip-tap: creating venv $VENV with $("$PY" -V 2>&1)"
  timeout 300 "$PY" -m venv "$VENV"
fi
if ! cmp -s "$REQS" "$VENV/.nopoll-lwip-requirements"; then
  timeout 600 "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$VENV/.nopoll-lwip-requirements"
fi

# 2. library and demo (std build)
timeout 1800 "$CARGO" build --release --quiet
OUT="$TARGET/lwip/std"
make --no-print-directory -s -C c-examples/lwip CC="${CC:-cc}" ROOT="$ROOT" \
  LIBNOPOLL="$TARGET/release/libnopoll.a" LIBNOPOLL_LIBS="-lpthread -ldl -lm" OUT="$OUT"

# 3. the namespace: lo and the tap, nothing else
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" tuntap add dev "$TAP" mode tap
ip -n "$NS" addr add "$KIP/24" dev "$TAP"
ip -n "$NS" link set "$TAP" mtu "$MTU"
ip -n "$NS" link set "$TAP" up
echo "lwip-tap: netns $NS: $TAP $KIP/24 (kernel), lwIP $LIP/24, mtu $MTU, routes:"
ip -n "$NS" -4 route | sed 's/^/    /'

# 4. our server on lwIP, the kernel's websockets client against it
ip netns exec "$NS" env LWIP_TAP_MTU="$MTU" \
  "$OUT/lwip-demo" tap-server "$TAP" "$LIP" 255.255.255.0 "$KIP" "$PORT" 90 >"$LOG/server.log" 2>&1 &
SPID=$!
for _ in $(seq 100); do
  grep -q READY "$LOG/server.log" 2>/dev/null && break
  kill -0 "$SPID" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q READY "$LOG/server.log"; then
  echo "lwip-tap: FAIL: the server did not start"
  cat "$LOG/server.log"
  exit 1
fi
head -1 "$LOG/server.log" | sed 's/^/    /'
set +e
ip netns exec "$NS" timeout -k 5 120 "$VENV/bin/python" "$ROOT/tests/lwip/tap_peer.py" "$LIP" "$PORT"
prc=$?
for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SPID" 2>/dev/null; then
  kill "$SPID" 2>/dev/null
  echo "lwip-tap: the server did not end after cmd:quit"
fi
wait "$SPID"
src=$?
SPID=""
set -e
echo "--- lwIP server output ---"
sed 's/^/    /' "$LOG/server.log"
rc=0
[ "$prc" = 0 ] || { echo "lwip-tap: FAIL: the websockets client reported failures (exit $prc)"; rc=1; }
[ "$src" = 0 ] || { echo "lwip-tap: FAIL: the lwIP server exited with $src"; rc=1; }
if grep -q 'closed by the peer with 4001 "client bye"' "$LOG/server.log"; then
  echo "PASS close code client -> server: the lwIP server saw 4001 \"client bye\""
else
  echo "FAIL close code client -> server: the lwIP server did not report 4001 \"client bye\""
  rc=1
fi
[ "$rc" = 0 ] && echo "lwip-tap: PASS" || echo "lwip-tap: FAIL"
exit "$rc"
