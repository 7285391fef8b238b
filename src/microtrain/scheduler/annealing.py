"""Simulated annealing over loop orderings, many chains per numpy call.

Schedule: T_i = T0 * alpha**i with alpha = (T_end/T0)**(1/iterations).
Move: swap two positions holding different loops. Acceptance (as SALSA):
accept with probability min(1, exp((cost/cost_new - 1) / T_i)), a relative
criterion, so one temperature fits layers of any cost scale. Multi-start:
`chains` independent random starts run in lock-step. A final greedy polish
tries every swap and every move-to-position of the best ordering."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .exhaustive import SearchResult
from .problem import Problem
from .score import score


@dataclass(frozen=True)
class AnnealingSchedule:
    chains: int = 64
    iterations: int = 250
    t_start: float = 0.05
    t_end: float = 0.0005
    polish_rounds: int = 20


def _random_starts(pb: Problem, rng: np.random.Generator, n: int, objective: str, allocation: str):
    """n valid random orderings (tries more if some overflow every memory)."""
    base = pb.canonical()
    pool, pool_obj = [], []
    for _ in range(20):
        X = rng.permuted(np.tile(base, (2 * n, 1)), axis=1)
        obj = score(pb, X, objective, allocation).objective
        keep = np.isfinite(obj)
        pool.extend(X[keep])
        pool_obj.extend(obj[keep])
        if len(pool) >= n:
            break
    if not pool:
        return None, None
    idx = np.arange(n) % len(pool)
    return np.array(pool)[idx], np.array(pool_obj)[idx]


def _swap_proposals(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    C, L = X.shape
    i = rng.integers(0, L, C)
    j = rng.integers(0, L, C)
    for _ in range(4):  # re-draw swaps of identical loops (no-ops)
        same = X[np.arange(C), i] == X[np.arange(C), j]
        if not same.any():
            break
        j = np.where(same, rng.integers(0, L, C), j)
    Y = X.copy()
    r = np.arange(C)
    Y[r, i], Y[r, j] = X[r, j], X[r, i]
    return Y


def neighbours(x: np.ndarray) -> np.ndarray:
    """All distinct orderings one swap or one move (remove + insert) away."""
    L = len(x)
    out = []
    for i in range(L):
        for j in range(i + 1, L):
            if x[i] != x[j]:
                y = x.copy()
                y[i], y[j] = x[j], x[i]
                out.append(y)
    for i in range(L):
        rest = np.delete(x, i)
        for j in range(L):
            if j != i and j != i + 1:
                out.append(np.insert(rest, j if j < i else j - 1, x[i]))
    if not out:
        return x[None, :]
    return np.unique(np.array(out), axis=0)


def polish(pb: Problem, x: np.ndarray, obj: float, objective: str, allocation: str, rounds: int):
    evaluated = 0
    for _ in range(rounds):
        N = neighbours(x)
        o = score(pb, N, objective, allocation).objective
        evaluated += len(N)
        k = int(np.argmin(o))
        if not o[k] < obj * (1 - 1e-12):
            break
        x, obj = N[k], float(o[k])
    return x, obj, evaluated


def anneal(pb: Problem, objective: str = "energy", allocation: str = "uneven", seed: int = 0,
           schedule: AnnealingSchedule = AnnealingSchedule()) -> SearchResult:
    rng = np.random.default_rng(seed)
    if pb.n_loops < 2:
        x = pb.canonical()
        return SearchResult(x, float(score(pb, x[None], objective, allocation).objective[0]), 1)
    X, cur = _random_starts(pb, rng, schedule.chains, objective, allocation)
    if X is None:
        x = pb.canonical()
        return SearchResult(x, float("inf"), 0)
    evaluated = len(X)
    best_i = int(np.argmin(cur))
    best, best_obj = X[best_i].copy(), float(cur[best_i])
    alpha = (schedule.t_end / schedule.t_start) ** (1.0 / max(1, schedule.iterations))
    for it in range(schedule.iterations):
        T = schedule.t_start * alpha ** it
        Y = _swap_proposals(X, rng)
        new = score(pb, Y, objective, allocation).objective
        evaluated += len(Y)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            p = np.exp(np.minimum(0.0, (cur / new - 1.0) / T))
        accept = rng.random(len(X)) < np.nan_to_num(p)
        X[accept] = Y[accept]
        cur = np.where(accept, new, cur)
        k = int(np.argmin(cur))
        if cur[k] < best_obj:
            best, best_obj = X[k].copy(), float(cur[k])
    best, best_obj, n = polish(pb, best, best_obj, objective, allocation, schedule.polish_rounds)
    return SearchResult(ordering=best, objective=best_obj, evaluated=evaluated + n)
