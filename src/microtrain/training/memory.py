"""Training memory report: the planned peak next to the naive plan (every
tensor its own buffer) and the lower bound, split by category."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


CATEGORIES = ("trainable_weights", "gradients", "optimizer_state", "norm_statistics", "activations", "scratch", "io")


@dataclass
class TrainingReport:
    peak_bytes: int
    naive_bytes: int
    lower_bound_bytes: int
    arena_bytes: int
    breakdown: dict[str, int] = field(default_factory=dict)
    trainable_params: int = 0
    frozen_weight_bytes: int = 0          # const (flash on an MCU)
    micro_batch: int = 1
    batch: int = 1

    def table(self) -> str:
        lines = [f"training memory (micro-batch {self.micro_batch}, batch {self.batch}):",
                 f"  peak RAM (planned)      {self.peak_bytes:>12,} B",
                 f"  lower bound             {self.lower_bound_bytes:>12,} B",
                 f"  naive (no reuse)        {self.naive_bytes:>12,} B",
                 "  at the peak:"]
        for k in CATEGORIES:
            lines.append(f"    {k:<20} {self.breakdown.get(k, 0):>12,} B")
        lines.append(f"  trainable parameters    {self.trainable_params:>12,}")
        lines.append(f"  frozen weights (const)  {self.frozen_weight_bytes:>12,} B")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _category(buffer_tensors: list[str]) -> str:
    t = buffer_tensors[0]
    if t.endswith(".scratch"):
        return "scratch"
    if t.startswith("grad/"):
        return "gradients"
    return "activations"


def training_report(program, plans) -> TrainingReport:
    micro, plan = program.micro, plans.micro
    state_by_cat = {c: 0 for c in CATEGORIES}
    for name, arr in program.state_init.items():
        state_by_cat[program.state_category(name)] += arr.nbytes
    state_bytes = sum(state_by_cat.values())
    io = sum(micro.types[i].nbytes for i in micro.inputs)
    steps = max(len(micro.nodes), 1)
    live = np.zeros(steps, np.int64)
    for b in plan.buffers:
        live[b.start:b.end + 1] += b.size
    peak_step = int(live.argmax()) if plan.buffers else 0
    at_peak = dict(state_by_cat)
    for b in plan.buffers:
        if b.start <= peak_step <= b.end:
            at_peak[_category(b.tensors)] += b.size
    at_peak["io"] += io
    naive_arena = sum(micro.types[t].nbytes for n in micro.nodes for t in n.outputs if t and t not in micro.outputs)
    naive_arena += sum(b.size for b in plan.buffers if b.tensors[0].endswith(".scratch"))
    frozen = sum(v.nbytes for v in micro.constants.values() if v.dtype == np.float32)
    return TrainingReport(
        peak_bytes=plans.arena_bytes + state_bytes + io,
        naive_bytes=naive_arena + state_bytes + io,
        lower_bound_bytes=int(live.max() if plan.buffers else 0) + state_bytes + io,
        arena_bytes=plans.arena_bytes,
        breakdown=at_peak,
        trainable_params=sum(program.state_init[p].size for p in program.trainable),
        frozen_weight_bytes=frozen,
        micro_batch=program.spec.micro_batch, batch=program.spec.batch)
