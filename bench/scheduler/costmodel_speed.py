"""Throughput of the vectorized cost model + allocation (orderings per second).

    PYTHONPATH=src python bench/scheduler/costmodel_speed.py"""
from __future__ import annotations

import time

import numpy as np

from microtrain.scheduler.hardware import load_hardware
from microtrain.scheduler.problem import build_problem
from microtrain.scheduler.score import score
from microtrain.scheduler.zoo import resnet18


def main() -> None:
    layer = resnet18()[1]  # layer1.0.conv1: 64x64x56x56, 3x3
    for hw_name in ("eyeriss_like", "edge_tpu_like", "gap9_like"):
        pb = build_problem(layer, load_hardware(hw_name))
        rng = np.random.default_rng(0)
        for n in (1, 64, 1024, 8192):
            X = rng.permuted(np.tile(pb.canonical(), (n, 1)), axis=1)
            reps = max(1, 2000 // n)
            t0 = time.perf_counter()
            for _ in range(reps):
                score(pb, X)
            dt = (time.perf_counter() - t0) / reps
            print(f"{hw_name:14s} loops={pb.n_loops:2d} batch={n:5d}  {dt * 1e3:8.2f} ms/call  {n / dt:10.0f} orderings/s")


if __name__ == "__main__":
    main()
