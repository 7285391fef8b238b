"""Exhaustive search over distinct loop orderings.

Pruning that is exact under the cost model: loops with the same dimension and
prime factor are interchangeable, so only distinct permutations of the
multiset are enumerated (n!/prod(count!) instead of n!). No other pruning is
applied: any two distinct orderings can differ in some tile size or in a
stationarity run, so dropping one could lose the optimum."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .problem import Problem
from .score import score


def multiset_permutations(items: np.ndarray, batch: int = 4096) -> Iterator[np.ndarray]:
    """All distinct permutations of `items`, in lexicographic order, in batches."""
    a = sorted(int(x) for x in items)
    n = len(a)
    out: list[list[int]] = []
    while True:
        out.append(a.copy())
        if len(out) == batch:
            yield np.array(out, dtype=np.int64)
            out = []
        i = n - 2  # next lexicographic permutation (skips duplicates by construction)
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            break
        j = n - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1:] = reversed(a[i + 1:])
    if out:
        yield np.array(out, dtype=np.int64).reshape(len(out), n)


@dataclass
class SearchResult:
    ordering: np.ndarray
    objective: float
    evaluated: int


def exhaustive(pb: Problem, objective: str = "energy", allocation: str = "uneven", batch: int = 4096) -> SearchResult:
    best, best_obj, count = pb.canonical(), np.inf, 0
    for X in multiset_permutations(pb.canonical(), batch=batch):
        obj = score(pb, X, objective, allocation).objective
        count += len(X)
        i = int(np.argmin(obj))
        if obj[i] < best_obj:
            best, best_obj = X[i].copy(), float(obj[i])
    return SearchResult(ordering=best, objective=best_obj, evaluated=count)
