"""One vectorized call: orderings -> allocation -> costs -> objective."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .allocation import Allocation, allocate
from .costmodel import Costs, evaluate, prefix_tables
from .errors import SchedulerError
from .problem import Problem

OBJECTIVES = ("energy", "latency", "edp")


@dataclass
class Scored:
    objective: np.ndarray  # (N,), inf where the mapping overflows a memory
    costs: Costs
    alloc: Allocation


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise SchedulerError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    return objective


def score(pb: Problem, orderings: np.ndarray, objective: str = "energy", allocation: str = "uneven") -> Scored:
    pre = prefix_tables(pb, orderings)
    alloc = allocate(pb, pre, allocation)
    costs = evaluate(pb, pre, alloc.cuts)
    if objective == "energy":
        obj = costs.energy
    elif objective == "latency":
        # ties on latency are common: break them by energy, scaled by a per-problem
        # constant (not per batch) so scores do not depend on what else is in the call
        scale = pb.layer.macs * (pb.hw.mac_energy + sum(m.read_energy + m.write_energy for m in pb.hw.memories) + 1.0)
        obj = costs.latency * (1.0 + 1e-9 * costs.energy / scale)
    else:
        obj = costs.energy * costs.latency
    return Scored(objective=np.where(alloc.valid, obj, np.inf), costs=costs, alloc=alloc)
