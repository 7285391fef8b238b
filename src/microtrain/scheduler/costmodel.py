"""Vectorized analytical cost model: for N loop orderings at once (and the
per-operand memory cuts chosen by allocation), the word accesses of every
memory level, energy, latency and utilization. Equations: docs/scheduler.md."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layer import OPERANDS
from .problem import Problem


@dataclass
class Prefix:
    """Per ordering n and prefix length k (loops [0, k) innermost first)."""
    P: np.ndarray                 # (N, L+1) product of the prefix's loop sizes
    E: np.ndarray                 # (N, L+1, D) per-dim extent of the prefix
    lead: dict[str, np.ndarray]   # op -> (N, L+1) run of op-irrelevant loops starting at k
    ir_after: dict[str, np.ndarray]  # op -> (N, L+1) some op-irrelevant loop at >= k
    tile: dict[str, list[np.ndarray]]  # op -> per level (N, L+1) elements per instance

    @property
    def total(self) -> np.ndarray:
        return self.P[:, -1]


def prefix_tables(pb: Problem, orderings: np.ndarray) -> Prefix:
    X = np.atleast_2d(np.asarray(orderings, dtype=np.int64))
    N, L = X.shape
    D = len(pb.dims)
    fac = pb.type_factor[X].astype(np.float64)
    dim = pb.type_dim[X]
    P = np.ones((N, L + 1))
    P[:, 1:] = np.cumprod(fac, axis=1)
    steps = np.ones((N, L, D))
    np.put_along_axis(steps, dim[:, :, None], fac[:, :, None], axis=2)
    E = np.ones((N, L + 1, D))
    E[:, 1:, :] = np.cumprod(steps, axis=1)
    lead, ir_after, tile = {}, {}, {}
    for op in OPERANDS:
        ir = ~pb.relevant[op][dim]
        run = np.zeros((N, L + 1), dtype=np.int64)
        after = np.zeros((N, L + 1), dtype=bool)
        for k in range(L - 1, -1, -1):  # L is small (tens): a Python loop over positions is fine
            run[:, k] = (run[:, k + 1] + 1) * ir[:, k]
            after[:, k] = after[:, k + 1] | ir[:, k]
        lead[op], ir_after[op] = run, after
        lv = pb.levels[op]
        tile[op] = [pb.layer.tensor_size_many(op, E * lv.spatial[i]) for i in range(len(lv.mems))]
    return Prefix(P=P, E=E, lead=lead, ir_after=ir_after, tile=tile)


def _take(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, k[:, None], axis=1)[:, 0]


def words(elems: np.ndarray, bits: "np.ndarray | float", bw_min: int, bw_max: int) -> np.ndarray:
    """Port accesses to move `elems` elements of `bits` each in one transfer:
    whole min-width beats, each worth bw_min/bw_max of a full-width cycle."""
    return np.ceil(elems * bits / bw_min) * (bw_min / bw_max)


@dataclass
class Costs:
    energy: np.ndarray       # pJ
    latency: np.ndarray      # cycles
    utilization: np.ndarray  # MACs / (latency * array MACs)
    mem_energy: np.ndarray
    # per memory: (N,) read word accesses and write word accesses (all instances)
    reads: list[np.ndarray] = field(default_factory=list)
    writes: list[np.ndarray] = field(default_factory=list)
    # per (op, level): (N,) elements written into that level from above (all instances)
    fills: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def evaluate(pb: Problem, pre: Prefix, cuts: dict[str, list[np.ndarray]]) -> Costs:
    """Cost of each ordering given `cuts[op][level]` = prefix length held at that level."""
    hw, layer = pb.hw, pb.layer
    N = pre.P.shape[0]
    total = pre.total
    reads = [np.zeros(N) for _ in hw.memories]
    writes = [np.zeros(N) for _ in hw.memories]
    fills: dict[tuple[str, int], np.ndarray] = {}
    for op in OPERANDS:
        lv = pb.levels[op]
        cut = cuts[op]
        top = len(lv.mems) - 1
        # stationarity: op-irrelevant loops right above a cut keep the tile in place
        merged = [c + _take(pre.lead[op], c) for c in cut]
        refills = [total / _take(pre.P, m) for m in merged]
        zero = np.zeros(N, dtype=np.int64)
        for i, m in enumerate(lv.mems):
            mem = hw.memories[m]
            inst = lv.instances[i]
            below = cut[i - 1] if i > 0 else zero
            down_elems = _take(pre.tile[op][i], below)   # unique data for all children, per instance
            own_elems = _take(pre.tile[op][i], cut[i])     # this level's tile, per instance
            if op != "O":
                bits = layer.precision[op]
                # MAC level: reads repeat only when a relevant loop moves the operand
                periods = refills[i - 1] if i > 0 else total / _take(pre.P, pre.lead[op][:, 0])
                reads[m] += words(down_elems, bits, mem.rbw_min, mem.read_bw) * periods * inst
                if i < top:
                    fills[(op, i)] = own_elems * refills[i] * inst
                    writes[m] += words(own_elems, bits, mem.wbw_min, mem.write_bw) * refills[i] * inst
                continue
            # outputs: partial sums travel both ways while a reduction loop is still open above
            start = merged[i - 1] if i > 0 else zero
            psum_here = _take(pre.ir_after["O"], start) | lv.spatial_ir_above[i]
            bits = np.where(psum_here, layer.precision["O"], layer.precision["O_final"])
            periods = refills[i - 1] if i > 0 else total
            w_low = words(down_elems, bits, mem.wbw_min, mem.write_bw) * periods * inst
            writes[m] += w_low
            reads[m] += np.where(psum_here, words(down_elems, bits, mem.rbw_min, mem.read_bw) * periods * inst, 0.0)
            if i < top:
                psum_up = _take(pre.ir_after["O"], merged[i]) | lv.spatial_ir_above[i + 1]
                bits_up = np.where(psum_up, layer.precision["O"], layer.precision["O_final"])
                reads[m] += words(own_elems, bits_up, mem.rbw_min, mem.read_bw) * refills[i] * inst
                writes[m] += np.where(psum_up, words(own_elems, bits_up, mem.wbw_min, mem.write_bw) * refills[i] * inst, 0.0)
                fills[(op, i)] = np.where(psum_up, own_elems * refills[i] * inst, 0.0)
    mem_energy = sum(reads[m] * mem.read_energy + writes[m] * mem.write_energy for m, mem in enumerate(hw.memories))
    energy = mem_energy + hw.mac_energy * layer.macs
    latency = _latency(pb, total, reads, writes)
    util = layer.macs / (latency * hw.num_macs)
    return Costs(energy=energy, latency=latency, utilization=util, mem_energy=mem_energy,
                 reads=reads, writes=writes, fills=fills)


def _latency(pb: Problem, total: np.ndarray, reads, writes) -> np.ndarray:
    """Compute cycles, or the busiest memory port if it needs more cycles
    (transfers overlap compute; a shared read/write port serializes both)."""
    worst = total.copy()
    for m, mem in enumerate(pb.hw.memories):
        inst = max((lv.instances[lv.mems.index(m)] for lv in pb.levels.values() if m in lv.mems), default=1.0)
        busy = (reads[m] + writes[m]) if mem.rw_shared else np.maximum(reads[m], writes[m])
        worst = np.maximum(worst, busy / inst)
    return worst
