#!/usr/bin/env bash
# Footprint of the library (issue 6): its share of a minimal C echo
# listener linked statically with --gc-sections (.text, .rodata, .data,
# .bss, and the biggest functions), and the heap a connection costs, idle
# and with a 64 KiB message in flight. For the std and the no-std build,
# each also with the extra cargo features of $FOOTPRINT_FEATURES.
#
#   tools/footprint/run.sh               measure; report in target/footprint/out/report.md
#   tools/footprint/run.sh --write-doc   also refresh the generated part of docs/footprint.md
#
# Environment:
#   FOOTPRINT_FEATURES  extra cargo features measured as extra variants,
#                       e.g. "no-log" (skipped with a note if Cargo.toml
#                       has no such feature)
#   FOOTPRINT_CONNS     client connections of the heap run (default 100)
#   CC, CARGO           compilers (default cc, cargo)
#
# The library is built with the `min-size` profile (opt-level z, fat LTO,
# one codegen unit, abort on panic) as a staticlib only: with the rlib and
# cdylib of [lib] crate-type in the same build cargo silently drops LTO
# (rust-lang/cargo#9672), so `cargo rustc --crate-type staticlib`.
# Everything runs on 127.0.0.1 and is bounded in time.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tools/footprint
CC=${CC:-cc}
CARGO=${CARGO:-cargo}
conns=${FOOTPRINT_CONNS:-100}
extra=$(echo "${FOOTPRINT_FEATURES:-}" | tr ',' ' ' | xargs || true)
write_doc=0
[ "${1:-}" = "--write-doc" ] && write_doc=1

tdir=$root/target/footprint          # cargo target dir of these builds
out=$tdir/out
rm -rf "$out"
mkdir -p "$out"
log=$out/run.log
: >"$log"

say() { echo "footprint: $*" | tee -a "$log" >&2; }

CFLAGS="-Os -ffunction-sections -fdata-sections -Wall -Wextra -I$root/include"
LDFLAGS="-static -Os -Wl,--gc-sections"
LIBS="-lpthread -ldl -lm"
WRAP="-Wl,--wrap=malloc,--wrap=free,--wrap=realloc,--wrap=calloc,--wrap=posix_memalign,--wrap=aligned_alloc"

# Cargo features this commit declares.
features=$($CARGO metadata --no-deps --format-version 1 --manifest-path "$root/Cargo.toml" |
	python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["packages"][0]["features"]))')

# variant name | cargo arguments | C defines
# The std variants leave TLS out (OpenSSL's size is OpenSSL's, and it would
# need the static libssl): the WebSocket library's own footprint.
variants=("std|--no-default-features --features std|" "no-std|--no-default-features|-DFOOTPRINT_SOCKET_OPS")
if [ -n "$extra" ]; then
	missing=""
	for f in $extra; do
		case " $features " in *" $f "*) ;; *) missing="$missing $f" ;; esac
	done
	if [ -n "$missing" ]; then
		say "feature(s)$missing not in Cargo.toml at this commit: variants with FOOTPRINT_FEATURES='$extra' skipped"
	else
		fl=$(echo "$extra" | tr ' ' ',')
		variants+=("std+$fl|--no-default-features --features std,$fl|" "no-std+$fl|--no-default-features --features $fl|-DFOOTPRINT_SOCKET_OPS")
	fi
fi

measured=()
for v in "${variants[@]}"; do
	IFS='|' read -r name cargo_args defs <<<"$v"
	dir=$out/$name
	mkdir -p "$dir"
	say "$name: cargo rustc --profile min-size --lib --crate-type staticlib $cargo_args"
	# shellcheck disable=SC2086
	(cd "$root" && $CARGO rustc --quiet --profile min-size --lib --crate-type staticlib \
		--target-dir "$tdir" $cargo_args) >>"$log" 2>&1
	cp "$tdir/min-size/libnopoll.a" "$dir/libnopoll.a"
	nm -g --defined-only "$dir/libnopoll.a" >"$dir/exports.txt" 2>/dev/null || true
	if ! grep -qw 'T nopoll_ctx_new' "$dir/exports.txt"; then
		say "$name: skipped: this build of the library has no C API (no nopoll_ctx_new)"
		echo "skipped: no C API in this build (nopoll_ctx_new missing)" >"$dir/skipped"
		continue
	fi

	# The echo listener, linked statically (glibc too) with a link map.
	objs="$dir/echo.o"
	# shellcheck disable=SC2086
	$CC $CFLAGS $defs -c "$here/echo.c" -o "$dir/echo.o"
	if [ -n "$defs" ]; then
		# shellcheck disable=SC2086
		$CC $CFLAGS -c "$here/socket_ops.c" -o "$dir/socket_ops.o"
		objs="$objs $dir/socket_ops.o"
	fi
	# shellcheck disable=SC2086
	$CC $LDFLAGS -Wl,-Map="$dir/echo.map" -o "$dir/echo" $objs "$dir/libnopoll.a" $LIBS \
		>>"$log" 2>&1
	python3 "$here/mapshare.py" "$dir/echo" "$dir/echo.map" --top 30 \
		--json "$dir/size.json" >"$dir/size.md"

	# Does it work? One text and one binary message echoed, over 127.0.0.1.
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	timeout 20 "$dir/echo" "$port" >>"$log" 2>&1 &
	echo_pid=$!
	if ! timeout 15 python3 "$here/wsping.py" 127.0.0.1 "$port" >>"$log" 2>&1; then
		kill "$echo_pid" 2>/dev/null || true
		say "$name: the echo listener did not echo (see $log)"
		exit 1
	fi
	kill "$echo_pid" 2>/dev/null || true
	wait "$echo_pid" 2>/dev/null || true

	# Heap per connection: glibc linked dynamically so that only the
	# library's and the program's allocations are wrapped.
	hobjs="$here/heap.c"
	[ -n "$defs" ] && hobjs="$hobjs $here/socket_ops.c"
	# shellcheck disable=SC2086
	$CC -O2 -Wall -Wextra -I"$root/include" $defs -o "$dir/heap" $hobjs "$dir/libnopoll.a" \
		$WRAP $LIBS >>"$log" 2>&1
	timeout 70 "$dir/heap" "$conns" >"$dir/heap.txt" 2>>"$log"
	say "$name: done"
	measured+=("$name")
done

{
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- commit: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock build.rs tools/footprint || echo ' (with local changes)')"
	echo "- $(rustc --version), $($CC --version | head -1), $(ld --version | head -1), glibc $(ldd --version | head -1 | awk '{print $NF}')"
	echo "- machine: $(uname -m), $(nproc) cores"
	echo "- FOOTPRINT_FEATURES='${extra}', FOOTPRINT_CONNS=$conns"
} >"$out/env.md"

python3 "$here/report.py" "$out" "${variants[@]%%|*}" >"$out/report.md"
cat "$out/report.md"
if [ $write_doc = 1 ]; then
	python3 "$here/report.py" --splice "$root/docs/footprint.md" "$out/report.md"
	say "docs/footprint.md updated"
fi
