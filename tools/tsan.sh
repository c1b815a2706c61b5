#!/usr/bin/env bash
# ThreadSanitizer over the lock-free handle code (make test-tsan, part of
# make test): the unit tests of src/ffi/ (published message handles,
# the thread-local dispatch record, the stop cells of nopoll_loop_stop;
# several of them hammer one handle from many threads) built with
# -Zsanitizer=thread, std included.
#
# A sanitized std needs -Zbuild-std and the standard library's sources;
# rustup's nightly here has no rust-src, so this uses Debian's rustc
# (rustc-web, cargo-web, with its sources in rust-web-src), with
# RUSTC_BOOTSTRAP=1 for the unstable flags. TSAN_RUSTC / TSAN_CARGO
# choose another pair whose sysroot has lib/rustlib/src/rust/library.
# Without one: SKIP (exit 0), or a failure with TSAN_REQUIRED=1.
# Bounded: TSAN_TIMEOUT seconds (default 1500) for build and run.
set -euo pipefail
cd "$(dirname "$0")/.."

rustc_bin="${TSAN_RUSTC:-/usr/bin/rustc}"
cargo_bin="${TSAN_CARGO:-/usr/bin/cargo}"
target="$(uname -m)-unknown-linux-gnu"
src=""
if [ -x "$rustc_bin" ] && [ -x "$cargo_bin" ]; then
  src="$("$rustc_bin" --print sysroot)/lib/rustlib/src/rust/library"
fi
if [ -z "$src" ] || [ ! -f "$src/Cargo.lock" ]; then
  msg="tsan.sh: needs a rustc with its library sources (apt-get install rustc-web cargo-web rust-web-src)"
  if [ "${TSAN_REQUIRED:-0}" = 1 ]; then echo "$msg" >&2; exit 1; fi
  echo "$msg: SKIP"
  exit 0
fi

echo "tsan.sh: $("$rustc_bin" --version), std from $src"
export RUSTC="$rustc_bin" RUSTDOC="$(dirname "$rustc_bin")/rustdoc"
export RUSTC_BOOTSTRAP=1
# Debian's rustc ships no TSan runtime: the one of rustup's nightly
# (installed for cargo-fuzz; same LLVM major) or TSAN_RT is linked instead.
rt="${TSAN_RT:-$(rustc +nightly --print sysroot 2>/dev/null)/lib/rustlib/$target/lib/librustc-nightly_rt.tsan.a}"
if [ ! -f "$("$rustc_bin" --print sysroot)/lib/rustlib/$target/lib/librustc-stable_rt.tsan.a" ]; then
  if [ -z "$rt" ] || [ ! -f "$rt" ]; then
    msg="tsan.sh: no TSan runtime (rustup toolchain install nightly, or TSAN_RT=.../librustc-*_rt.tsan.a)"
    if [ "${TSAN_REQUIRED:-0}" = 1 ]; then echo "$msg" >&2; exit 1; fi
    echo "$msg: SKIP"
    exit 0
  fi
  # First on the link line, as rustc puts its own: the C libraries it
  # needs come after it (after them, glibc's versioned symbols go missing).
  extra="-Zexternal-clangrt -Zpre-link-arg=-Wl,--whole-archive -Zpre-link-arg=$rt -Zpre-link-arg=-Wl,--no-whole-archive"
  echo "tsan.sh: TSan runtime $rt"
fi
export RUSTFLAGS="-Zsanitizer=thread ${extra:-}"
# One std for the library and the test harness (the dev profile aborts on
# panic, tests unwind: two std builds would clash, E0152).
export CARGO_PROFILE_DEV_PANIC=unwind
# Fail on the first report; a report is a failure even if the test passed.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
timeout --kill-after=10 "${TSAN_TIMEOUT:-1500}" \
  "$cargo_bin" test -Zbuild-std --target "$target" --target-dir target/tsan \
  --lib -- ffi:: --test-threads 2
echo "tsan.sh: no data race reported"
