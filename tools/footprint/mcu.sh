#!/usr/bin/env bash
# Footprint on a Cortex-M3 (issue 21): the library's share of the minimal
# echo listener (echo.c) linked for thumbv7m-none-eabi with -Os,
# --gc-sections and newlib-nano without syscalls (nosys), with the
# in-memory socket table of tests/mcu as its network stack (the program's
# share, like a firmware's lwIP port). The library is the no_std, no-log,
# min-size build that `make test-mcu` tests. newlib comes before the
# library on the link line so that its memcpy/memset are used, not the weak
# ones of compiler_builtins bundled in libnopoll.a (README, "Firmware").
#
#   tools/footprint/mcu.sh     report in target/footprint/mcu/{share,size}.md
#
# Environment: MCU_TARGET_DIR (cargo target dir, default target/mcu, the
# one make test-mcu uses), RUSTFLAGS (to try codegen levers; it replaces
# the bare-metal flags of .cargo/config.toml, README "Firmware").
#
# Needs what make test-mcu needs (README, "Firmware").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/tools/footprint
mcu=$root/tests/mcu
out=$root/target/footprint/mcu
mkdir -p "$out"
export PATH=/usr/bin:$PATH RUSTC_BOOTSTRAP=1
t=thumbv7m-none-eabi
tdir=${MCU_TARGET_DIR:-target/mcu}
lib=$root/$tdir/$t/min-size/libnopoll.a

(cd "$root" && cargo rustc --quiet --lib --crate-type staticlib --profile min-size \
	--no-default-features --features no-log --target $t \
	-Zbuild-std=core,alloc --target-dir "$tdir")

CPU="-mcpu=cortex-m3 -mthumb"
# shellcheck disable=SC2086
arm-none-eabi-gcc $CPU -Os -ffunction-sections -fdata-sections -Wall -I"$root/include" -I"$mcu" \
	-DFOOTPRINT_SOCKET_OPS -DMCU_NOSYS -Dmemsock_ops=footprint_socket_ops \
	--specs=nano.specs --specs=nosys.specs -nostartfiles -T "$mcu/mcu.ld" \
	-Wl,--gc-sections -Wl,-Map="$out/echo.map" -o "$out/echo.elf" \
	"$mcu/startup.c" "$mcu/memsock.c" "$here/echo.c" -lc_nano "$lib"
READELF=arm-none-eabi-readelf SIZE=arm-none-eabi-size NM=arm-none-eabi-nm \
	python3 "$here/mapshare.py" "$out/echo.elf" "$out/echo.map" --top 25 \
	--json "$out/size.json" --title "Cortex-M3 echo listener" >"$out/size.md"
{
	echo "- $(rustc --version) (Debian rustc-web), -Zbuild-std=core,alloc, profile min-size, features no-log"
	echo "- $(arm-none-eabi-gcc --version | head -1), newlib-nano + nosys, -Os --gc-sections"
	echo "- commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (with local changes)')"
} >"$out/env.md"
python3 "$here/mcu_share.py" "$out/echo.map" >"$out/share.md"
cat "$out/env.md" "$out/share.md" "$out/size.md"
