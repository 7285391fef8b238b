"""Static memory planning. Every activation and scratch buffer gets an offset in
one arena, from the tensors' lifetimes over the execution order:

* views (Reshape, Flatten, Squeeze, Unsqueeze) share their input's buffer;
* element-wise ops run in place when their input dies at that node;
* offsets: greedy by size (largest first, lowest offset that does not collide
  with any placed buffer whose lifetime overlaps) — the strategy TFLite Micro
  also uses, close to the lower bound on chain-like graphs.

The lower bound is the peak, over the schedule, of the bytes of buffers alive
at the same time; no plan can be smaller. `check_plan` independently verifies
that no two simultaneously live buffers overlap."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import MicrotrainError
from .ir import Graph
from .ops.registry import Value, get_op

ALIGN = 16


@dataclass
class Buffer:
    id: int
    size: int
    start: int            # first step it must hold data
    end: int              # last step it must hold data (inclusive)
    offset: int = -1
    tensors: list[str] = field(default_factory=list)


@dataclass
class Storage:
    kind: str             # "arena" | "input" | "output" | "const" | "state"
    index: int            # buffer id / input or output position; unused for const
    name: str = ""        # the constant's name for kind == "const"


@dataclass
class MemoryPlan:
    storage: dict[str, Storage]
    buffers: list[Buffer]
    scratch: dict[str, int]          # node name -> buffer id
    copies: dict[str, str]           # output tensor -> tensor it is copied from (view to graph output)
    arena_bytes: int
    lower_bound_bytes: int

    def offset_of(self, tensor: str) -> int:
        s = self.storage[tensor]
        assert s.kind == "arena"
        return self.buffers[s.index].offset


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(graph: Graph, *, inplace: bool = True, cores: int = 1) -> MemoryPlan:
    """`cores` > 1: every kernel scratch is reserved once per core (each core
    of a multi-core build uses its own slice)."""
    storage: dict[str, Storage] = {}
    buffers: list[Buffer] = []
    scratch: dict[str, int] = {}
    copies: dict[str, str] = {}
    for i, name in enumerate(graph.inputs):
        storage[name] = Storage("input", i)
    for c in graph.constants:
        storage[c] = Storage("const", -1, c)
    for c in graph.state:
        storage[c] = Storage("state", -1, c)
    out_index = {o: j for j, o in enumerate(graph.outputs)}

    last_use: dict[str, int] = {}
    for step, node in enumerate(graph.nodes):
        for i in node.inputs:
            if i:
                last_use[i] = step

    def new_buffer(size: int, step: int, tensor: str) -> int:
        buffers.append(Buffer(len(buffers), _aligned(max(size, 1)), step, step, tensors=[tensor]))
        return buffers[-1].id

    def buffer_dies_here(buf_id: int, step: int) -> bool:
        return all(last_use.get(t, -1) <= step and t not in out_index for t in buffers[buf_id].tensors)

    for step, node in enumerate(graph.nodes):
        op = get_op(node)
        for k, out in enumerate(node.outputs):
            if not out:
                continue
            t = graph.types[out]
            src = node.inputs[0] if node.inputs else ""
            src_store = storage.get(src)
            if out in out_index:
                storage[out] = Storage("output", out_index[out])
                if op.view and k == 0:
                    copies[out] = src
                continue
            if op.view and k == 0 and src_store is not None:
                storage[out] = src_store
                if src_store.kind == "arena":
                    buffers[src_store.index].tensors.append(out)
                continue
            if (inplace and op.inplace and k == 0 and src_store is not None and src_store.kind == "arena"
                    and graph.types[src].nbytes == t.nbytes and buffer_dies_here(src_store.index, step)
                    and node.inputs.count(src) == 1):
                storage[out] = src_store
                buffers[src_store.index].tensors.append(out)
                continue
            storage[out] = Storage("arena", new_buffer(t.nbytes, step, out))
        if op.scratch is not None:
            in_vals = [Value(graph.type_of(i), graph.constants.get(i)) if i else Value(None)
                       for i in node.inputs]
            nbytes = int(op.scratch(node, in_vals, [graph.types[o] for o in node.outputs if o]))
            if nbytes > 0 and cores > 1:
                nbytes = _aligned(nbytes) * cores
            if nbytes > 0:
                scratch[node.name] = new_buffer(nbytes, step, f"{node.name}.scratch")

    # Extend each buffer's lifetime to the last read of any tensor living in it.
    for b in buffers:
        for t in b.tensors:
            b.end = max(b.end, last_use.get(t, b.start))

    lower = lower_bound(buffers, len(graph.nodes))
    arena = assign_offsets(buffers)
    plan = MemoryPlan(storage, buffers, scratch, copies, arena, lower)
    check_plan(plan)
    return plan


def lower_bound(buffers: list[Buffer], steps: int) -> int:
    live = np.zeros(max(steps, 1), dtype=np.int64)
    for b in buffers:
        live[b.start:b.end + 1] += b.size
    return int(live.max()) if buffers else 0


def assign_offsets(buffers: list[Buffer]) -> int:
    """Place buffers with several greedy orders (and first-fit / best-fit gap
    choice) and keep the smallest arena; each try is O(n^2) on a few hundred
    buffers at most, so trying a handful costs nothing next to compiling C."""
    orders = [
        lambda b: (-b.size, b.start, b.id),                      # largest first
        lambda b: (-(b.size * (b.end - b.start + 1)), b.id),     # largest area first
        lambda b: (b.start, -b.size, b.id),                      # in execution order
        lambda b: (-(b.end - b.start), -b.size, b.id),           # longest-lived first
    ]
    best, best_offsets = None, None
    for key in orders:
        for best_fit in (False, True):
            offsets = _place(sorted(buffers, key=key), best_fit)
            arena = max((offsets[b.id] + b.size for b in buffers), default=0)
            if best is None or arena < best:
                best, best_offsets = arena, offsets
    for b in buffers:
        b.offset = best_offsets[b.id]
    return best or 0


def _place(order: list[Buffer], best_fit: bool) -> dict[int, int]:
    offsets: dict[int, int] = {}
    placed: list[Buffer] = []
    for b in order:
        clashes = sorted((p for p in placed if p.start <= b.end and b.start <= p.end),
                         key=lambda p: offsets[p.id])
        # free gaps between the clashing buffers, then the space above them all
        gaps, cursor = [], 0
        for p in clashes:
            if offsets[p.id] - cursor >= b.size:
                gaps.append((offsets[p.id] - cursor, cursor))
            cursor = max(cursor, offsets[p.id] + p.size)
        if best_fit and gaps:
            offset = min(gaps)[1]
        elif gaps:
            offset = gaps[0][1]
        else:
            offset = cursor
        offsets[b.id] = offset
        placed.append(b)
    return offsets


def check_plan(plan: MemoryPlan) -> None:
    """Independent verification: aligned, inside the arena, and no two buffers
    that are alive at the same step share a byte."""
    bs = plan.buffers
    for b in bs:
        if b.offset < 0 or b.offset % ALIGN or b.offset + b.size > plan.arena_bytes:
            raise PlanError(f"buffer {b.id} ({b.tensors[0]}) misplaced at {b.offset}+{b.size}")
    for i, a in enumerate(bs):
        for b in bs[i + 1:]:
            if a.start <= b.end and b.start <= a.end and \
                    a.offset < b.offset + b.size and b.offset < a.offset + a.size:
                raise PlanError(f"memory plan overlap: {a.tensors[0]} and {b.tensors[0]}")


class PlanError(MicrotrainError):
    """Internal: the memory plan failed verification (a bug, please report)."""
