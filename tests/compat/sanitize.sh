#!/usr/bin/env bash
# The API coverage program (tests/compat/coverage.c) under AddressSanitizer
# and under valgrind, linked against the debug libnopoll.a:
#
#   tests/compat/sanitize.sh
#
# 1. AddressSanitizer (and LeakSanitizer): coverage.c compiled with
#    -fsanitize=address (the C side is instrumented: every buffer the test
#    hands to the library, every string the library returns and the test
#    reads or frees) and linked with libnopoll.a. Any report fails.
#    (allocator_may_return_null=1: the program checks that an overflowing
#    nopoll_calloc returns NULL, as libc's does.)
# 2. valgrind (memcheck, all threads, --leak-check=full): the same program
#    without ASan, with COMPAT_SLOW=1 (timeouts x10). Any error, or a
#    definite or indirect leak, fails. Without valgrind on PATH this step
#    prints SKIP (apt-get install valgrind), unless VALGRIND_REQUIRED=1.
#
# Both runs also require the program's own "N passed, 0 failed". Logs go to
# <target>/debug/compat-sanitize/. Exit 0 when both passed (or valgrind
# was skipped), 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-target}"
out="$target/debug/compat-sanitize"
mkdir -p "$out"
cc="${CC:-cc}"
cflags=(-ansi -Wall -Werror -Wstrict-prototypes -Wdeclaration-after-statement -g -pthread -Iinclude)
native_libs=(-lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

echo "sanitize.sh: cargo build (debug)"
cargo build --quiet || { echo "sanitize.sh: cargo build failed" >&2; exit 1; }

# A --no-default-features build writes a libnopoll.a without the C API to
# the same paths: take one that has it, else build one apart.
has_c_api() { [ -f "$1" ] && grep -q nopoll_conn_new_opts "$1"; }
lib=""
for l in "$target/debug/libnopoll.a" "$target/debug/deps/libnopoll.a"; do
  if has_c_api "$l"; then lib="$l"; break; fi
done
if [ -z "$lib" ]; then
  echo "sanitize.sh: no libnopoll.a with the C API: building into $target/compat-lib"
  cargo build --quiet --lib --target-dir "$target/compat-lib" || exit 1
  lib="$target/compat-lib/debug/libnopoll.a"
  has_c_api "$lib" || { echo "sanitize.sh: $lib has no C API" >&2; exit 1; }
fi
echo "sanitize.sh: using $lib"

# last_line_ok LOG: the program's own verdict.
last_line_ok() {
  grep -v '^\s*$' "$1" | tail -1 | grep -Eq '^[1-9][0-9]* passed, 0 failed$'
}

status=0

# ------------------------------------------------------------ AddressSanitizer
echo "sanitize.sh: AddressSanitizer"
if ! "$cc" "${cflags[@]}" -fsanitize=address -fno-omit-frame-pointer tests/compat/coverage.c \
    -o "$out/coverage-asan" "$lib" "${native_libs[@]}" 2>"$out/build-asan.log"; then
  cat "$out/build-asan.log"
  echo "sanitize.sh: the ASan build failed (does $cc support -fsanitize=address?)" >&2
  exit 1
fi
ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86:halt_on_error=1:allocator_may_return_null=1" \
  timeout 600 "$out/coverage-asan" >"$out/asan.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || ! last_line_ok "$out/asan.log" || grep -q 'Sanitizer' "$out/asan.log"; then
  echo "sanitize.sh: FAIL under AddressSanitizer (exit $rc); log $out/asan.log:"
  grep -E 'FAIL|ERROR|Sanitizer|SUMMARY|passed' "$out/asan.log" | head -40
  status=1
else
  echo "sanitize.sh: AddressSanitizer: $(tail -1 "$out/asan.log")"
fi

# ------------------------------------------------------------ valgrind
if ! command -v valgrind >/dev/null 2>&1; then
  if [ "${VALGRIND_REQUIRED:-0}" = 1 ]; then
    echo "sanitize.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
  fi
  echo "sanitize.sh: SKIP valgrind: not installed (apt-get install valgrind)"
  exit "$status"
fi
echo "sanitize.sh: valgrind"
if ! "$cc" "${cflags[@]}" tests/compat/coverage.c -o "$out/coverage" "$lib" "${native_libs[@]}" \
    2>"$out/build.log"; then
  cat "$out/build.log"
  echo "sanitize.sh: the build for valgrind failed" >&2
  exit 1
fi
COMPAT_SLOW=1 timeout "${VALGRIND_TIMEOUT:-1500}" valgrind --quiet --error-exitcode=99 \
  --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --log-file="$out/valgrind.log" "$out/coverage" >"$out/valgrind-stdout.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] || ! last_line_ok "$out/valgrind-stdout.log"; then
  echo "sanitize.sh: FAIL under valgrind (exit $rc); logs $out/valgrind.log, $out/valgrind-stdout.log:"
  grep -E 'FAIL|passed' "$out/valgrind-stdout.log" | head -20
  head -60 "$out/valgrind.log"
  status=1
else
  echo "sanitize.sh: valgrind: $(tail -1 "$out/valgrind-stdout.log")"
fi
exit "$status"
