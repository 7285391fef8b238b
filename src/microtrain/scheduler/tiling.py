"""Tile sizes and loop order for an MCU's memory levels (for the targets'
L1/L2 tiling of conv/matmul): build a one-core hierarchy from the given level
sizes and ask the scheduler for the best mapping on it."""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Sequence

from .api import Mapping, schedule_layer
from .errors import SchedulerError
from .hardware import Hardware, MemoryLevel
from .layer import Layer


@dataclass
class TilePlan:
    loop_order: list[tuple[str, int]]        # innermost first
    tiles: dict[str, dict[str, dict[str, int]]]  # level -> operand -> dim -> tile extent
    mapping: Mapping


def tile_for_levels(layer: Layer, levels: Sequence[tuple[str, int]], *, lanes: int = 1,
                    energies: Sequence[float] | None = None, objective: str = "energy",
                    engine: str = "auto", seed: int = 0) -> TilePlan:
    """`levels`: [(name, size in bytes)] bottom-up, every level holding all
    operands; the last one must hold the whole layer. `energies` are relative
    per-word costs (default: x8 per level up). `lanes` MACs share the reduction (SIMD)."""
    if not levels:
        raise SchedulerError("tile_for_levels needs at least one memory level")
    energies = list(energies) if energies is not None else [8.0 ** i for i in range(len(levels))]
    if len(energies) != len(levels):
        raise SchedulerError("tile_for_levels: one energy per level")
    mems = tuple(MemoryLevel(name=str(n), size_bits=int(b) * 8, read_energy=float(e), write_energy=float(e),
                             read_bw=32, write_bw=32, operands=("I", "W", "O"), served_dims=("D1",))
                 for (n, b), e in zip(levels, energies))
    hw = Hardware(name="mcu", array={"D1": lanes}, unroll={"D1": "C"}, mac_energy=0.0, memories=mems)
    m = schedule_layer(layer, hw, objective=objective, engine=engine, seed=seed)
    tiles: dict[str, dict[str, dict[str, int]]] = {}
    for op, per_level in m.allocation.items():
        held: list[tuple[str, int]] = [(d, f) for d, f in m.spatial.values() if f > 1]
        for name, loops in per_level:
            held = held + loops
            ext = {d: prod(f for dd, f in held if dd == d) for d in layer.dims}
            tiles.setdefault(name, {})[op] = {d: ext[d] for d in layer.dims if layer.is_relevant(op, d)}
    return TilePlan(loop_order=m.loop_order, tiles=tiles, mapping=m)
