#!/usr/bin/env python3
"""Who owns which bytes of a statically linked program.

    mapshare.py PROGRAM MAPFILE [--lib libnopoll.a] [--top 30] [--json OUT]

Reads the GNU ld map file (-Wl,-Map=MAPFILE) of PROGRAM and attributes
every input section kept in the output (after --gc-sections) to the file it
came from: an archive member (`.../libnopoll.a(member.o)`) or an object.
Contributors are grouped as:

  nopoll   members of the library archive (--lib): our crate (after LTO,
           with the generic code of std/core/alloc it instantiates), the
           precompiled std/core/alloc/compiler_builtins objects the Rust
           staticlib bundles, and the C shim; all of it is the library's
           share, since a C program linking -lnopoll gets all of it
  glibc    libc.a, libpthread.a, libm*.a, libdl.a, libmvec.a
  libgcc   libgcc.a, libgcc_eh.a
  crt      crt1.o, crti.o, crtn.o, crtbegin*.o, crtend*.o
  program  every other object: the program's own code
  fill     alignment padding between input sections (*fill*)
  linker   sections the linker makes (PLT, GOT, ...) with no input file

Output sections are classed the way Berkeley `size` counts them (binutils
size.c): allocated and (code or read-only) -> text; allocated, writable,
with contents -> data; allocated without contents (NOBITS) -> bss. The
flags come from `readelf -SW PROGRAM`.

Tools: $READELF, $SIZE, $NM (default readelf, size, nm; arm-none-eabi-*
for firmware). Per-symbol breakdown: `nm -S` of PROGRAM, restricted to symbols that lie
inside an input section from the library archive.
"""
import argparse
import json
import os
import re
import subprocess
import sys
from collections import defaultdict

HEX = r"0x([0-9a-fA-F]+)"
OUT_SEC = re.compile(r"^(\S+)(?:\s+" + HEX + r"\s+" + HEX + r")?\s*$")
OUT_SEC_CONT = re.compile(r"^\s+" + HEX + r"\s+" + HEX + r"\s*$")
IN_SEC = re.compile(r"^ (\S+)(?:\s+" + HEX + r"\s+" + HEX + r"(?:\s+(.*))?)?\s*$")
IN_SEC_CONT = re.compile(r"^\s{2,}" + HEX + r"\s+" + HEX + r"(?:\s+(.*))?\s*$")
FILL = re.compile(r"^ \*fill\*\s+" + HEX + r"\s+" + HEX)


def parse_map(path):
    """Yields (output_section, input_section, addr, size, file)."""
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    try:
        start = lines.index("Linker script and memory map") + 1
    except ValueError:
        sys.exit(f"{path}: not a GNU ld map file")
    out = None
    pending_in = None  # input section name whose addr/size is on the next line
    pending_out = None
    for line in lines[start:]:
        if not line.strip():
            continue
        if line.startswith("OUTPUT("):
            break
        if pending_out is not None:
            m = OUT_SEC_CONT.match(line)
            pending_out = None
            if m:
                continue
        if pending_in is not None:
            name, pending_in = pending_in, None
            m = IN_SEC_CONT.match(line)
            if m and m.group(3) and not m.group(3).startswith("0x"):
                if out is not None:
                    yield out, name, int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip()
                continue
        if line[0] not in " \t":
            if line.startswith(("LOAD ", "START GROUP", "END GROUP")):
                continue
            m = OUT_SEC.match(line)
            if m:
                out = m.group(1)
                if out == "/DISCARD/":
                    out = None
                if m.group(2) is None:
                    pending_out = out
            continue
        m = FILL.match(line)
        if m:
            if out is not None:
                yield out, "*fill*", int(m.group(1), 16), int(m.group(2), 16), "*fill*"
            continue
        if line.startswith(" *") or not line.startswith(" ") or line.startswith("  "):
            continue  # patterns, symbol lines, assignments
        m = IN_SEC.match(line)
        if not m:
            continue
        if m.group(2) is None:
            pending_in = m.group(1)
            continue
        if out is not None:
            yield out, m.group(1), int(m.group(2), 16), int(m.group(3), 16), (m.group(4) or "").strip()


def classify(file, lib):
    if file == "*fill*":
        return "fill", ""
    if not file or file == "linker stubs":
        return "linker", ""
    m = re.match(r"^(.*)\((.*)\)$", file)
    if m:
        archive, member = m.group(1), m.group(2)
        base = archive.rsplit("/", 1)[-1]
        if base == lib:
            return "nopoll", member
        if re.match(r"^lib(c|pthread|m|m-[0-9.]+|dl|mvec|rt|util|resolv)\.a$", base):
            return "glibc", base
        if base.startswith("libgcc"):
            return "libgcc", base
        return "other", base
    base = file.rsplit("/", 1)[-1]
    if re.match(r"^crt(1|i|n|begin\w*|end\w*)\.o$", base):
        return "crt", base
    return "program", base


