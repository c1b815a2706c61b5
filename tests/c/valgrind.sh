#!/usr/bin/env bash
# Runs the C API test programs (tests/c/*.c, as tests/c_api.rs does) under
# valgrind, linked against the debug libnopoll.a:
#
#   tests/c/valgrind.sh [PROGRAM...]     (default: all of them)
#
# Fails (exit 1) on any valgrind error (invalid read/write, use of
# uninitialised memory, ...), any definite or indirect leak, a failed check
# or a program that does not finish in time. The programs run with
# NOPOLL_TEST_SLOW=1, which scales their iteration counts down and their
# timeouts up (valgrind is ~20x slower).
#
# Without valgrind on PATH it prints SKIP and exits 0, unless
# VALGRIND_REQUIRED=1 (then it fails). Install: apt-get install valgrind.
# Logs: <target>/debug/c-api-valgrind/<program>.log
set -uo pipefail
cd "$(dirname "$0")/../.."

if ! command -v valgrind >/dev/null 2>&1; then
  if [ "${VALGRIND_REQUIRED:-0}" = 1 ]; then
    echo "valgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
  fi
  echo "valgrind.sh: SKIP: valgrind is not installed (apt-get install valgrind)"
  exit 0
fi

target="${CARGO_TARGET_DIR:-target}"
per_run_timeout="${VALGRIND_TIMEOUT:-900}"

echo "valgrind.sh: cargo build (debug)"
cargo build --quiet || { echo "valgrind.sh: cargo build failed" >&2; exit 1; }

# A --no-default-features build writes a libnopoll.a without the C API to
# the same paths, and cargo may then consider the default build fresh:
# take one that has the C API, else build one in a separate target dir.
has_c_api() { [ -f "$1" ] && grep -q nopoll_conn_new_opts "$1"; }
lib=""
for l in "$target/debug/libnopoll.a" "$target/debug/deps/libnopoll.a"; do
  if has_c_api "$l"; then lib="$l"; break; fi
done
if [ -z "$lib" ]; then
  echo "valgrind.sh: $target/debug/libnopoll.a has no C API (a --no-default-features build?): building into $target/c-api-lib"
  cargo build --quiet --lib --target-dir "$target/c-api-lib" || exit 1
  lib="$target/c-api-lib/debug/libnopoll.a"
  has_c_api "$lib" || { echo "valgrind.sh: $lib has no C API" >&2; exit 1; }
fi
header="$(ls -t "$target"/debug/build/nopoll-*/out/nopoll.h "$target"/c-api-lib/debug/build/nopoll-*/out/nopoll.h 2>/dev/null | head -1)"
if [ -z "$header" ]; then
  echo "valgrind.sh: the generated nopoll.h is missing" >&2
  exit 1
fi
echo "valgrind.sh: using $lib and $header"
out="$target/debug/c-api-valgrind"
mkdir -p "$out"

if [ $# -gt 0 ]; then
  programs=("$@")
else
  programs=()
  for src in tests/c/*.c; do
    name="$(basename "$src" .c)"
    [ "$name" = header_compile ] && continue
    programs+=("$name")
  done
fi

cflags=(-ansi -Wall -Werror -Wstrict-prototypes -Wdeclaration-after-statement -g -pthread)
libs=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
failed=()
for name in "${programs[@]}"; do
  exe="$out/$name"
  log="$out/$name.log"
  if ! cc "${cflags[@]}" -I"$(dirname "$header")" -Iinclude "tests/c/$name.c" -o "$exe" "$lib" "${libs[@]}"; then
    echo "FAIL $name: does not compile"
    failed+=("$name")
    continue
  fi
  start=$SECONDS
  NOPOLL_TEST_SLOW=1 timeout --kill-after=10 "$per_run_timeout" \
    valgrind --error-exitcode=99 --leak-check=full \
      --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \
      --num-callers=40 --fair-sched=yes \
      "$exe" >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  last="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)"
  summary="$(grep -E 'ERROR SUMMARY|definitely lost|indirectly lost' "$log" | sed 's/^==[0-9]*== *//' | tr '\n' ';')"
  if [ $rc -eq 0 ] && [[ "$last" =~ ^[1-9][0-9]*\ passed,\ 0\ failed$ ]]; then
    echo "ok   $name (${took}s): $last; $summary"
  else
    case $rc in
      99) why="valgrind found errors or leaks" ;;
      124|137) why="timed out after ${per_run_timeout}s" ;;
      *) why="exit code $rc" ;;
    esac
    echo "FAIL $name (${took}s): $why; ${last:-no result line}; $summary"
    echo "     log: $log"
    failed+=("$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "valgrind.sh: ${#failed[@]} of ${#programs[@]} failed: ${failed[*]}"
  exit 1
fi
echo "valgrind.sh: all ${#programs[@]} programs clean"
