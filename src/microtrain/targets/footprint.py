"""Memory fit: what a compiled model needs on its target (flash, RAM, stack)
and the compile-time check that it fits, with numbers and advice."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..errors import MicrotrainError
from ..planner import MemoryPlan
from .descriptions import Target
from .toolchain import Section


class TargetFitError(MicrotrainError):
    """The model does not fit the target's memory."""


ADVICE = ("to make it fit: quantize to int8 (4x smaller weights and activations), use a smaller "
          "micro-batch, train LoRA adapters or fewer layers instead of all weights, "
          "or pick a bigger target")


def _kb(n: int) -> str:
    return f"{n / 1024:,.1f} KB"


@dataclass
class Footprint:
    """Bytes the firmware needs on `target`. Flash holds code, const data and
    the .data initializers; RAM holds .data, .bss (arena and I/O buffers are
    in .bss) and the reserved stack. Sizes are of the whole firmware image
    (network, kernels, libc and the semihosting harness)."""
    target: str
    sections: dict[str, int]
    flash_bytes: int
    ram_bytes: int
    flash_capacity: int
    ram_capacity: int
    arena_bytes: int
    weight_bytes: int
    io_bytes: int
    stack_reserved: int
    stack_static: Optional[int] = None      # -fstack-usage estimate (run + deepest kernel frame)
    stack_measured: Optional[int] = None    # painted-stack peak of the last run (incl. main/startup)
    # part -> (flash, RAM) bytes from the linker map: "model" (network.c,
    # weights.c), "kernels" (libmt), "libc" (picolibc, libm, libgcc, crt0),
    # "harness" (semihosting main, I/O buffers). Approximate: alignment padding
    # is not attributed and merged constants are counted before merging.
    by_part: Optional[dict] = None

    @property
    def text(self) -> int:
        return sum(v for k, v in self.sections.items() if k.startswith((".text", ".init")))

    @property
    def rodata(self) -> int:
        return sum(v for k, v in self.sections.items() if k.startswith(".rodata"))

    @property
    def data(self) -> int:
        return sum(v for k, v in self.sections.items() if k.startswith((".data", ".sdata", ".tdata")))

    @property
    def bss(self) -> int:
        return sum(v for k, v in self.sections.items() if k.startswith((".bss", ".sbss", ".tbss")))

    def lines(self) -> list[str]:
        measured = (f"{self.stack_measured:,} B measured peak" if self.stack_measured is not None
                    else "peak measured on first run")
        # picolibc's linker script keeps const data (weights) inside .text.
        rodata = f"  .rodata {self.rodata:,} B" if self.rodata else " (code and const data)"
        static = f"{self.stack_static:,} B static estimate" if self.stack_static is not None else "no static estimate"
        return [
            f"target {self.target}: flash {self.flash_bytes:,} / {self.flash_capacity:,} B "
            f"({100 * self.flash_bytes / self.flash_capacity:.1f}%), RAM {self.ram_bytes:,} / "
            f"{self.ram_capacity:,} B ({100 * self.ram_bytes / self.ram_capacity:.1f}%)",
            f"  .text {self.text:,} B{rodata}  .data {self.data:,} B  .bss {self.bss:,} B "
            f"(weights {self.weight_bytes:,} B const in flash; arena {self.arena_bytes:,} B and I/O "
            f"{self.io_bytes:,} B in .bss)",
            f"  stack: {self.stack_reserved:,} B reserved; {static}; {measured}",
        ] + ([("  by part (flash/RAM B): " + ", ".join(
            f"{k} {f:,}/{r:,}" for k, (f, r) in self.by_part.items()))] if self.by_part else [])

    def __str__(self) -> str:
        return "\n".join(self.lines())


def precheck(target: Target, plan: MemoryPlan, weight_bytes: int, io_bytes: int) -> None:
    """Before building: the planner's numbers alone already exceed the target."""
    flash, ram = target.flash, target.ram
    if weight_bytes > flash.size:
        raise TargetFitError(
            f"model does not fit target {target.name}: weights need {weight_bytes:,} B "
            f"({_kb(weight_bytes)}) of {flash.name} but it has {flash.size:,} B ({_kb(flash.size)}); {ADVICE}")
    need = plan.arena_bytes + io_bytes + target.stack_bytes
    if need > ram.size:
        raise TargetFitError(
            f"model does not fit target {target.name}: activations need {need:,} B ({_kb(need)}) of "
            f"{ram.name} (arena {plan.arena_bytes:,} B + I/O buffers {io_bytes:,} B + stack "
            f"{target.stack_bytes:,} B; planner lower bound {plan.lower_bound_bytes:,} B) but it has "
            f"{ram.size:,} B ({_kb(ram.size)}); {ADVICE}")


def measure(target: Target, sections: list[Section], plan: MemoryPlan, weight_bytes: int,
            io_bytes: int, stack_static: Optional[int], by_part: Optional[dict] = None) -> Footprint:
    """Flash/RAM use of a linked firmware, by where each section lives."""
    emu = target.emulator
    in_flash = lambda s: emu.flash.origin <= s.address < emu.flash.origin + emu.flash.size  # noqa: E731
    in_ram = lambda s: emu.ram.origin <= s.address < emu.ram.origin + emu.ram.size  # noqa: E731
    sizes: dict[str, int] = {}
    flash = ram = 0
    for s in sections:
        if s.name in (".stack", ".tbss"):
            continue    # the stack reservation is added below; .tbss is laid out by .tbss_space
        sizes[s.name] = sizes.get(s.name, 0) + s.size
        if in_flash(s):
            flash += s.size
        elif in_ram(s):
            ram += s.size
            if "W" in s.flags and not s.name.startswith((".bss", ".sbss", ".tbss", ".noinit")):
                flash += s.size             # initialized data: its image is stored in flash too
    return Footprint(target.name, sizes, flash, ram + target.stack_bytes, target.flash.size,
                     target.ram.size, plan.arena_bytes, weight_bytes, io_bytes,
                     target.stack_bytes, stack_static, by_part=by_part)


def check_fit(fp: Footprint, target: Target) -> None:
    """After linking: the firmware's real sizes against the target's memory."""
    problems = []
    if fp.flash_bytes > fp.flash_capacity:
        problems.append(f"{target.flash.name} needs {fp.flash_bytes:,} B ({_kb(fp.flash_bytes)}) of "
                        f"{fp.flash_capacity:,} B (.text {fp.text:,} + .rodata {fp.rodata:,} "
                        f"+ .data {fp.data:,}; weights {fp.weight_bytes:,})")
    if fp.ram_bytes > fp.ram_capacity:
        problems.append(f"{target.ram.name} needs {fp.ram_bytes:,} B ({_kb(fp.ram_bytes)}) of "
                        f"{fp.ram_capacity:,} B (.data {fp.data:,} + .bss {fp.bss:,} incl. arena "
                        f"{fp.arena_bytes:,} and I/O {fp.io_bytes:,} + stack {fp.stack_reserved:,})")
    if problems:
        raise TargetFitError(f"model does not fit target {target.name}: " + "; ".join(problems) + f"; {ADVICE}")
