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
    # Multi-core builds: instructions of each core's share (they add up to
    # `instructions`); empty on one core.
    core_instructions: list[int] = field(default_factory=list)

    @property
    def critical_instructions(self) -> int:
        """The slowest core's share (the whole layer on one core)."""
        return max(self.core_instructions) if self.core_instructions else self.instructions

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
    cores: int = 1
    barrier_instructions: int = 0   # assumed cost of one barrier (from the Target)

    @property
    def estimate_instructions(self) -> int:
        """N-core estimate: sum over layers of (slowest core's share + one
        barrier). An estimate of executed instructions, not cycles: the
        emulator ran the shares one after the other on one core, and memory
        contention between real cores is not modelled. On one core: the sum
        of the layer rows."""
        barrier = self.barrier_instructions if self.cores > 1 else 0
        return sum(r.critical_instructions + barrier for r in self.layers)

    @property
    def speedup_estimate(self) -> float:
        """Sum of the layer rows (all cores' work) / estimate_instructions."""
        est = self.estimate_instructions
        return sum(r.instructions for r in self.layers) / est if est else float("nan")

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
        if self.cores > 1:
            lines.append(f"{self.cores}-core estimate (slowest core per layer + {self.barrier_instructions} "
                         f"per barrier): {self.estimate_instructions:,} instructions, "
                         f"{self.speedup_estimate:.2f}x the layers' total")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def profile_from_marks(target: str, report: Report, total: int, marks: list[int], cores: int = 1,
                       barrier_instructions: int = 0) -> Profile:
    """Marks come in call order: run start, per layer its begin and then one
    end per core (a single end on one core), run end."""
    n, per = len(report.layers), cores + 1
    if len(marks) != per * n + 2:
        raise BuildError(f"profiling on {target}: expected {per * n + 2} layer markers, "
                         f"the plugin saw {len(marks)}; the firmware and the model disagree")
    rows = []
    for i, r in enumerate(report.layers):
        m = marks[1 + per * i: 1 + per * (i + 1)]
        shares = [m[c + 1] - m[c] for c in range(cores)] if cores > 1 else []
        rows.append(LayerProfile(r.name, r.op, r.macs, m[-1] - m[0], shares))
    return Profile(target, marks[-1] - marks[0], total, rows, cores,
                   barrier_instructions if cores > 1 else 0)
