#!/usr/bin/env bash
# Drop-in demonstration: the C programs of c-examples/dropin/ (written
# against upstream nopoll's API only) are built the way a user builds them,
# against an installed copy of this library, and run against each other.
#
#   tests/compat/dropin.sh
#
# 1. `make install PREFIX=<tmpdir>` (builds the release library), then
#    checks the installed soname symlinks (libnopoll.so -> libnopoll.so.0
#    -> libnopoll.so.0.0.0, SONAME libnopoll.so.0).
# 2. Builds client.c, server.c and port-sharing.c twice with
#    `cc -ansi -Wall -Werror -Wstrict-prototypes`: with
#    `pkg-config --cflags --libs nopoll` (shared library, found at run time
#    through the soname link) and with `pkg-config --static --libs nopoll`
#    (libnopoll.a), and checks what each binary links.
# 3. Runs the servers and clients against each other on 127.0.0.1 (ports
#    chosen by the system), every mix of shared and static builds, plus
#    plain HTTP and WebSocket on the one port of port-sharing.c. Every run
#    has a time limit; any difference from the expected output fails.
#
# Needs cc, make, pkg-config, readelf, timeout and bash (CI has them).
# CARGO=... selects the cargo used by make install. Exit 0 when everything
# matched, 1 otherwise (with the logs of what failed).
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

for tool in cc make pkg-config readelf timeout; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "dropin.sh: $tool is missing (apt-get install build-essential pkg-config binutils coreutils)" >&2
    exit 1
  fi
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/nopoll-dropin.XXXXXX")"
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

checks=0
failures=0
pass() { checks=$((checks + 1)); }
fail() {
  failures=$((failures + 1))
  echo "FAIL: $*"
}
# expect_in FILE TEXT WHAT: FILE contains the line fragment TEXT.
expect_in() {
  if grep -qF -- "$2" "$1"; then pass; else
    fail "$3: expected \"$2\" in $(basename "$1"):"
    sed 's/^/    | /' "$1"
  fi
}

prefix="$tmp/prefix"
lib="$prefix/lib"
echo "dropin.sh: make install PREFIX=$prefix"
if ! make -s -C "$root" install PREFIX="$prefix" CARGO="${CARGO:-cargo}" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log"
  echo "dropin.sh: make install failed" >&2
  exit 1
fi

# ------------------------------------------------------------ installed files
[ "$(readlink "$lib/libnopoll.so")" = libnopoll.so.0 ] && pass ||
  fail "libnopoll.so should link to libnopoll.so.0 (is: $(readlink "$lib/libnopoll.so"))"
[ "$(readlink "$lib/libnopoll.so.0")" = libnopoll.so.0.0.0 ] && pass ||
  fail "libnopoll.so.0 should link to libnopoll.so.0.0.0 (is: $(readlink "$lib/libnopoll.so.0"))"
[ -f "$lib/libnopoll.so.0.0.0" ] && [ ! -L "$lib/libnopoll.so.0.0.0" ] && pass ||
  fail "libnopoll.so.0.0.0 is not a regular file"
readelf -d "$lib/libnopoll.so.0.0.0" | grep -q 'SONAME.*\[libnopoll\.so\.0\]' && pass ||
  fail "libnopoll.so.0.0.0 has no SONAME libnopoll.so.0"
[ -f "$lib/libnopoll.a" ] && pass || fail "libnopoll.a is not installed"

export PKG_CONFIG_PATH="$lib/pkgconfig"
cflags="$(pkg-config --cflags nopoll | sed 's/ *$//')"
[ -n "$cflags" ] || { echo "dropin.sh: pkg-config --cflags nopoll failed" >&2; exit 1; }
libs="$(pkg-config --libs nopoll)"
# --static adds Libs.private; the archive itself replaces -lnopoll (a plain
# -lnopoll picks the shared library when both are installed).
static_libs="$(pkg-config --static --libs nopoll | sed "s|-lnopoll|$lib/libnopoll.a|")"
[ "$cflags" = "-I$prefix/include/nopoll" ] && pass || fail "pkg-config --cflags nopoll: $cflags"

# ------------------------------------------------------------ build
programs=(client server port-sharing)
for p in "${programs[@]}"; do
  # shellcheck disable=SC2086 # the flags are lists of words
  if cc -ansi -Wall -Werror -Wstrict-prototypes $cflags "c-examples/dropin/$p.c" -o "$tmp/$p-shared" $libs \
      >"$tmp/build-$p-shared.log" 2>&1; then pass; else
    fail "building $p (shared)"; cat "$tmp/build-$p-shared.log"; continue
  fi
  # shellcheck disable=SC2086
  if cc -ansi -Wall -Werror -Wstrict-prototypes $cflags "c-examples/dropin/$p.c" -o "$tmp/$p-static" $static_libs \
      >"$tmp/build-$p-static.log" 2>&1; then pass; else
    fail "building $p (static)"; cat "$tmp/build-$p-static.log"; continue
  fi
  readelf -d "$tmp/$p-shared" | grep -q 'NEEDED.*\[libnopoll\.so\.0\]' && pass ||
    fail "$p-shared does not need libnopoll.so.0"
  if readelf -d "$tmp/$p-static" | grep -q 'libnopoll'; then
    fail "$p-static still needs the shared libnopoll"
  else pass; fi
