"""The "no float in the integer inference code" check: the functions reachable
from the network's entry point in a firmware ELF (call graph from the
disassembly), and which of them are floating-point routines (libgcc
soft-float helpers on an FPU-less core, or any function using FPU
instructions)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

# libgcc / compiler-rt soft-float entry points: __addsf3, __muldf3, __floatsisf,
# __fixdfsi, __extendsfdf2, __truncdfsf2, __eqsf2, __unordsf2 ...
SOFT_FLOAT = re.compile(r"^__(?:[a-z]+[sdtx]f[0-9]?|float\w+|fix\w+|extend\w+|trunc\w+|aeabi_[fd]\w+)$")
# RISC-V F/D extension instructions (f-registers) and Arm VFP (v*.f32/f64).
FPU_INSN = re.compile(r"\s(f[a-z]+\.[sd]|fl[wd]|fs[wd]|v[a-z]+\.f(?:32|64))\s")

_FUNC = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_CALL = re.compile(r"<([A-Za-z_.$][\w.$]*?)(?:\+0x[0-9a-f]+)?>")


def call_graph(elf: Path, objdump: str) -> tuple[dict[str, set[str]], dict[str, bool]]:
    """function -> functions it references; function -> uses FPU instructions."""
    text = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    calls: dict[str, set[str]] = {}
    fpu: dict[str, bool] = {}
    current = None
    for line in text.splitlines():
        m = _FUNC.match(line.strip())
        if m:
            current = m.group(1)
            calls.setdefault(current, set())
            fpu.setdefault(current, False)
            continue
        if current is None or "\t" not in line:
            continue
        for target in _CALL.findall(line):
            if target != current:
                calls[current].add(target)
        if FPU_INSN.search(line + " "):
            fpu[current] = True
    return calls, fpu


def float_functions_reachable(elf: Path, objdump: str, entry: str) -> list[str]:
    """Soft-float helpers / FPU-using functions reachable from `entry`."""
    calls, fpu = call_graph(elf, objdump)
    if entry not in calls:
        raise ValueError(f"{entry} not found in {elf}")
    seen, todo = set(), [entry]
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo.extend(t for t in calls.get(f, ()) if t in calls)
    return sorted(f for f in seen if SOFT_FLOAT.match(f) or fpu.get(f))
