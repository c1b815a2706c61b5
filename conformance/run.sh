#!/usr/bin/env bash
# Autobahn|Testsuite conformance of nopoll-rs, both roles, compared with the
# expected results checked into conformance/expected/.
#
#   conformance/run.sh [--server] [--client] [--no-deflate|--deflate-full|--deflate-only]
#                      [--tls] [--bless] [--fresh-venv]
#
#   (no role flag)  run both roles
#   --server        only the server role: c-examples/echo-listener.c under
#                   `wstest -m fuzzingclient`, cases 1-10 (301 cases), then
#                   the permessage-deflate subset with ECHO_DEFLATE=1
#   --client        only the client role: c-examples/autobahn-client.c under
#                   `wstest -m fuzzingserver`, cases 1-10, then the subset
#                   with AUTOBAHN_DEFLATE=1
#   (default)       permessage-deflate subset: 12.N.M and 13.N.M for every
#                   data set / negotiation N, sizes M = 1-5 (16 B - 4 KiB)
#                   and 11 (8 KiB in 256 B fragments): 72 of the 216 cases
#                   per role (the whole set takes ~25 min per role here)
#   --no-deflate    skip the permessage-deflate cases
#   --deflate-full  all of 12.* and 13.* (216 per role) instead of the subset,
#                   compared with expected/*-deflate-full.json
#   --deflate-only  skip cases 1-10 (with --deflate-full: only the full set)
#   --bless         rewrite conformance/expected/*.json from this run (review the diff!)
#   --fresh-venv    recreate the venv even if it is up to date
#   --tls           cases 1-10 over wss:// (a CA and a certificate for
#                   localhost/127.0.0.1 made with the openssl command): the
#                   fuzzing client verifies our server; our client verifies
#                   the fuzzing server (AUTOBAHN_CA); expected/*-tls.json.
#                   The permessage-deflate cases run over plain ws:// only.
#   --firmware      the server role of the firmware build: the library built
#                   as `make test-mcu` builds it for a Cortex-M (no_std,
#                   no-log), here for the host, under the footprint echo
#                   listener (tools/footprint/echo.c, the program whose M3
#                   size docs/footprint.md reports) with a libc socket
#                   table; cases 1-10, compared with
#                   expected/server-firmware.json: the std build's results
#                   but for messages over the firmware's 64 KiB default
#                   limit, refused with 1009.
#
# Environment: ABVENV (venv, default /tmp/abvenv), PYTHON (default python3.11,
# must be 3.9-3.12), AB_TIMEOUT (seconds per role, default 300), AB_OUT
# (reports and binaries, default target/conformance), AB_SERVER_PORT /
# AB_CLIENT_PORT (default: free ports), CARGO.
#
# Everything listens on 127.0.0.1 only, every step is bounded in time, and
# every process started here is stopped on exit (trap). Exit status: 0 when
# both roles pass and match the expected results, 1 on any difference or
# failed case, 2 on a setup/tool error.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/conformance"
AB="$HERE/autobahn"
cd "$ROOT"

DO_SERVER=0; DO_CLIENT=0; DEFLATE=1; FULL=0; BASE=1; BLESS=0; FRESH=0; TLS=0; FW=0
for a in "$@"; do
  case "$a" in
    --server) DO_SERVER=1;; --client) DO_CLIENT=1;; --no-deflate) DEFLATE=0;;
    --deflate-full) DEFLATE=1; FULL=1;; --deflate-only) DEFLATE=1; BASE=0;;
    --bless) BLESS=1;; --fresh-venv) FRESH=1;; --tls) TLS=1;;
    --firmware) FW=1; DO_SERVER=1; DEFLATE=0;;
    -h|--help) sed -n '2,46p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "run.sh: unknown argument '$a' (see --help)" >&2; exit 2;;
  esac
done
[ "$DO_SERVER$DO_CLIENT" = 00 ] && { DO_SERVER=1; DO_CLIENT=1; }
if [ "$FW" = 1 ] && [ "$DO_CLIENT$TLS$BLESS" != 000 ]; then
  echo "run.sh: --firmware runs the server role over ws:// only, without --bless" >&2; exit 2
fi