def member_group(member):
    """A name for an archive member of the Rust staticlib. With fat LTO our
    crate, its dependencies and the parts of std/core/alloc it uses are one
    object; precompiled std objects left out of LTO keep their crate name."""
    if member.endswith("shim.o"):
        return "C shim (src/ffi/shim.c)"
    m = re.match(r"^([A-Za-z0-9_]+)-[0-9a-f]+\.", member) or re.match(r"^([A-Za-z0-9_]+)\.", member)
    crate = m.group(1) if m else member
    if crate == "nopoll":
        return "nopoll object (LTO: crate + deps + std/core/alloc used)"
    return crate + " (precompiled)"


BACKTRACE = re.compile(r"gimli|addr2line|rustc_demangle|miniz_oxide|adler|backtrace|object::read|symbolize")


def kind(name):
    """A coarser split of the library's code: ours, std's backtrace printer,
    maps, formatting, the two hashing/encoding dependencies, the rest."""
    if BACKTRACE.search(name):
        return "std backtrace printer (panic hook)"
    if "btree" in name:
        return "BTreeMap (no-std `Map`)"
    if re.search(r"hashbrown|HashMap", name):
        return "HashMap (std `Map`)"
    if re.search(r"core::fmt|fmt::Display|fmt::Debug|fmt::Write|Formatter|alloc::fmt", name):
        return "formatting (core::fmt and Display impls)"
    if re.search(r"^sha1|sha1::|digest|cpufeatures", name):
        return "sha1 (+ digest, cpufeatures)"
    if "base64" in name:
        return "base64"
    if name.startswith(("nopoll_", "__nopoll", "<nopoll")) or name.startswith("nopoll::"):
        return "nopoll (our crate, C entry points included)"
    return "other std/core/alloc"


