#!/usr/bin/env bash
# Builds and runs every fuzz target for SECONDS each (default 60).
#
#   fuzz/run.sh [SECONDS]
#
# SECONDS=0 only replays the seeds and the saved corpus (a smoke test).
# Works from any directory. Needs cargo-fuzz and a nightly toolchain
# (FUZZ_TOOLCHAIN, default "nightly"). Each target starts from its
# committed seeds (fuzz/seeds/<target>/) plus whatever an earlier run left
# in fuzz/corpus/<target>/ (gitignored). Exits non-zero when a target finds
# a crash (the input is saved under fuzz/artifacts/<target>/) or does not
# run. Prints one line per target with the number of runs executed.
set -euo pipefail

SECONDS_EACH="${1:-60}"
case "$SECONDS_EACH" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
MAX_LEN="${FUZZ_MAX_LEN:-4096}"
TARGETS=(server_handshake client_handshake frame_decoder_server frame_decoder_client c_api proxy_header)

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR/.."

if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: needs cargo-fuzz and the $TOOLCHAIN toolchain" >&2
  echo "  (cargo install cargo-fuzz --locked; rustup toolchain install $TOOLCHAIN)" >&2
  exit 2
fi

# -a: debug assertions (and overflow checks) on, as in the unit tests.
# The same flags for build and run, so that `run` does not rebuild.
FLAGS=(--fuzz-dir "$FUZZ_DIR" -a)
echo "building fuzz targets..."
cargo "+$TOOLCHAIN" fuzz build "${FLAGS[@]}"

LOG_DIR="$FUZZ_DIR/target/run-logs"
mkdir -p "$LOG_DIR"
failed=0
summary=()
for t in "${TARGETS[@]}"; do
  corpus="$FUZZ_DIR/corpus/$t"
  mkdir -p "$corpus" "$FUZZ_DIR/artifacts/$t"
  cp "$FUZZ_DIR/seeds/$t/"* "$corpus/"
  log="$LOG_DIR/$t.log"
  echo "fuzzing $t for ${SECONDS_EACH}s (0: replay only)..."
  status=0
  if [ "$SECONDS_EACH" -eq 0 ]; then
    duration=(-runs=0)
  else
    duration=(-max_total_time="$SECONDS_EACH")
  fi
  cargo "+$TOOLCHAIN" fuzz run "${FLAGS[@]}" "$t" "$corpus" -- \
    "${duration[@]}" -max_len="$MAX_LEN" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  if [ "$status" -ne 0 ] || [ -z "$runs" ]; then
    failed=1
    summary+=("$(printf '%-22s FAILED (exit %s, %s runs), log: %s' "$t" "$status" "${runs:-?}" "$log")")
    echo "---- last lines of $log:" >&2
    tail -n 40 "$log" >&2
  else
    summary+=("$(printf '%-22s ok  %12s runs in %ss' "$t" "$runs" "$SECONDS_EACH")")
  fi
done

printf '%s\n' "${summary[@]}"
exit "$failed"
