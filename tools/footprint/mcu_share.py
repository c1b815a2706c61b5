#!/usr/bin/env python3
"""The library's bytes per output section of a firmware link map.

    mcu_share.py MAPFILE [ARCHIVE-NAME]     (default libnopoll.a)

Sums the input sections that come from ARCHIVE-NAME members, grouped by
the output section they landed in (GNU ld map, -Wl,-Map): text = .text
(code and read-only data, as tests/mcu/mcu.ld places .rodata there) and
.ARM.ex*, data = .data, bss = .bss. Prints one Markdown table."""
import re
import sys

mapfile = sys.argv[1]
lib = sys.argv[2] if len(sys.argv) > 2 else "libnopoll.a"
out_re = re.compile(r"^(\.[A-Za-z0-9_.]+)")
in_re = re.compile(r"^\s+(?:\S+\s+)?0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
sums = {}
out = None
pending = False
with open(mapfile, errors="replace") as f:
    lines = f.read().splitlines()
start = lines.index("Linker script and memory map") + 1
for line in lines[start:]:
    m = out_re.match(line)
    if m:
        out = m.group(1)
        continue
    m = in_re.match(line)
    if m and out and lib + "(" in m.group(3):
        addr, size = int(m.group(1), 16), int(m.group(2), 16)
        if addr != 0 or out in (".bss", ".data"):
            sums[out] = sums.get(out, 0) + size
kind = {".text": "text", ".ARM.exidx": "text", ".ARM.extab": "text", ".data": "data", ".bss": "bss"}
tot = {"text": 0, "data": 0, "bss": 0}
for sec, n in sums.items():
    if sec in kind:
        tot[kind[sec]] += n
print("| library (%s) | code+rodata (text) | data | bss |" % lib)
print("|---|---:|---:|---:|")
print("| bytes | %s | %s | %s |" % tuple(format(tot[k], ",") for k in ("text", "data", "bss")))
