"""A layer mapped spatially onto a hardware: the temporal prime-factor loops
left to order, and per operand and memory level the spatial extents and the
number of memory instances. Built once per (layer, hardware)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import factorial, prod

import numpy as np

from .errors import SchedulerError
from .hardware import Hardware, MemoryLevel, spatial_factors
from .layer import OPERANDS, Layer


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


@dataclass
class OperandLevels:
    """One operand's memory chain, bottom-up."""
    op: str
    mems: list[int]              # indices into Hardware.memories
    spatial: np.ndarray          # (levels, D): extents of the spatial loops each instance spans
    instances: np.ndarray        # (levels,): instances of that memory in use
    spatial_ir_above: np.ndarray  # (levels,) bool: a reduction (O) / broadcast loop unrolled above


@dataclass
class Problem:
    layer: Layer
    hw: Hardware
    spatial: dict[str, tuple[str, int]]
    dims: tuple[str, ...]
    temporal: dict[str, int]       # per dim, after spatial unrolling
    type_dim: np.ndarray           # (T,) dim index of each loop type
    type_factor: np.ndarray        # (T,) prime factor of each loop type
    type_count: np.ndarray         # (T,) how many loops of that type
    relevant: dict[str, np.ndarray]  # op -> (D,) bool
    levels: dict[str, OperandLevels]

    @property
    def n_loops(self) -> int:
        return int(self.type_count.sum())

    @property
    def total_cycles(self) -> int:
        return prod(self.temporal.values())

    def loops(self, ordering: np.ndarray) -> list[tuple[str, int]]:
        """Type-id ordering -> [(dim, factor)], innermost first."""
        return [(self.dims[self.type_dim[t]], int(self.type_factor[t])) for t in ordering]

    def canonical(self) -> np.ndarray:
        """Some valid ordering (types in id order)."""
        return np.repeat(np.arange(len(self.type_count)), self.type_count)

    def ordering_from_loops(self, loops: list[tuple[str, int]]) -> np.ndarray:
        """Inverse of `loops`; loops of composite size are split into primes."""
        ids = {(self.dims[d], int(f)): t for t, (d, f) in enumerate(zip(self.type_dim, self.type_factor))}
        out = []
        for dim, size in loops:
            if (dim, int(size)) in ids:
                out.append(ids[(dim, int(size))])
                continue
            for p in prime_factors(int(size)):
                if (dim, p) not in ids:
                    raise SchedulerError(f"loop {dim}={size} does not belong to the temporal loops of '{self.layer.name}'")
                out.append(ids[(dim, p)])
        arr = np.array(out, dtype=np.int64)
        if not np.array_equal(np.bincount(arr, minlength=len(self.type_count)), self.type_count):
            raise SchedulerError(f"loop order does not cover the temporal loops of '{self.layer.name}' exactly")
        return arr


def space_size(type_count: np.ndarray) -> int:
    """Distinct orderings of a multiset of loops: n! / prod(count!)."""
    n = int(np.sum(type_count))
    return factorial(n) // prod(factorial(int(c)) for c in type_count)


def build_problem(layer: Layer, hw: Hardware, loops: list[tuple[str, int]] | None = None) -> Problem:
    """`loops` (optional) fixes the temporal loop sizes, e.g. composite ones
    taken from another tool's mapping; by default every loop is a prime factor."""
    spatial = spatial_factors(layer, hw)
    dims = layer.dims
    temporal = dict(layer.sizes)
    for ldim, f in spatial.values():
        if ldim in temporal:
            temporal[ldim] //= f
    counter: Counter = Counter()
    if loops is None:
        for d, size in temporal.items():
            for p in prime_factors(size):
                counter[(dims.index(d), p)] += 1
    else:
        for d, size in loops:
            if d not in dims:
                raise SchedulerError(f"loop dimension {d} is not a dimension of '{layer.name}'")
            counter[(dims.index(d), int(size))] += 1
        got = {d: prod(int(s) for dd, s in loops if dd == d) for d in dims}
        if any(got[d] != temporal[d] for d in dims):
            raise SchedulerError(f"loops do not multiply to the temporal sizes of '{layer.name}' {temporal}")
    types = sorted(counter)
    relevant = {op: np.array([layer.is_relevant(op, d) for d in dims]) for op in OPERANDS}
    levels = {op: _operand_levels(op, layer, hw, spatial, relevant[op]) for op in OPERANDS}
    return Problem(
        layer=layer, hw=hw, spatial=spatial, dims=dims, temporal=temporal,
        type_dim=np.array([t[0] for t in types], dtype=np.int64),
        type_factor=np.array([t[1] for t in types], dtype=np.int64),
        type_count=np.array([counter[t] for t in types], dtype=np.int64),
        relevant=relevant, levels=levels,
    )


def _operand_levels(op: str, layer: Layer, hw: Hardware, spatial, relevant: np.ndarray) -> OperandLevels:
    mems = hw.chain(op)
    dims = layer.dims
    sp = np.ones((len(mems), len(dims)))
    inst = np.ones(len(mems))
    ir_above = np.zeros(len(mems), dtype=bool)
    for i, m in enumerate(mems):
        mem: MemoryLevel = hw.memories[m]
        for adim, (ldim, f) in spatial.items():
            if f == 1 or ldim not in dims:
                continue
            if adim in mem.served_dims:
                sp[i, dims.index(ldim)] *= f
            else:
                inst[i] *= f
                ir_above[i] |= not relevant[dims.index(ldim)]
    return OperandLevels(op=op, mems=mems, spatial=sp, instances=inst, spatial_ir_above=ir_above)