def category(name):
    """What a demangled symbol belongs to, roughly: its crate (two levels for
    ours); std's backtrace printer (reached from the default panic hook) apart."""
    if BACKTRACE.search(name):
        return "std: backtrace symbolization (panic hook)"
    if "::" not in name:
        if name.startswith(("nopoll_", "__nopoll")):
            return "nopoll: exported C functions (ffi, with what is inlined)"
        return "C/other symbols (shim, compiler_builtins, ...)"
    paths = re.findall(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+", name)
    # The first path that names a crate module (`core::fmt`, `nopoll::runtime`), skipping
    # generic parameters and primitive types (`<D as core::fmt::Debug>`, `<u8 as ...>`).
    path = paths[0] if paths else name
    head = path.split("::")[0]
    if head == "nopoll":
        return "::".join(path.split("::")[:2])
    return head


def sections(program):
    """name -> (alloc, code_or_readonly, has_contents, size) from `readelf -SW`."""
    out = subprocess.run([os.environ.get("READELF", "readelf"), "-SW", program], capture_output=True, text=True, check=True).stdout
    secs = {}
    for line in out.splitlines():
        m = re.match(r"^\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([A-Za-z]*)\s+\d", line)
        if not m:
            continue
        name, typ, size, flg = m.groups()
        alloc = "A" in flg
        text = "X" in flg or "W" not in flg
        contents = typ != "NOBITS"
        secs[name] = (alloc, text, contents, int(size, 16))
    return secs


def berkeley(flags, out):
    f = flags.get(out)
    if f is None or not f[0]:
        return None
    if f[1]:
        return "text"
    return "data" if f[2] else "bss"


def size_of(program):
    out = subprocess.run([os.environ.get("SIZE", "size"), program], capture_output=True, text=True, check=True).stdout.splitlines()
    t, d, b = out[1].split()[:3]
    return int(t), int(d), int(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("program")
    ap.add_argument("mapfile")
    ap.add_argument("--lib", default="libnopoll.a")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--json")
    ap.add_argument("--title", default="")
    args = ap.parse_args()

    flags = sections(args.program)
    # owner -> output section -> bytes
    by_owner = defaultdict(lambda: defaultdict(int))
    by_member = defaultdict(lambda: defaultdict(int))
    lib_ranges = []  # (start, end, output section) of library input sections
    for out, name, addr, size, file in parse_map(args.mapfile):
        if size == 0 or berkeley(flags, out) is None:
            continue
        owner, member = classify(file, args.lib)
        by_owner[owner][out] += size
        if owner == "nopoll":
            by_member[member_group(member)][out] += size
            lib_ranges.append((addr, addr + size, out))

    def cls_totals(secs):
        t = defaultdict(int)
        for out, n in secs.items():
            t[berkeley(flags, out)] += n
        return t

    outs = sorted({o for d in by_owner.values() for o in d}, key=lambda o: (["text", "data", "bss"].index(berkeley(flags, o)), o))
    p = print
    if args.title:
        p(f"### {args.title}\n")
    st, sd, sb = size_of(args.program)
    p(f"Whole program (`size`): text {st:,}, data {sd:,}, bss {sb:,} bytes.\n")
    p("Bytes per output section and contributor; the last three rows are what")
    p("`size` adds up (text = code and read-only sections, data = writable with")
    p("contents, bss = no contents):\n")
    owners = [o for o in ["nopoll", "program", "glibc", "libgcc", "crt", "other", "linker", "fill"] if o in by_owner]
    p("| section | `size` counts it as | " + " | ".join(owners) + " |")
    p("|---|---|" + "---:|" * len(owners))
    for out in outs:
        p(f"| `{out}` | {berkeley(flags, out)} | " + " | ".join(f"{by_owner[o].get(out, 0):,}" for o in owners) + " |")
    for cls in ["text", "data", "bss"]:
        p(f"| **{cls}** (`size`) | | " + " | ".join(f"**{cls_totals(by_owner[o])[cls]:,}**" for o in owners) + " |")
    p("")
    real = {name: f[3] for name, f in flags.items()}
    for out in outs:
        mapped = sum(by_owner[o].get(out, 0) for o in owners)
        if mapped != real.get(out, 0):
            p(f"Note: `{out}` is {real.get(out, 0):,} bytes in the program, {mapped:,} in the map: the")
            p("map gives mergeable string sections their size before the linker merged")
            p(f"duplicate strings, so the columns above overstate `{out}` by {mapped - real.get(out, 0):,} bytes in all.")
            p("")

    lib = by_owner.get("nopoll", {})
    lt = cls_totals(lib)
    core = {k: lib.get(k, 0) for k in [".text", ".rodata", ".data", ".bss"]}
    p("Library share (input sections from `%s`): `.text` %s, `.rodata` %s, `.data` %s, `.bss` %s bytes;" %
      (args.lib, f"{core['.text']:,}", f"{core['.rodata']:,}", f"{core['.data']:,}", f"{core['.bss']:,}"))
    p(f"as `size` counts it: text {lt['text']:,}, data {lt['data']:,}, bss {lt['bss']:,}.\n")

    p("Library share by archive member (`.text` / all of `size`'s text / data / bss):\n")
    p("| member | .text | text | data | bss |")
    p("|---|---:|---:|---:|---:|")
    for grp, secs in sorted(by_member.items(), key=lambda kv: -cls_totals(kv[1])["text"]):
        t = cls_totals(secs)
        p(f"| {grp} | {secs.get('.text', 0):,} | {t['text']:,} | {t['data']:,} | {t['bss']:,} |")
    p("")

    # Symbols inside library input sections.
    lib_ranges.sort()
    starts = [r[0] for r in lib_ranges]
    import bisect
    nm = subprocess.run([os.environ.get("NM", "nm"), "-S", "-C", "--defined-only", args.program], capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in nm.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        addr, size, typ, name = int(parts[0], 16), int(parts[1], 16), parts[2], parts[3]
        if size == 0:
            continue
        i = bisect.bisect_right(starts, addr) - 1
        if i < 0 or not (lib_ranges[i][0] <= addr < lib_ranges[i][1]):
            continue
        key = (addr, size)
        syms.setdefault(key, (typ, name, lib_ranges[i][2]))
    top = sorted(syms.items(), key=lambda kv: -kv[0][1])
    p(f"Top {args.top} library symbols by size (`nm -S -C` of the program, inside library sections):\n")
    p("| bytes | section | symbol |")
    p("|---:|---|---|")
    for (addr, size), (typ, name, out) in top[: args.top]:
        name = (name if len(name) <= 110 else name[:107] + "...").replace("|", "\\|")
        p(f"| {size:,} | `{out}` | `{name}` |")
    p("")

    # Aggregate text symbols by what they belong to.
    agg = defaultdict(int)
    kinds = defaultdict(int)
    for (addr, size), (typ, name, out) in syms.items():
        if out == ".text":
            agg[category(name)] += size
            kinds[kind(name)] += size
    p("Library `.text` by kind (symbols sized by `nm`; the rest of `.text` is padding):\n")
    p("| kind | .text bytes |")
    p("|---|---:|")
    for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        p(f"| {k} | {n:,} |")
    p("")
    p("Library `.text` by origin (demangled symbol path; for `<T as Trait>::f` the path of T;")
    p("anything naming gimli/addr2line/rustc_demangle/miniz_oxide/backtrace counted as the")
    p("backtrace printer that std's default panic hook pulls in):\n")
    p("| origin | .text bytes |")
    p("|---|---:|")
    for cat, n in sorted(agg.items(), key=lambda kv: -kv[1])[:20]:
        p(f"| `{cat}` | {n:,} |")
    p("")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "size": {"text": st, "data": sd, "bss": sb},
                "owners": {o: {"sections": dict(by_owner[o]), **cls_totals(by_owner[o])} for o in owners},
                "lib": {**core, **{"size_" + k: v for k, v in lt.items()}},
                "top": [{"bytes": s, "section": v[2], "symbol": v[1]} for (a, s), v in top[: args.top]],
                "origins": dict(agg),
                "kinds": dict(kinds),
            }, f, indent=1)


if __name__ == "__main__":
    main()
