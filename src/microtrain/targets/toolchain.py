"""Cross-compiling a generated C project into firmware for an emulated target,
and reading back what the firmware needs: section sizes and static stack."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..build import _run, runtime_library
from ..codegen.emit import RUNTIME_DIR
from ..errors import BuildError
from .descriptions import APT_PACKAGES, Target
from .harness import HOOKS_H, linker_script

INSTALL_HINT = f"install the cross toolchains and QEMU: apt-get install -y --no-install-recommends {APT_PACKAGES}"


def require_tool(name: str, target: Target) -> str:
    """Absolute path of a toolchain/emulator binary, or a clear BuildError."""
    path = shutil.which(name)
    if path is None:
        raise BuildError(f"target '{target.name}' needs '{name}', which is not installed; {INSTALL_HINT}")
    return path


@dataclass
class Firmware:
    elf: Path
    target: Target
    build_dir: Path
    library: Path           # libmt.a the firmware was linked with (its *.su are beside it)
    sources: tuple[Path, ...] = ()   # the project's C files (not the harness main)


def target_library(target: Target) -> Path:
    """The kernel library cross-compiled for `target` (cached like the host one)."""
    cc = require_tool(target.cc, target)
    ar = require_tool(target.tool_prefix + "ar", target)
    return runtime_library(cc, [*target.all_cflags, "-fstack-usage"], ar)


def build_firmware(project: Path, target: Target, prefix: str, main_c: str, *,
                   name: str = "firmware", dump_layers: bool = False,
                   sources: tuple[str, ...] = ("network.c", "weights.c"),
                   hooked: tuple[str, ...] = ("network.c",)) -> Firmware:
    """Compile the project's `sources` + the harness `main_c` for `target` and
    link them with the cached kernel library; the `hooked` sources get the
    layer hooks (mt_target_hooks.h) force-included. Output in
    project/build-<target>/. A training step passes its own sources and main."""
    lib = target_library(target)
    cc = require_tool(target.cc, target)
    project = Path(project).resolve()      # the emulator runs in a scratch directory
    out = project / f"build-{target.name}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mt_target_hooks.h").write_text(HOOKS_H)
    (out / "mt_target_main.c").write_text(main_c)
    (out / "mt_target.ld").write_text(linker_script(target))
    elf = out / f"{name}.elf"
    defines = ["-DMT_TARGET_DUMP"] if dump_layers else []
    cflags = [*target.all_cflags, *defines, "-I", str(RUNTIME_DIR), "-I", str(project), "-I", str(out)]
    objs = []
    units = [(project / f, f in hooked) for f in sources] + [(out / "mt_target_main.c", False)]
    for src, hooks in units:
        obj = out / f"{name}-{src.stem}.o"
        extra = ["-include", "mt_target_hooks.h"] if hooks else []
        _run([cc, *cflags, *extra, "-fstack-usage", "-c", str(src), "-o", str(obj)],
             f"{src.name} for target {target.name}", missing_hint=INSTALL_HINT)
        objs.append(str(obj))
    _run([cc, *target.all_cflags, "-T", str(out / "mt_target.ld"), f"-Wl,-Map={out / name}.map",
          *objs, str(lib), "-lm", "-o", str(elf)], f"firmware for target {target.name}",
         missing_hint=INSTALL_HINT)
    return Firmware(elf, target, out, lib, tuple(src for src, _ in units[:-1]))


@dataclass(frozen=True)
class Section:
    name: str
    address: int
    size: int
    flags: str              # readelf flags: A = allocated, W = writable, X = code


def read_sections(fw: Firmware) -> list[Section]:
    """Allocated sections of the ELF (readelf -S), e.g. .text, .rodata, .data, .bss."""
    readelf = require_tool(fw.target.tool_prefix + "readelf", fw.target)
    proc = subprocess.run([readelf, "-S", "-W", str(fw.elf)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise BuildError(f"reading sections of {fw.elf} failed: {proc.stderr.strip()[:200]}")
    sections = []
    # "  [ 1] .text   PROGBITS   00000040 000040 0012a4 00  AX  0   0  4"
    row = re.compile(r"^\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+(\S*)\s+\d")
    for line in proc.stdout.splitlines():
        m = row.match(line)
        if m and "A" in m.group(4):
            sections.append(Section(m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4)))
    if not sections:
        raise BuildError(f"no allocated sections found in {fw.elf}")
    return sections


def symbol_address(fw: Firmware, symbol: str) -> int:
    """Address of a function's first instruction (Thumb bit cleared)."""
    nm = require_tool(fw.target.tool_prefix + "nm", fw.target)
    proc = subprocess.run([nm, str(fw.elf)], capture_output=True, text=True, timeout=60)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16) & ~1
    raise BuildError(f"symbol '{symbol}' not found in {fw.elf}")


