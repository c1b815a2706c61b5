#!/usr/bin/env bash
# The no_std libnopoll.a (the whole C API) may need nothing from its host
# but C library symbols that firmware has. Lists every symbol the archive's
# objects reference and none of them defines, and fails on any outside the
# allowlist below (the README's "Firmware" section documents the same list).
#
# Usage: tests/nostd/symbols.sh [path/to/libnopoll.a]
set -euo pipefail
cd "$(dirname "$0")/../.."
lib=${1:-target/nostd/release/libnopoll.a}
[ -f "$lib" ] || { echo "symbols: $lib missing (make check-nostd builds it)" >&2; exit 1; }

allowed=(
  malloc calloc realloc free           # the heap (Rust's allocator is the C heap)
  memcpy memmove memset memcmp bcmp    # what compilers emit for copies and compares
  strlen strncpy vsnprintf             # C strings, printf-style API (nopoll_strdup_printf)
  abort                                # a panic (unreachable by input) aborts
  gettimeofday                         # default clock, unless nopoll_install_clock
  rand                                 # default random, unless nopoll_install_random
)
# Arm EABI objects name the unwinder's personality routine in their unwind
# tables even with panic=abort; libgcc (linked by arm-none-eabi-gcc) has it.
case "$lib" in */thumbv*) allowed+=(__aeabi_unwind_cpp_pr0) ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && ar x "$OLDPWD/$lib")
for o in "$tmp"/*.o; do
  readelf -sW "$o" | awk 'NR > 3 && $8 != "" {
      if ($7 == "UND") print "U", $8;
      else if ($5 != "LOCAL" && $4 != "FILE" && $4 != "SECTION") print "D", $8 }'
done > "$tmp/syms"
awk '$1 == "U" { print $2 }' "$tmp/syms" | sort -u > "$tmp/undef"
awk '$1 == "D" { print $2 }' "$tmp/syms" | sort -u > "$tmp/def"
needed=$(comm -23 "$tmp/undef" "$tmp/def")
printf '%s\n' "${allowed[@]}" | sort -u > "$tmp/allowed"
extra=$(comm -23 <(printf '%s\n' $needed | sort -u) "$tmp/allowed")
echo "symbols: $lib needs from its host: $(echo $needed)"
if [ -n "$extra" ]; then
  echo "symbols: FAIL: not in the firmware allowlist: $(echo $extra)" >&2
  exit 1
fi
# The objects must really be there (an empty archive would pass the check).
grep -q "^D nopoll_ctx_new$" "$tmp/syms" || { echo "symbols: FAIL: nopoll_ctx_new not defined" >&2; exit 1; }
grep -q "^D nopoll_install_socket_ops$" "$tmp/syms" || { echo "symbols: FAIL: nopoll_install_socket_ops not defined" >&2; exit 1; }
echo "symbols: ok (whole C API, $(awk '$1 == "D" && $2 ~ /^nopoll_/' "$tmp/syms" | sort -u | wc -l) nopoll_* symbols)"
