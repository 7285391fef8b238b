"""What the training step costs on a device: RAM (peak and breakdown, from
`trainer.report`), the arena's occupancy over the step's schedule (from the
planner's plan: buffer sizes and live ranges), and instructions per training
sample on the emulated MCU targets (`CompiledTrainer.profile`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..targets import TargetFitError
from ..timeline import live_bytes_by
from ..training.memory import CATEGORIES, _category

ARENA_CATEGORIES = ("activations", "gradients", "scratch")


@dataclass
class Timeline:
    """Bytes alive at each step of the micro-batch program (one step = one node)."""
    arena: dict            # category -> int64[steps]
    state: dict            # category -> bytes, constant over the step (static arrays)
    io_bytes: int
    arena_bytes: int       # the planned arena (>= max of the arena sum)
    backward_start: int    # index of the loss node: forward before, backward after

    @property
    def total(self) -> np.ndarray:
        return sum(self.arena.values()) + sum(self.state.values()) + self.io_bytes


def memory_timeline(trainer) -> Timeline:
    program, plan = trainer.program, trainer.plans.micro
    steps = max(len(program.micro.nodes), 1)
    live = live_bytes_by(plan, steps, lambda b: _category(b.tensors))
    arena = {c: np.asarray(live.pop(c, [0] * steps), np.int64) for c in ARENA_CATEGORIES}
    assert not live, f"arena buffers outside {ARENA_CATEGORIES}: {sorted(live)}"
    state = {c: 0 for c in CATEGORIES if c != "io"}    # static arrays ("gradients" here: accumulators)
    for name, arr in program.state_init.items():
        state[program.state_category(name)] += arr.nbytes
    io = sum(program.micro.types[i].nbytes for i in program.micro.inputs)
    loss = next((i for i, n in enumerate(program.micro.nodes) if n.op in ("mt.SoftmaxCrossEntropy", "mt.MSELoss")),
                steps)
    return Timeline(arena, state, io, trainer.plans.arena_bytes, loss)


@dataclass
class TargetRow:
    strategy: str
    target: str
    instructions: int | None       # one optimizer step of batch 1 = one training sample
    ram_used: int | None = None    # linked firmware RAM (.data + .bss + stack reserve)
    ram_capacity: int | None = None
    does_not_fit: str = ""         # the TargetFitError's message when it does not fit


def profile_on_targets(build, strategies, targets, x1: np.ndarray, y1: np.ndarray, progress=None) -> list:
    """`build(strategy, target)` compiles a batch-1 trainer for `target`. Rows
    per (strategy, target); a target whose RAM is too small is reported, not fatal."""
    rows = []
    for strategy in strategies:
        for target in targets:
            try:
                tr = build(strategy, target)
                prof = tr.profile(x1, y1)
                fp = tr.footprint
                rows.append(TargetRow(strategy, target, prof.instructions, fp.ram_bytes, fp.ram_capacity))
            except TargetFitError as exc:
                rows.append(TargetRow(strategy, target, None, does_not_fit=str(exc)))
            if progress is not None:
                progress.update(1)
    return rows


def fit_numbers(message: str) -> str:
    """'needs N B ... has M B' out of a TargetFitError message, for a table cell."""
    import re
    need = re.search(r"needs at least ([\d,]+) B", message) or re.search(r"needs ([\d,]+) B", message)
    has = re.search(r"has ([\d,]+) B", message)
    if need and has:
        return f"does not fit: needs {need.group(1)} B, has {has.group(1)} B"
    return "does not fit: " + message.split(";")[0]
