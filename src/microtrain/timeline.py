"""Arena occupancy over the schedule: per step, the bytes of the buffers alive
(the quantity whose maximum is the planner's lower bound) and the highest
arena byte in use (the placement's footprint at that step, whose maximum is
the arena size), from a memory plan. Plus a PNG plot of it (matplotlib,
imported only when plotting: `pip install microtrain[plot]`).

    tl = microtrain.memory_timeline(cm)          # CompiledModel, CompiledTrainer or (graph, plan)
    microtrain.plot_memory_timeline(cm, "mem.png")
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import MicrotrainError


@dataclass
class MemoryTimeline:
    steps: list[str]          # node name per step (execution order)
    ops: list[str]            # op type per step
    live_bytes: list[int]     # bytes of arena buffers alive at each step
    arena_top: list[int]      # highest arena byte (offset + size) in use at each step
    arena_bytes: int          # the planned arena
    lower_bound_bytes: int    # the planner's lower bound (max of live_bytes)
    title: str = ""

    @property
    def peak_step(self) -> int:
        return max(range(len(self.live_bytes)), key=self.live_bytes.__getitem__) if self.live_bytes else 0

    def rows(self) -> list[tuple[int, str, str, int, int]]:
        return [(i, s, o, lb, top) for i, (s, o, lb, top)
                in enumerate(zip(self.steps, self.ops, self.live_bytes, self.arena_top))]


def live_bytes_by(plan, steps: int, key) -> dict:
    """Bytes of arena buffers alive at each of `steps` steps, summed per
    `key(buffer)` (e.g. a memory category): {key: [bytes per step]}. A
    buffer is alive from the step that writes it to its last reader."""
    out: dict = {}
    for b in plan.buffers:
        row = out.setdefault(key(b), [0] * steps)
        for step in range(b.start, min(b.end, steps - 1) + 1):
            row[step] += b.size
    return out


def timeline_of_plan(graph, plan, title: str = "") -> MemoryTimeline:
    """Per-step live bytes and arena top of `plan` over `graph`'s nodes. A
    buffer is alive from the step that writes it to its last reader (its
    planned lifetime); scratch buffers only at their node's step."""
    n = len(graph.nodes)
    live = live_bytes_by(plan, n, lambda b: None).get(None, [0] * n)
    top = [0] * n
    for b in plan.buffers:
        for step in range(b.start, min(b.end, n - 1) + 1):
            top[step] = max(top[step], b.offset + b.size)
    return MemoryTimeline([nd.name for nd in graph.nodes], [nd.op for nd in graph.nodes], live, top,
                          plan.arena_bytes, plan.lower_bound_bytes, title)


def memory_timeline(obj, plan=None) -> MemoryTimeline:
    """The timeline of a CompiledModel, a CompiledTrainer (its forward +
    backward graph for one micro-batch, where the training peak is) or a
    (graph, plan) pair."""
    if plan is not None:
        return timeline_of_plan(obj, plan)
    if hasattr(obj, "graph") and hasattr(obj, "plan"):
        return timeline_of_plan(obj.graph, obj.plan, f"{Path(obj.graph.source).name} on {obj.target}")
    if hasattr(obj, "program") and hasattr(obj, "plans"):
        return timeline_of_plan(obj.program.micro, obj.plans.micro,
                                f"training step (micro-batch graph) on {obj.target}")
    raise MicrotrainError(f"memory_timeline: expected a CompiledModel, a CompiledTrainer or (graph, plan), "
                          f"got {type(obj).__name__}")


def plot_memory_timeline(obj, path, title: Optional[str] = None) -> Path:
    """Write the timeline of `obj` (see memory_timeline, or a MemoryTimeline)
    as a PNG: live bytes and arena top per step, the arena size and the lower
    bound as lines."""
    tl = obj if isinstance(obj, MemoryTimeline) else memory_timeline(obj)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MicrotrainError("plotting the memory timeline needs matplotlib: "
                              "pip install 'microtrain[plot]' (or pip install matplotlib)") from None
    kb = 1 / 1024
    steps = list(range(len(tl.steps)))
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.12 * len(steps) + 4)), 4.0))
    ax.step(steps, [v * kb for v in tl.arena_top], where="mid", color="tab:orange",
            label="arena top (highest byte in use)")
    ax.fill_between(steps, [v * kb for v in tl.live_bytes], step="mid", alpha=0.5, color="tab:blue",
                    label="live buffers")
    ax.axhline(tl.arena_bytes * kb, color="tab:red", ls="--", lw=1, label=f"arena {tl.arena_bytes:,} B")
    ax.axhline(tl.lower_bound_bytes * kb, color="gray", ls=":", lw=1,
               label=f"lower bound {tl.lower_bound_bytes:,} B")
    peak = tl.peak_step
    if tl.steps:
        ax.annotate(f"peak: {tl.steps[peak][:24]} ({tl.ops[peak]})", (peak, tl.live_bytes[peak] * kb),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("schedule step (node)")
    ax.set_ylabel("KiB")
    ax.set_title(title or tl.title or "arena occupancy")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_xlim(-0.5, max(len(steps) - 0.5, 0.5))
    ax.set_ylim(0, max(tl.arena_bytes, 1) * kb * 1.15)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
