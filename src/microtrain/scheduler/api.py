"""Public entry point: schedule layers (or a whole model) on a hardware."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .annealing import AnnealingSchedule, anneal
from .errors import SchedulerError
from .exhaustive import exhaustive
from .hardware import Hardware, load_hardware
from .layer import Layer
from .problem import Problem, build_problem, space_size
from .score import check_objective, score
from .zigzag_format import mapping_to_zigzag

ENGINES = ("auto", "exhaustive", "annealing")
DEFAULT_EXHAUSTIVE_LIMIT = 20_000  # orderings; above this `auto` anneals


@dataclass
class Mapping:
    """The temporal mapping found for one layer, with its modelled cost."""
    layer: str
    loop_order: list[tuple[str, int]]  # temporal loops, innermost first
    allocation: dict[str, list[tuple[str, list[tuple[str, int]]]]]  # op -> [(memory, its loops)]
    spatial: dict[str, tuple[str, int]]  # array dim -> (layer dim, unroll)
    energy: float          # pJ
    latency: float         # cycles
    utilization: float     # of the MAC array
    engine: str = ""
    space_size: int = 0
    evaluated: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_zigzag(self) -> dict:
        """A ZigZag mapping entry whose `temporal_ordering` is this loop order."""
        return mapping_to_zigzag(self.layer, self.spatial, self.loop_order, self.extra.get("dims", ()))


def select_engine(pb: Problem, engine: str, limit: int = DEFAULT_EXHAUSTIVE_LIMIT) -> str:
    """The dual-engine switch: exhaustive when the distinct-ordering count is at most `limit`."""
    if engine not in ENGINES:
        raise SchedulerError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine != "auto":
        return engine
    return "exhaustive" if space_size(pb.type_count) <= limit else "annealing"


def describe(pb: Problem, ordering: np.ndarray, objective: str = "energy", allocation: str = "uneven",
             **meta: Any) -> Mapping:
    """Score one ordering and turn it into a Mapping."""
    s = score(pb, ordering[None, :], objective, allocation)
    if not s.alloc.valid[0]:
        raise SchedulerError(f"layer '{pb.layer.name}' does not fit the memories of '{pb.hw.name}' with any tried loop order")
    loops = pb.loops(ordering)
    alloc: dict[str, list[tuple[str, list[tuple[str, int]]]]] = {}
    for op, lv in pb.levels.items():
        prev = 0
        alloc[op] = []
        for i, m in enumerate(lv.mems):
            k = int(s.alloc.cuts[op][i][0])
            alloc[op].append((pb.hw.memories[m].name, loops[prev:k]))
            prev = k
    return Mapping(layer=pb.layer.name, loop_order=loops, allocation=alloc, spatial=dict(pb.spatial),
                   energy=float(s.costs.energy[0]), latency=float(s.costs.latency[0]),
                   utilization=float(s.costs.utilization[0]), extra={"dims": pb.layer.dims}, **meta)


def schedule_layer(layer: Layer, hw: Hardware, *, objective: str = "energy", engine: str = "auto",
                   allocation: str = "uneven", seed: int = 0, exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
                   annealing: AnnealingSchedule = AnnealingSchedule()) -> Mapping:
    check_objective(objective)
    t0 = time.perf_counter()
    pb = build_problem(layer, hw)
    chosen = select_engine(pb, engine, exhaustive_limit)
    if chosen == "exhaustive":
        res = exhaustive(pb, objective, allocation)
    else:
        res = anneal(pb, objective, allocation, seed=seed, schedule=annealing)
    if not np.isfinite(res.objective):
        raise SchedulerError(f"layer '{layer.name}' does not fit the memories of '{hw.name}' with any tried loop order")
    secs = time.perf_counter() - t0
    return describe(pb, res.ordering, objective, allocation, engine=chosen,
                    space_size=space_size(pb.type_count), evaluated=res.evaluated, seconds=secs)


def as_layers(layer_or_model: Any) -> list[Layer]:
    """A Layer, a list of Layers, an ONNX ModelProto / .onnx path, or a ZigZag workload YAML path."""
    if isinstance(layer_or_model, Layer):
        return [layer_or_model]
    if isinstance(layer_or_model, (list, tuple)) and all(isinstance(x, Layer) for x in layer_or_model):
        if not layer_or_model:
            raise SchedulerError("no layers to schedule")
        return list(layer_or_model)
    if isinstance(layer_or_model, (str, Path)):
        path = Path(layer_or_model)
        if path.suffix.lower() in (".yaml", ".yml"):
            from .zigzag_format import layers_from_zigzag_workload
            return layers_from_zigzag_workload(path)
    from .workload import layers_from_onnx
    return layers_from_onnx(layer_or_model)


def schedule(layer_or_model: Any, hardware: Any, *, objective: str = "energy", engine: str = "auto",
             allocation: str = "uneven", seed: int = 0, exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
             annealing: AnnealingSchedule = AnnealingSchedule()) -> list[Mapping]:
    """Best temporal mapping of every conv/matmul layer on `hardware`.

    `hardware`: a Hardware, a YAML path (ours or ZigZag's) or a shipped name
    (see `hardware.shipped_names()`). `engine="auto"` searches exhaustively when
    the ordering space is small and anneals otherwise. One Mapping per layer."""
    check_objective(objective)
    if engine not in ENGINES:
        raise SchedulerError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if allocation not in ("uneven", "even"):
        raise SchedulerError(f"allocation must be 'uneven' or 'even', not {allocation!r}")
    hw = load_hardware(hardware)
    return [schedule_layer(l, hw, objective=objective, engine=engine, allocation=allocation, seed=seed,
                           exhaustive_limit=exhaustive_limit, annealing=annealing)
            for l in as_layers(layer_or_model)]