def read_stack_usage(paths: list[Path]) -> dict[str, tuple[int, str]]:
    """function -> (bytes, qualifier) from GCC's -fstack-usage files
    ("file.c:12:6:mt_relu_f32\t16\tstatic")."""
    usage: dict[str, tuple[int, str]] = {}
    for p in paths:
        if not p.exists():
            continue
        for line in p.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1].isdigit():
                usage[parts[0].rsplit(":", 1)[-1]] = (int(parts[1]), parts[2])
    return usage


def static_stack_estimate(fw: Firmware, prefix: str) -> Optional[int]:
    """Frame of <prefix>_run plus the deepest frame among the kernels it calls
    (libc/libm frames below them are not included), from -fstack-usage."""
    name = fw.elf.stem
    usage = read_stack_usage([*(fw.build_dir / f"{name}-{src.stem}.su" for src in fw.sources),
                              *sorted(fw.library.parent.glob("*.su"))])
    run = usage.get(f"{prefix}_run")
    if run is None:
        return None
    called = set()
    for src in fw.sources:
        called |= set(re.findall(r"\b(mt_\w+)\s*\(", src.read_text()))
    deepest = max((usage[f][0] for f in called if f in usage), default=0)
    return run[0] + deepest


# Where each linked byte comes from, for the footprint's breakdown.
PARTS = ("model", "kernels", "libc", "harness")
_FLASH_OUT = (".init", ".text", ".rodata", ".srodata")
_DATA_OUT = (".data", ".sdata", ".tdata")
_RAM_OUT = (".bss", ".sbss", ".tbss")


def _part_namer(fw: Firmware):
    """path in the linker map -> part; the file names are worked out once (a
    map lists thousands of input sections)."""
    model = {f"{fw.elf.stem}-{src.stem}.o" for src in fw.sources}
    harness = f"{fw.elf.stem}-mt_target_main.o"

    def part_of(path: str) -> str:
        name = os.path.basename(path.split("(")[0])
        if name in model:
            return "model"              # e.g. network.c (wiring, arena) and weights.c
        if name == harness:
            return "harness"            # I/O buffers, semihosting main, markers
        if name == "libmt.a":
            return "kernels"
        return "libc"                   # picolibc, libm, libgcc (soft-float), crt0
    return part_of


def bytes_by_part(fw: Firmware) -> dict[str, tuple[int, int]]:
    """part -> (flash bytes, RAM bytes) from the linker map: which input
    sections of which file ended up in which output section."""
    text = (fw.build_dir / f"{fw.elf.stem}.map").read_text(errors="replace")
    text = text[text.find("Linker script and memory map"):]
    totals = {p: [0, 0] for p in PARTS}
    part_of = _part_namer(fw)
    out_section, pending = None, None
    one_line = re.compile(r"^ (\.\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")
    continued = re.compile(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")
    for line in text.splitlines():
        if line.startswith(".") or (line and not line[0].isspace()):
            out_section, pending = line.split()[0], None
            continue
        m = one_line.match(line)
        size, path = (m.group(2), m.group(3)) if m else (None, None)
        if m is None and pending:
            c = continued.match(line)
            if c:
                size, path = c.group(1), c.group(2)
        pending = line.strip() if re.match(r"^ \.\S+$", line) else None
        if size is None or out_section is None or "0x" in path:
            continue
        part, n = part_of(path), int(size, 16)
        if out_section.startswith(_FLASH_OUT):
            totals[part][0] += n
        elif out_section.startswith(_DATA_OUT):
            totals[part][0] += n
            totals[part][1] += n
        elif out_section.startswith(_RAM_OUT):
            totals[part][1] += n
    return {p: (f, r) for p, (f, r) in totals.items()}
