"""Calibration: run the float golden model on calibration data and observe
the range of every run-time tensor; observers turn ranges into int8
(scale, zero_point).

Methods (per activation tensor, per-tensor asymmetric int8):
* minmax: the observed [min, max].
* percentile: [p_lo, p_hi] percentiles of a fixed-size random subsample of
  the values (p = `percentile`, default 99.99, and 100 - p).
* mse: the clipping range [a*min, a*max], a in a grid over (0, 1], that
  minimizes the mean squared quantize-dequantize error on the subsample."""
from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Union

import numpy as np

from ..errors import InputError
from ..golden import interpret
from ..ir import Graph

METHODS = ("minmax", "percentile", "mse")
SAMPLES_PER_TENSOR = 1 << 16   # subsample kept for percentile / mse
MSE_GRID = 64

Calibration = Union[np.ndarray, Mapping[str, np.ndarray], Iterable[Mapping[str, np.ndarray]]]


def calibration_batches(graph: Graph, data: Calibration) -> list[dict[str, np.ndarray]]:
    """Input dicts with the graph's exact input shapes. A numpy array (or a
    dict of arrays, one per input) holds samples along axis 0, cut into
    batches of the model's batch size; an iterable yields input dicts."""
    if isinstance(data, np.ndarray):
        if len(graph.inputs) != 1:
            raise InputError(f"the model has inputs {graph.inputs}: pass calibration as a dict of arrays "
                             "or an iterable of input dicts")
        data = {graph.inputs[0]: data}
    if isinstance(data, Mapping):
        return list(_split(graph, data))
    batches = []
    for item in data:
        if not isinstance(item, Mapping):
            raise InputError("calibration iterable must yield dicts of input name -> array")
        batches.extend(_split(graph, item))
    if not batches:
        raise InputError("calibration data is empty; give at least one input sample")
    return batches


def _split(graph: Graph, arrays: Mapping[str, np.ndarray]) -> Iterator[dict[str, np.ndarray]]:
    missing = [n for n in graph.inputs if n not in arrays]
    if missing:
        raise InputError(f"calibration data lacks input(s) {missing}; the model's inputs are {graph.inputs}")
    counts = set()
    for name in graph.inputs:
        want, arr = graph.types[name].shape, np.asarray(arrays[name])
        if tuple(arr.shape) == want:
            counts.add(1)
            continue
        b = want[0] if want else 1
        if arr.ndim != len(want) or tuple(arr.shape[1:]) != tuple(want[1:]) or arr.shape[0] % b:
            raise InputError(f"calibration input '{name}' has shape {tuple(arr.shape)}; the model takes "
                             f"{want}: give (k*{b}, {', '.join(map(str, want[1:]))}) samples")
        counts.add(arr.shape[0] // b)
    if len(counts) != 1:
        raise InputError("calibration arrays of the model's inputs hold different numbers of samples")
    n = counts.pop()
    for i in range(n):
        out = {}
        for name in graph.inputs:
            want, arr = graph.types[name].shape, np.asarray(arrays[name])
            out[name] = (arr if tuple(arr.shape) == want else
                         arr[i * want[0]:(i + 1) * want[0]]).astype(graph.types[name].dtype)
        yield out


class Observer:
    """Range statistics of one tensor over the calibration run."""

    def __init__(self, rng: np.random.Generator):
        self.lo, self.hi = np.inf, -np.inf
        self._rng = rng
        self._parts: list[np.ndarray] = []
        self._kept = 0

    def update(self, values: np.ndarray) -> None:
        v = np.asarray(values, np.float64).reshape(-1)
        if not v.size:
            return
        self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
        take = min(v.size, max(256, SAMPLES_PER_TENSOR // 64))
        self._parts.append(v if take == v.size else self._rng.choice(v, take, replace=False))
        self._kept += take
        if self._kept > 2 * SAMPLES_PER_TENSOR:      # keep memory bounded
            allv = np.concatenate(self._parts)
            self._parts = [self._rng.choice(allv, SAMPLES_PER_TENSOR, replace=False)]
            self._kept = SAMPLES_PER_TENSOR

    def samples(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.zeros(1)

    def range(self, method: str, percentile: float) -> tuple[float, float]:
        if method == "minmax":
            return self.lo, self.hi
        s = self.samples()
        if method == "percentile":
            return float(np.percentile(s, 100.0 - percentile)), float(np.percentile(s, percentile))
        return mse_range(s, self.lo, self.hi)


def scale_zero_point(lo: float, hi: float) -> tuple[float, int]:
    """Asymmetric int8 for a real range (always containing 0, so 0 is exact)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if not np.isfinite(scale) or scale <= 0:
        return 1.0, 0
    zp = int(np.clip(np.round(-128.0 - lo / scale), -128, 127))
    return float(scale), zp


def fake_quant(v: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return (np.clip(np.round(v / scale) + zp, -128, 127) - zp) * scale


def mse_range(samples: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    best, best_err = (lo, hi), np.inf
    for a in np.linspace(1.0, 1.0 / MSE_GRID, MSE_GRID):
        s, z = scale_zero_point(a * lo, a * hi)
        err = float(np.mean((fake_quant(samples, s, z) - samples) ** 2))
        if err < best_err:
            best, best_err = (a * lo, a * hi), err
    return best


def calibrate(graph: Graph, batches: list[dict], method: str, percentile: float = 99.99,
              progress: bool = True) -> dict[str, tuple[float, int]]:
    """(scale, zero_point) of every run-time float tensor of `graph`."""
    from tqdm import tqdm
    rng = np.random.default_rng(0)
    observers: dict[str, Observer] = {}
    watched = [t for t in [*graph.inputs, *(o for n in graph.nodes for o in n.outputs if o)]
               if graph.types[t].dtype == np.float32]
    for inputs in tqdm(batches, desc="calibrating", unit="batch", disable=not progress, leave=False):
        env = interpret(graph, inputs, keep_all=True)
        for t in watched:
            observers.setdefault(t, Observer(rng)).update(env[t])
    return {t: scale_zero_point(*obs.range(method, percentile)) for t, obs in observers.items()}