done
if [ "$failures" -gt 0 ]; then
  echo "dropin.sh: $checks passed, $failures failed"
  exit 1
fi

# ------------------------------------------------------------ run
export LD_LIBRARY_PATH="$lib"

# start NAME LOG: starts $tmp/NAME in the background, waits for its
# "LISTENING: <port>" line; sets $port and $pid (empty port on failure).
start() {
  port=""
  "$tmp/$1" >"$2" 2>&1 &
  pid=$!
  pids+=("$pid")
  local i
  for i in $(seq 1 200); do
    port="$(sed -n 's/^LISTENING: \([0-9][0-9]*\)$/\1/p' "$2")"
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "$1 did not start listening"
  sed 's/^/    | /' "$2"
  return 1
}

# finish PID LOG NAME: the program exits by itself, successfully, in time.
finish() {
  local i
  for i in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$1" 2>/dev/null; then
    fail "$3 did not stop"
    kill "$1" 2>/dev/null
    return
  fi
  if wait "$1"; then pass; else fail "$3 exited with an error:"; sed 's/^/    | /' "$2"; fi
}

# client MODE LOG ARGS...: runs the client (time-limited), output in LOG.
client() {
  local mode="$1" log="$2"
  shift 2
  timeout 20 "$tmp/client-$mode" "$@" >"$log" 2>&1
}

run=0
for pair in shared:shared static:static shared:static static:shared; do
  s="${pair%%:*}"
  c="${pair##*:}"
  run=$((run + 1))
  echo "dropin.sh: server ($s) <-> client ($c)"
  slog="$tmp/server-$run.log"
  start "server-$s" "$slog" || continue
  server_pid=$pid

  clog="$tmp/client-$run-a.log"
  if client "$c" "$clog" 127.0.0.1 "$port" "hello from $c"; then pass; else
    fail "client ($c) failed against server ($s)"; sed 's/^/    | /' "$clog"
  fi
  expect_in "$clog" "CONNECTED: protocol=chat" "subprotocol picked in on_open"
  expect_in "$clog" "REPLY: echo: hello from $c" "echo"
  expect_in "$slog" "ACCEPTED: url=/echo protocols=chat" "server on_open"

  clog="$tmp/client-$run-b.log"
  if client "$c" "$clog" 127.0.0.1 "$port" "x" "http://evil.example"; then
    fail "a client with a refused Origin succeeded"; sed 's/^/    | /' "$clog"
  else pass; fi
  expect_in "$clog" "handshake with 127.0.0.1:$port failed" "refused Origin"
  expect_in "$slog" "REFUSED: origin http://evil.example" "server refuses the Origin"

  clog="$tmp/client-$run-c.log"
  if client "$c" "$clog" 127.0.0.1 "$port" "quit"; then pass; else
    fail "client ($c) quit"; sed 's/^/    | /' "$clog"
  fi
  expect_in "$clog" "REPLY: bye" "quit answered"
  finish "$server_pid" "$slog" "server ($s)"
  expect_in "$slog" "STOPPED: 0" "server stopped by quit"
done

# http_get PORT LOG: a plain HTTP request with bash's /dev/tcp.
http_get() {
  timeout 10 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    printf "GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" >&3
    cat <&3' "$1" >"$2" 2>&1
}

for mode in shared static; do
  run=$((run + 1))
  echo "dropin.sh: port sharing ($mode): HTTP and WebSocket on one port"
  slog="$tmp/sharing-$run.log"
  start "port-sharing-$mode" "$slog" || continue
  server_pid=$pid

  hlog="$tmp/http-$run-a.log"
  http_get "$port" "$hlog" && pass || fail "HTTP request to port-sharing ($mode)"
  expect_in "$hlog" "HTTP/1.0 200 OK" "HTTP status"
  expect_in "$hlog" "hello from the legacy server" "HTTP body"

  clog="$tmp/client-$run-a.log"
  if client "$mode" "$clog" 127.0.0.1 "$port" "over one port"; then pass; else
    fail "WebSocket client against port-sharing ($mode)"; sed 's/^/    | /' "$clog"
  fi
  expect_in "$clog" "REPLY: shared: over one port" "WebSocket echo over the shared port"

  hlog="$tmp/http-$run-b.log"
  http_get "$port" "$hlog" && pass || fail "second HTTP request to port-sharing ($mode)"
  expect_in "$hlog" "hello from the legacy server" "HTTP after WebSocket"

  clog="$tmp/client-$run-b.log"
  if client "$mode" "$clog" 127.0.0.1 "$port" "quit"; then pass; else
    fail "quit over the shared port"; sed 's/^/    | /' "$clog"
  fi
  expect_in "$clog" "REPLY: bye" "quit answered over the shared port"
  finish "$server_pid" "$slog" "port-sharing ($mode)"
  expect_in "$slog" "WEBSOCKET: handed to nopoll" "socket handed over"
  expect_in "$slog" "HTTP: served" "HTTP served by the application"
  expect_in "$slog" "STOPPED: quit" "port-sharing stopped by quit"
done

echo "dropin.sh: $checks passed, $failures failed"
[ "$failures" -eq 0 ]
