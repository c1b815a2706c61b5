#!/usr/bin/env bash
# make test-mcu: the library on Cortex-M (README, "Firmware").
#
# 1. Cross-builds libnopoll.a (no_std, no-log, the min-size profile) for
#    thumbv7m-none-eabi (Cortex-M3), thumbv7em-none-eabihf (Cortex-M4F) and
#    thumbv6m-none-eabi (Cortex-M0/M0+) with Debian's rustc-web and
#    -Zbuild-std=core,alloc, and checks each archive needs nothing but C
#    library symbols (tests/nostd/symbols.sh).
# 2. Compiles nopoll.h with arm-none-eabi-gcc and newlib (-ansi), bare and
#    with a firmware socket header (NOPOLL_SOCKET_HEADER).
# 3. Links the test firmware (startup.c, mcu.ld, memsock.c, test.c, newlib
#    nano + semihosting) for the M3 and M4F and runs it on QEMU's
#    mps2-an385 and mps2-an386 under `timeout`: fails on any FAIL line, a
#    fault, a non-zero exit or no exit in time (first checked on a firmware
#    that faults and one that hangs). The M0 has no QEMU board
#    (mps2-an385/386/500/505/511 are M3/M4/M7/M33): build and link only.
#
# Environment: MCU_TARGETS (default all three), MCU_QEMU_SECONDS (60).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tests/mcu
out=$root/target/mcu/out
mkdir -p "$out"

# Debian's cargo/rustc (rust-web-src has the core/alloc sources) before
# rustup's; RUSTC_BOOTSTRAP for -Zbuild-std.
export PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1
for tool in cargo rustc arm-none-eabi-gcc qemu-system-arm; do
	command -v $tool >/dev/null || { echo "test-mcu: $tool missing (.ci/run installs it; README \"Firmware\")" >&2; exit 1; }
