#!/usr/bin/env bash
# Builds tests/nostd/wake.c against the no_std libnopoll.a with the libc
# socket table of tools/footprint/socket_ops.c (marked kernel_fds = 1 by
# the program) and runs it, bounded (make check-nostd).
#
# Usage: tests/nostd/wake.sh [path/to/libnopoll.a]
set -euo pipefail
cd "$(dirname "$0")/../.."
lib=${1:-target/nostd/release/libnopoll.a}
[ -f "$lib" ] || { echo "wake: $lib missing (make check-nostd builds it)" >&2; exit 1; }
out=$(dirname "$lib")/nostd-wake
"${CC:-cc}" -Wall -Werror -O1 -pthread -Iinclude tests/nostd/wake.c tools/footprint/socket_ops.c \
	"$lib" -o "$out"
timeout --kill-after=5 30 "$out"
