"""Instruction-count profiles. These are executed *instructions* counted by
QEMU, not cycles: the emulator models no pipeline, caches or wait states."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import BuildError
from ..report import Report


@dataclass
class LayerProfile:
    name: str
    op: str
    macs: int
    instructions: int

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else float("nan")


@dataclass
class Profile:
    """`instructions`: executed inside the network's run function (all layers,
    plus the layer-boundary marker calls); `program_instructions`: the whole
    firmware run (startup, semihosting file I/O, exit); `layers`: per layer."""
    target: str
    instructions: int
    program_instructions: int
    layers: list[LayerProfile] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def instructions_per_mac(self) -> float:
        return self.instructions / self.macs if self.macs else float("nan")

    def table(self) -> str:
        lines = [f"instructions (not cycles) on {self.target}",
                 f"{'layer':<28} {'op':<18} {'MACs':>12} {'instructions':>14} {'instr/MAC':>10}"]
        for r in self.layers:
            ipm = f"{r.instructions_per_mac:.2f}" if r.macs else "-"
            lines.append(f"{r.name[:28]:<28} {r.op[:18]:<18} {r.macs:>12,} {r.instructions:>14,} {ipm:>10}")
        ipm = f"{self.instructions_per_mac:.2f}" if self.macs else "-"
        lines.append(f"{'network total':<47} {self.macs:>12,} {self.instructions:>14,} {ipm:>10}")
        lines.append(f"whole program (startup, file I/O, exit): {self.program_instructions:,} instructions")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def profile_from_marks(target: str, report: Report, total: int, marks: list[int]) -> Profile:
    """Marks come in call order: run start, (begin, end) per layer, run end."""
    n = len(report.layers)
    if len(marks) != 2 * n + 2:
        raise BuildError(f"profiling on {target}: expected {2 * n + 2} layer markers, "
                         f"the plugin saw {len(marks)}; the firmware and the model disagree")
    rows = [LayerProfile(r.name, r.op, r.macs, marks[2 + 2 * i] - marks[1 + 2 * i])
            for i, r in enumerate(report.layers)]
    return Profile(target, marks[-1] - marks[0], total, rows)