done
[ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library/core" ] ||
	{ echo "test-mcu: no core sources for -Zbuild-std (apt-get install rust-web-src)" >&2; exit 1; }

targets=${MCU_TARGETS:-thumbv7m-none-eabi thumbv7em-none-eabihf thumbv6m-none-eabi}
declare -A CPU=([thumbv7m-none-eabi]="-mcpu=cortex-m3 -mthumb"
	[thumbv7em-none-eabihf]="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
	[thumbv6m-none-eabi]="-mcpu=cortex-m0 -mthumb")
declare -A BOARD=([thumbv7m-none-eabi]=mps2-an385 [thumbv7em-none-eabihf]=mps2-an386)

lib_for() { echo "$root/target/mcu/$1/min-size/libnopoll.a"; }

for t in $targets; do
	echo "test-mcu: $t: cargo rustc --profile min-size (no_std, no-log)"
	(cd "$root" && cargo rustc --quiet --lib --crate-type staticlib --profile min-size \
		--no-default-features --features no-log --target "$t" \
		-Zbuild-std=core,alloc --target-dir target/mcu)
	(cd "$root" && tests/nostd/symbols.sh "target/mcu/$t/min-size/libnopoll.a")
done

CFLAGS="-Os -g -ffunction-sections -fdata-sections -Wall -Wextra -Werror -I$root/include"
t0=$(echo $targets | awk '{print $1}')
echo "test-mcu: nopoll.h with arm-none-eabi-gcc + newlib"
printf '#include "nopoll.h"\nint main (void) { noPollSocketOps o; noPollCtx * c = nopoll_ctx_new (); (void) o; return c == NULL; }\n' >"$out/header.c"
# shellcheck disable=SC2086
arm-none-eabi-gcc ${CPU[$t0]} -ansi -Wall -Werror -Wstrict-prototypes -I"$root/include" -c "$out/header.c" -o "$out/header.o"
# shellcheck disable=SC2086
arm-none-eabi-gcc ${CPU[$t0]} -Wall -Werror -I"$root/include" -I"$here" \
	-DNOPOLL_SOCKET_HEADER='"fw_sockets.h"' -c "$out/header.c" -o "$out/header-fw.o"

# link_fw TARGET ELF [CFLAGS...]: the test firmware for TARGET (PRE_LIB:
# what comes on the link line before libnopoll.a).
link_fw() {
	local t=$1 elf=$2
	shift 2
	# shellcheck disable=SC2086
	arm-none-eabi-gcc ${CPU[$t]} $CFLAGS "$@" --specs=nano.specs --specs=rdimon.specs -nostartfiles \
		-T "$here/mcu.ld" -Wl,--gc-sections -Wl,-Map="${elf%.elf}.map" \
		-Wl,--wrap=malloc,--wrap=free,--wrap=realloc,--wrap=calloc \
		-o "$elf" "$here/startup.c" "$here/memsock.c" "$here/test.c" ${PRE_LIB:-} "$(lib_for "$t")"
}

# run_fw BOARD ELF LOG SECONDS: 0 only if QEMU exits 0 in time, no line
# says FAIL or MCU FAULT, and the summary line counts passes and no failure.
run_fw() {
	local rc
	set +e
	timeout "$4" qemu-system-arm -M "$1" -nographic -monitor none -serial none \
		-semihosting-config enable=on,target=native -kernel "$2" >"$3" 2>&1
	rc=$?
	set -e
	[ $rc -eq 124 ] && echo "QEMU did not exit in $4 s" >>"$3"
	[ $rc -eq 0 ] && ! grep -q '^FAIL\|MCU FAULT' "$3" &&
		grep -q '^MCU: [1-9][0-9]* passed, 0 failed' "$3"
}

fails=0
checked_failures=0
for t in $targets; do
	elf=$out/test-$t.elf
	link_fw "$t" "$elf"
	board=${BOARD[$t]:-}
	if [ -z "$board" ]; then
		echo "test-mcu: $t: built and linked ($(arm-none-eabi-size "$elf" | awk 'NR==2 {print $1+$2 " B flash, " $2+$3 " B static RAM"}')); no QEMU board for this core: not run"
		continue
	fi
	if [ $checked_failures = 0 ]; then
		# The harness itself: a faulting and a hanging firmware must fail.
		link_fw "$t" "$out/fault-$t.elf" -DMCU_SELFTEST_FAULT
		link_fw "$t" "$out/hang-$t.elf" -DMCU_SELFTEST_HANG
		if run_fw "$board" "$out/fault-$t.elf" "$out/fault-$t.log" 20 ||
			! grep -q "MCU FAULT" "$out/fault-$t.log"; then
			cat "$out/fault-$t.log"; echo "test-mcu: a faulting firmware was not caught" >&2; exit 1
		fi
		if run_fw "$board" "$out/hang-$t.elf" "$out/hang-$t.log" 5 ||
			! grep -q "did not exit" "$out/hang-$t.log"; then
			cat "$out/hang-$t.log"; echo "test-mcu: a hanging firmware was not caught" >&2; exit 1
		fi
		echo "test-mcu: harness check: a fault ($(grep -o 'MCU FAULT: [A-Za-z]*' "$out/fault-$t.log")) and a hang (timeout) both fail the run"
		checked_failures=1
	fi
	echo "test-mcu: $t on QEMU $board"
	if run_fw "$board" "$elf" "$out/test-$t.log" "${MCU_QEMU_SECONDS:-60}"; then
		cat "$out/test-$t.log"
	else
		cat "$out/test-$t.log"
		echo "test-mcu: $t: FAILED" >&2
		fails=$((fails + 1))
	fi
done
[ $fails -eq 0 ] || exit 1

# The link order the README recommends: the C library before libnopoll.a,
# so that the library's __aeabi_mem* entry points (src/nostd.rs) jump to
# newlib's memcpy/memmove/memset rather than compiler_builtins' (the runs
# above link the library first).
for t in $targets; do
	board=${BOARD[$t]:-}
	[ -n "$board" ] || continue
	elf=$out/test-libc-first-$t.elf
	PRE_LIB=-lc_nano link_fw "$t" "$elf"
	# Not grep -q: it stops at the first match and nm, killed by SIGPIPE
	# when its output outgrows the pipe, fails the pipeline (pipefail).
	arm-none-eabi-nm "$elf" | grep ' T memcpy$' >/dev/null ||
		{ echo "test-mcu: $t: the C library first, yet memcpy is not newlib's" >&2; exit 1; }
	if run_fw "$board" "$elf" "$out/test-libc-first-$t.log" "${MCU_QEMU_SECONDS:-60}"; then
		echo "test-mcu: $t on QEMU $board with newlib's memcpy/memmove/memset (C library linked first): $(grep '^MCU: ' "$out/test-libc-first-$t.log" | tail -1)"
	else
		cat "$out/test-libc-first-$t.log"
		echo "test-mcu: $t with the C library linked first: FAILED" >&2
		exit 1
	fi
	break
done

# Pay for what you call (docs/footprint.md): the minimal echo listener of
# tools/footprint/mcu.sh turns on no optional machinery, so none of it may
# be linked. A regression here costs firmware kilobytes silently. (Names
# that survive inlining: each of these was in the map before the gating.)
"$root/tools/footprint/mcu.sh" >/dev/null 2>&1 || { echo "test-mcu: tools/footprint/mcu.sh failed" >&2; exit 1; }
linked=$(arm-none-eabi-nm -C "$root/target/footprint/mcu/echo.elf" |
	grep -E 'miniz_oxide|deflate::Codec|protocol::proxy::parse|keepalive_check|run_keepalive|core::fmt::(write|Formatter)' || true)
if [ -n "$linked" ]; then
	echo "$linked" | head -20
	echo "test-mcu: the echo listener links optional machinery it never turns on (above)" >&2
	exit 1
fi
echo "test-mcu: the echo listener links no deflate, PROXY parser, keepalive or core::fmt ($(sed -n 's/^| bytes | \([0-9,]*\) .*/\1/p' "$root/target/footprint/mcu/share.md") bytes of code+rodata)"
echo "test-mcu: ok"