export ABVENV="${ABVENV:-/tmp/abvenv}"
TMO="${AB_TIMEOUT:-300}"
OUT="${AB_OUT:-${CARGO_TARGET_DIR:-$ROOT/target}/conformance}"
CARGO="${CARGO:-cargo}"
AGENT="nopoll-rs"
mkdir -p "$OUT/bin" "$OUT/reports"
OUT="$(cd "$OUT" && pwd)"

# ---------------------------------------------------------------- cleanup
PIDS=()        # background processes we started (echo-listener, timeout wrappers)
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || continue
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  PIDS=()
}
exec 3>&2      # the trap may run while a step's output is redirected
trap cleanup EXIT
trap 'echo "run.sh: interrupted; stopping what it started" >&3; exit 130' INT TERM

now() { date +%s.%N; }
secs() { awk "BEGIN{printf \"%.1f\", $2 - $1}"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Runs "$@" in the background under timeout (its own process group, so the
# whole tree goes on timeout or on our trap) and waits for it.
bounded() {
  local limit="$1"; shift
  timeout -k 10 "$limit" "$@" &
  local pid=$!
  PIDS+=("$pid")
  wait "$pid"
  local rc=$?
  PIDS=("${PIDS[@]/$pid}")
  return $rc
}

# ---------------------------------------------------------------- setup
T_SETUP=$(now)
STAMP="$ABVENV/.nopoll-conformance-stamp"
WANT_STAMP="$(cat "$AB/requirements.txt" "$AB/patch_py3.py" | sha256sum | cut -d' ' -f1)"
if [ "$FRESH" = 1 ] || [ ! -x "$ABVENV/bin/wstest" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT_STAMP" ]; then
  PY="${PYTHON:-$(command -v python3.11 || command -v python3.12 || command -v python3.10 || true)}"
  [ -n "$PY" ] || { echo "run.sh: python3.11 (or 3.9-3.12) is required" >&2; exit 2; }
  echo "== setup: venv $ABVENV with $PY (pinned $AB/requirements.txt)"
  if ! PYTHON="$PY" bounded 600 "$AB/setup.sh" "$ABVENV" > "$OUT/setup.log" 2>&1; then
    tail -n 30 "$OUT/setup.log" >&2
    echo "run.sh: setup failed (log: $OUT/setup.log)" >&2; exit 2
  fi
  tail -n 3 "$OUT/setup.log"
  echo "$WANT_STAMP" > "$STAMP"
else
  echo "== setup: reusing $ABVENV ($("$ABVENV/bin/wstest" --autobahnversion 2>/dev/null | tail -n1))"
fi
PYV="$ABVENV/bin/python"

# ---------------------------------------------------------------- build
echo "== build: $CARGO build --release, then the C programs"
if ! bounded 1800 "$CARGO" build --release --quiet; then
  echo "run.sh: cargo build failed" >&2; exit 2
fi
LIB="${CARGO_TARGET_DIR:-$ROOT/target}/release/libnopoll.a"
INC=(-I"$ROOT/include")
if [ ! -f "$ROOT/include/nopoll.h" ]; then   # before the committed header existed
  GEN="$(ls -t "${CARGO_TARGET_DIR:-$ROOT/target}"/*/build/nopoll-*/out/nopoll.h 2>/dev/null | head -n1)"
  [ -n "$GEN" ] || { echo "run.sh: no nopoll.h found" >&2; exit 2; }
  INC+=(-I"$(dirname "$GEN")")
fi
CC="${CC:-cc}"
for prog in echo-listener autobahn-client; do
  if ! "$CC" -ansi -Wall -Werror -Wstrict-prototypes -O2 "${INC[@]}" "$ROOT/c-examples/$prog.c" \
       "$LIB" -lssl -lcrypto -lpthread -ldl -lm -o "$OUT/bin/$prog"; then
    echo "run.sh: cannot build c-examples/$prog.c" >&2; exit 2
  fi
done
echo "   built $OUT/bin/echo-listener and $OUT/bin/autobahn-client (setup+build $(secs "$T_SETUP" "$(now)") s)"
LISTENER="$OUT/bin/echo-listener"
if [ "$FW" = 1 ]; then
  # The firmware build (as `make test-mcu` builds it, here for the host) and
  # the footprint echo listener with the libc socket table of its host run.
  FWT="${CARGO_TARGET_DIR:-$ROOT/target}/conformance-firmware"
  echo "== build: the firmware build (no_std, no-log) for the host and tools/footprint/echo.c"
  if ! bounded 1800 "$CARGO" build --release --quiet --no-default-features --features no-log \
       --target-dir "$FWT"; then
    echo "run.sh: cargo build of the firmware build failed" >&2; exit 2
  fi
  if ! "$CC" -Wall -Werror -O2 "${INC[@]}" -DFOOTPRINT_SOCKET_OPS "$ROOT/tools/footprint/echo.c" \
       "$ROOT/tools/footprint/socket_ops.c" "$FWT/release/libnopoll.a" -o "$OUT/bin/firmware-echo"; then
    echo "run.sh: cannot build tools/footprint/echo.c" >&2; exit 2
  fi
  LISTENER="$OUT/bin/firmware-echo"
fi

# ---------------------------------------------------------------- wss://
LISTENER_TLS=()
SUFFIX=""
if [ "$TLS" = 1 ]; then
  DEFLATE=0
  T="$OUT/tls"; mkdir -p "$T"
  if ! ( cd "$T" && set -e
         openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=ab-test-ca \
           -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=localhost
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
         openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem
       ) > "$T/gen.log" 2>&1; then
    cat "$T/gen.log" >&2; echo "run.sh: cannot make the test certificates" >&2; exit 2
  fi
  export AB_TLS_CERT="$T/server.pem" AB_TLS_KEY="$T/server.key" AB_TLS_CA="$T/ca.pem" AUTOBAHN_CA="$T/ca.pem"
  LISTENER_TLS=("$T/server.pem" "$T/server.key")
  SUFFIX="-tls"
fi

STATUS=0
LINES=()
summary_ok() { tail -n1 "$1" | grep -Eq ': [0-9]+ passed, 0 failed'; }

# ---------------------------------------------------------------- server role
run_server() {   # CASES REPORT_NAME EXPECTED [ECHO_DEFLATE]
  local cases="$1" label=autobahn-server expected="$3" deflate="${4:-}"
  local port="${AB_SERVER_PORT:-$(free_port)}"
  local rep="$OUT/reports/$2"
  local log="$OUT/reports/$2-echo-listener.log"
  mkdir -p "$rep"
  echo "== $label: echo-listener on 127.0.0.1:$port, wstest fuzzingclient cases [$cases]"
  ECHO_DEFLATE="$deflate" "$LISTENER" "$port" "${LISTENER_TLS[@]}" > "$log" 2>&1 &
  local el=$!
  PIDS+=("$el")
  # Up to 60 s: a loaded machine can be slow to start it; ready ends the wait.
  # The footprint echo prints nothing: ready when its port takes a connection.
  for _ in $(seq 600); do
    if [ "$FW" = 1 ]; then
      "$PYV" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
        "$port" 2>/dev/null && echo ready >> "$log" && break
    fi
    grep -q "ready" "$log" 2>/dev/null && break; kill -0 "$el" 2>/dev/null || break; sleep 0.1
  done
  if ! grep -q "ready" "$log"; then
    cat "$log" >&2; echo "run.sh: echo-listener did not start" >&2; STATUS=2; return
  fi
  local t0; t0=$(now)
  bounded $((TMO + 30)) "$AB/run-server-check.sh" -V "$ABVENV" -o "$rep" -a "$AGENT" -t "$TMO" \
      127.0.0.1 "$port" "$cases" > "$rep/check.log" 2>&1
  local rc=$? t1; t1=$(now)
  # The listener must still be alive (a crash shows as MISSING cases too).
  if ! kill -0 "$el" 2>/dev/null; then
    echo "   echo-listener died during the run (log: $log)"; STATUS=1
  fi
  kill -TERM "$el" 2>/dev/null
  for _ in $(seq 600); do kill -0 "$el" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$el" 2>/dev/null; then echo "   echo-listener ignored SIGTERM for 60 s"; STATUS=1; fi
  grep -Ev '^  failed ' "$rep/check.log" | sed 's/^/   /' | tail -n 8
  grep -E '^  failed ' "$rep/check.log" | head -n 40
  finish "$label" "$rc" "$rep" "$expected" "$t0" "$t1"
}

# ---------------------------------------------------------------- client role
run_client() {   # CASES REPORT_NAME EXPECTED [AUTOBAHN_DEFLATE]
  local cases="$1" label=autobahn-client expected="$3" deflate="${4:-}"
  local port="${AB_CLIENT_PORT:-$(free_port)}"
  local rep="$OUT/reports/$2"
  mkdir -p "$rep"
  echo "== $label: wstest fuzzingserver on 127.0.0.1:$port, autobahn-client, cases [$cases]"
  local t0; t0=$(now)
  AUTOBAHN_DEFLATE="$deflate" bounded $((TMO + 60)) "$AB/run-client-check.sh" -V "$ABVENV" -p "$port" -o "$rep" -a "$AGENT" \
      -t "$TMO" -c "$cases" -- "$OUT/bin/autobahn-client" '{url}' '{agent}' > "$rep/check.log" 2>&1
  local rc=$? t1; t1=$(now)
  grep -Ev '^  failed ' "$rep/check.log" | sed 's/^/   /' | tail -n 8
  grep -E '^  failed ' "$rep/check.log" | head -n 40
  finish "$label" "$rc" "$rep" "$expected" "$t0" "$t1"
}

finish() {   # LABEL RC REPORTDIR EXPECTED T0 T1
  local label="$1" rc="$2" rep="$3" expected="$4" wall
  wall=$(secs "$5" "$6")
  if [ "$rc" != 0 ] || ! grep -q "^$label: " "$rep/check.log"; then
    echo "   $label: check script failed (rc=$rc); see $rep/check.log"; STATUS=2
    LINES+=("$label: no summary (rc=$rc)")
    return
  fi
  local line; line="$(grep "^$label: " "$rep/check.log" | tail -n1)"
  # The firmware build refuses 9.*'s large messages (1009), as its
  # expected results say: for it the comparison below is the verdict.
  [ "$FW" = 1 ] || summary_ok "$rep/check.log" || STATUS=1
  if [ "$BLESS" = 1 ]; then
    "$PYV" "$HERE/compare.py" bless "$rep/index.json" "$expected" "$AGENT" | sed 's/^/   /'
  fi
  local cmp
  cmp="$("$PYV" "$HERE/compare.py" check "$label" "$rep/index.json" "$expected" "$AGENT")"
  local crc=$?
  echo "$cmp" | sed 's/^/   /'
  [ "$crc" = 0 ] || STATUS=$(( STATUS > 1 ? STATUS : 1 ))
  LINES+=("$line   [wall ${wall}s]" "$(echo "$cmp" | tail -n1)")
}

if [ "$BASE" = 1 ]; then
  [ "$FW" = 1 ] && SUFFIX=-firmware
  [ "$DO_SERVER" = 1 ] && run_server "*" "server$SUFFIX" "$HERE/expected/server$SUFFIX.json"
  [ "$DO_CLIENT" = 1 ] && run_client "*" "client$SUFFIX" "$HERE/expected/client$SUFFIX.json"
fi
if [ "$DEFLATE" = 1 ]; then
  if [ "$FULL" = 1 ]; then
    DCASES="12.*,13.*"; DNAME=deflate-full
    # 12.2.15-18 and 12.3.16-18 (128 KiB in 256 B-1 KiB fragments, 1,000
    # times) take 60-100 s each here: above the client's 60 s per case.
    export AUTOBAHN_CASE_SECONDS=600
  else
    DCASES=""
    for n in 1 2 3 4 5; do for m in 1 2 3 4 5 11; do DCASES="$DCASES,12.$n.$m"; done; done
    for n in 1 2 3 4 5 6 7; do for m in 1 2 3 4 5 11; do DCASES="$DCASES,13.$n.$m"; done; done
    DCASES="${DCASES#,}"; DNAME=deflate
  fi
  [ "$DO_SERVER" = 1 ] && run_server "$DCASES" "server-$DNAME" "$HERE/expected/server-$DNAME.json" 1
  [ "$DO_CLIENT" = 1 ] && run_client "$DCASES" "client-$DNAME" "$HERE/expected/client-$DNAME.json" 1
fi

echo "== summary (reports under $OUT/reports)"
for l in "${LINES[@]}"; do echo "$l"; done
exit "$STATUS"
