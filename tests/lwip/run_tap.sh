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
# default 1500), LWIP_VARIANTS (default "std nostd": which libnopoll.a the
# server links, as in tests/lwip/run.sh), CARGO, CC, CARGO_TARGET_DIR,
# NOPOLL_LWIP_DEMO_LOG=1.
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
NSS=""
cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  for ns in $NSS; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Python websockets in a venv
. "$ROOT/tests/venv.sh"
ensure_venv lwip-tap "$VENV" "$REQS" "$PY"

# 2. one run per library variant (LWIP_VARIANTS, default "std nostd"; the
#    no_std one is skipped while its archive has no C API)
run_variant() {
  local variant=$1 lib libs out ns prc src rc=0
  case "$variant" in
    std)
      timeout 1800 "$CARGO" build --release --quiet || return 1
      lib="$TARGET/release/libnopoll.a"; libs="-lssl -lcrypto -lpthread -ldl -lm" ;;
    nostd)
      timeout 1800 "$CARGO" build --release --quiet --no-default-features --target-dir "$TARGET/nostd" || return 1
      lib="$TARGET/nostd/release/libnopoll.a"; libs=""
      if ! readelf -sW "$lib" 2>/dev/null | awk '$7 != "UND" && $8 == "nopoll_install_socket_ops" { f = 1 } END { exit !f }'; then
        echo "lwip-tap[nostd]: SKIP: $lib has no C API yet"
        return 0
      fi ;;
    *) echo "lwip-tap: unknown variant $variant"; return 2 ;;
  esac
  out="$TARGET/lwip/$variant"
  make --no-print-directory -s -C c-examples/lwip CC="${CC:-cc}" ROOT="$ROOT" \
    LIBNOPOLL="$lib" LIBNOPOLL_LIBS="$libs" OUT="$out" || return 1

  # the namespace: lo and the tap, nothing else
  ns="$NS-$variant"
  NSS="$NSS $ns"
  # (a function called with || runs without set -e: every step checked)
  ip netns add "$ns" &&
    ip -n "$ns" link set lo up &&
    ip -n "$ns" tuntap add dev "$TAP" mode tap &&
    ip -n "$ns" addr add "$KIP/24" dev "$TAP" &&
    ip -n "$ns" link set "$TAP" mtu "$MTU" &&
    ip -n "$ns" link set "$TAP" up || { echo "lwip-tap[$variant]: FAIL: cannot set up the namespace"; return 1; }
  echo "lwip-tap[$variant]: netns $ns: $TAP $KIP/24 (kernel), lwIP $LIP/24, mtu $MTU, routes:"
  ip -n "$ns" -4 route | sed 's/^/    /'

  # our server on lwIP, the kernel's websockets client against it
  : >"$LOG/server.log"
  ip netns exec "$ns" env LWIP_TAP_MTU="$MTU" \
    "$out/lwip-demo" tap-server "$TAP" "$LIP" 255.255.255.0 "$KIP" "$PORT" 90 >"$LOG/server.log" 2>&1 &
  SPID=$!
  for _ in $(seq 100); do
    grep -q READY "$LOG/server.log" 2>/dev/null && break
    kill -0 "$SPID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q READY "$LOG/server.log"; then
    echo "lwip-tap[$variant]: FAIL: the server did not start"
    cat "$LOG/server.log"
    return 1
  fi
  head -1 "$LOG/server.log" | sed 's/^/    /'
  set +e
  ip netns exec "$ns" timeout -k 5 120 "$VENV/bin/python" "$ROOT/tests/lwip/tap_peer.py" "$LIP" "$PORT"
  prc=$?
  for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SPID" 2>/dev/null; then
    kill "$SPID" 2>/dev/null
    echo "lwip-tap[$variant]: the server did not end after cmd:quit"
  fi
  wait "$SPID"
  src=$?
  SPID=""
  set -e
  ip netns del "$ns" 2>/dev/null || true
  echo "--- lwIP server output ---"
  sed 's/^/    /' "$LOG/server.log"
  [ "$prc" = 0 ] || { echo "lwip-tap[$variant]: FAIL: the websockets client reported failures (exit $prc)"; rc=1; }
  [ "$src" = 0 ] || { echo "lwip-tap[$variant]: FAIL: the lwIP server exited with $src"; rc=1; }
  if grep -q 'closed by the peer with 4001 "client bye"' "$LOG/server.log"; then
    echo "PASS close code client -> server: the lwIP server saw 4001 \"client bye\""
  else
    echo "FAIL close code client -> server: the lwIP server did not report 4001 \"client bye\""
    rc=1
  fi
  [ "$rc" = 0 ] && echo "lwip-tap[$variant]: PASS" || echo "lwip-tap[$variant]: FAIL"
  return "$rc"
}

rc=0
for variant in ${LWIP_VARIANTS:-std nostd}; do
  run_variant "$variant" || rc=1
done
exit "$rc"
