"""Bottom-up memory allocation of an ordering's loop prefixes, vectorized
over orderings. At each memory, each operand it holds keeps the largest
prefix that fits; a shared memory is split between its operands to minimize
the traffic to the level above. `even` forces one common cut per memory."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from .costmodel import Prefix
from .problem import Problem

ALLOCATIONS = ("uneven", "even")
_GRID_BUDGET = 4_000_000  # elements of one combination grid before we chunk


@dataclass
class Allocation:
    cuts: dict[str, list[np.ndarray]]  # op -> per level (N,) prefix length held there
    valid: np.ndarray                  # (N,) False where some memory overflows


def allocate(pb: Problem, pre: Prefix, mode: str = "uneven") -> Allocation:
    if mode not in ALLOCATIONS:
        raise ValueError(f"allocation must be one of {ALLOCATIONS}")
    N, L1 = pre.P.shape
    L = L1 - 1
    ks = np.arange(L1)
    cur = {op: np.zeros(N, dtype=np.int64) for op in pb.levels}
    cuts: dict[str, list[np.ndarray]] = {op: [] for op in pb.levels}
    valid = np.ones(N, dtype=bool)
    for m, mem in enumerate(pb.hw.memories):
        ops = [op for op in mem.operands if op in pb.levels]
        sizes, costs = [], []
        for op in ops:
            lv = pb.levels[op]
            i = lv.mems.index(m)
            bits = _precision_bits(pb, pre, op, cur[op], i)
            size = pre.tile[op][i] * bits[:, None]
            if mem.double_buffer:  # two tiles unless the whole rest of the nest is resident
                size = np.where((ks[None, :] < L) & (size < size[:, -1:]), 2 * size, size)
            ok = size <= mem.size_bits
            started = ks[None, :] >= cur[op][:, None]
            fits = started & (np.cumsum(started & ~ok, axis=1) == 0)  # stop at the first overflow
            valid &= np.take_along_axis(fits, cur[op][:, None], axis=1)[:, 0]
            if i == len(lv.mems) - 1:  # top of this operand: everything must be resident
                fits = fits & (ks[None, :] == L)
                valid &= fits[:, L]
                cost = np.zeros_like(size)
            else:
                cost = (pre.P[:, -1:] / pre.P) * size  # iterations left above x tile bits
            sizes.append(np.where(fits, size, np.inf))
            costs.append(np.where(fits, cost, np.inf))
        tops = [pb.levels[op].mems[-1] == m for op in ops]
        chosen = _split_with_tops(sizes, costs, [cur[op] for op in ops], tops, mem.size_bits, mode == "even", valid, L,
                                  monotone=not mem.double_buffer)
        for op, k in zip(ops, chosen):
            cuts[op].append(k)
            cur[op] = k
    return Allocation(cuts=cuts, valid=valid)


def _precision_bits(pb: Problem, pre: Prefix, op: str, cur: np.ndarray, level: int) -> np.ndarray:
    """Outputs are stored at partial-sum width while a reduction loop (temporal
    not yet allocated, or spatial above this memory) is still open."""
    prec = pb.layer.precision
    if op != "O":
        return np.full(cur.shape, float(prec[op]))
    open_red = np.take_along_axis(pre.ir_after["O"], cur[:, None], axis=1)[:, 0]
    open_red = open_red | pb.levels["O"].spatial_ir_above[level]
    return np.where(open_red, float(prec["O"]), float(prec["O_final"]))


def _split_with_tops(sizes, costs, curs, tops, capacity, even, valid, L, monotone=False) -> list[np.ndarray]:
    """Operands at their top memory take everything (cut L): only the others are searched."""
    free = [j for j, t in enumerate(tops) if not t]
    fixed_size = sum((sizes[j][:, L] for j in range(len(tops)) if tops[j]), np.zeros(sizes[0].shape[0]))
    valid &= np.isfinite(fixed_size)
    out = [np.full(sizes[0].shape[0], L, dtype=np.int64) for _ in tops]
    if free:
        if even and len(free) < len(tops):
            # a free operand must not keep above a loop the top operands take here: its cut is L too
            busy = np.zeros(sizes[0].shape[0], dtype=bool)
            for j, t in enumerate(tops):
                if t:
                    busy |= curs[j] < L
            at_end = np.arange(L + 1)[None, :] == L
            costs = [np.where(at_end | ~busy[:, None], c, np.inf) for c in costs]
        chosen = _best_split([sizes[j] for j in free], [costs[j] for j in free], [curs[j] for j in free],
                             capacity - fixed_size[:, None], even, valid, monotone)
        for j, k in zip(free, chosen):
            out[j] = k
    else:
        valid &= fixed_size <= capacity
    return out


def _best_split(sizes, costs, curs, capacity, even: bool, valid: np.ndarray, monotone: bool = False) -> list[np.ndarray]:
    """Per ordering, the cut per operand minimizing summed cost with summed size
    within capacity; ties go to the lexicographically largest cuts (most data low)."""
    N, L1 = sizes[0].shape
    n = len(sizes)
    capacity = np.broadcast_to(np.asarray(capacity, dtype=np.float64).reshape(-1, 1) if np.ndim(capacity) else capacity, (N, 1))
    if n == 1:
        c = np.where(sizes[0] <= capacity, costs[0], np.inf)
        best = L1 - 1 - np.argmin(c[:, ::-1], axis=1)
        ok = np.isfinite(np.take_along_axis(c, best[:, None], axis=1)[:, 0])
        valid &= ok
        return [np.where(ok, best, curs[0])]
    # candidates are contiguous from each operand's current cut: search only that window
    wins, offs = [], []
    for sz, cs, cur in zip(sizes, costs, curs):
        width = max(1, int(np.max(np.sum(np.isfinite(cs), axis=1))))
        idx = cur[:, None] + np.arange(width)[None, :]
        inside = idx < L1
        idx = np.minimum(idx, L1 - 1)
        wins.append((np.where(inside, np.take_along_axis(sz, idx, axis=1), np.inf),
                     np.where(inside, np.take_along_axis(cs, idx, axis=1), np.inf)))
        offs.append(cur)
    widths = [w[0].shape[1] for w in wins]
    if monotone and not even:
        return _split_last_greedy(wins, offs, curs, capacity, valid)
    out = [np.empty(N, dtype=np.int64) for _ in range(n)]
    rows = max(1, _GRID_BUDGET // int(np.prod(widths)))
    for s in range(0, N, rows):
        sl = slice(s, min(N, s + rows))
        tot_size = _outer_sum([w[0][sl] for w in wins])
        tot_cost = _outer_sum([w[1][sl] for w in wins])
        bad = tot_size > capacity[sl].reshape((-1,) + (1,) * n)
        if even:
            bad |= _uneven_mask([c[sl] for c in curs], widths)
        tot_cost = np.where(bad, np.inf, tot_cost)
        flat = tot_cost.reshape(tot_cost.shape[0], -1)
        last = flat.shape[1] - 1 - np.argmin(flat[:, ::-1], axis=1)
        ok = np.isfinite(flat[np.arange(flat.shape[0]), last])
        valid[sl] &= ok
        idx = np.unravel_index(last, tot_cost.shape[1:])
        for j in range(n):
            out[j][sl] = np.where(ok, offs[j][sl] + idx[j], curs[j][sl])
    return out


def _split_last_greedy(wins, offs, curs, capacity, valid) -> list[np.ndarray]:
    """Same result as the full grid when tile sizes grow with the cut (no double
    buffering): a loop of size f multiplies a tile by at most f, so each
    operand's cost (C/P(k)) * size(k) never grows with k. For every choice of
    the other operands the last one then takes the largest cut that still
    fits, which is also the grid's tie-break winner; only the others are enumerated."""
    n = len(wins)
    N = wins[0][0].shape[0]
    head = wins[:-1]
    s_last, c_last = wins[-1]
    w_last = s_last.shape[1]
    grid = int(np.prod([w[0].shape[1] for w in head]))
    out = [np.empty(N, dtype=np.int64) for _ in range(n)]
    rows = max(1, _GRID_BUDGET // (grid * w_last))
    for s in range(0, N, rows):
        sl = slice(s, min(N, s + rows))
        r = sl.stop - sl.start
        ts = _outer_sum([w[0][sl] for w in head])
        tc = _outer_sum([w[1][sl] for w in head])
        room = capacity[sl].reshape((-1,) + (1,) * (n - 1)) - ts
        fits = s_last[sl].reshape((r,) + (1,) * (n - 1) + (w_last,)) <= room[..., None]
        k = np.sum(fits, axis=-1) - 1  # sizes ascend along the window
        cost = np.take_along_axis(c_last[sl], np.maximum(k, 0).reshape(r, -1), axis=1).reshape(k.shape)
        tot = np.where(k >= 0, tc + cost, np.inf).reshape(r, -1)
        last = tot.shape[1] - 1 - np.argmin(tot[:, ::-1], axis=1)
        ok = np.isfinite(tot[np.arange(r), last])
        valid[sl] &= ok
        idx = np.unravel_index(last, ts.shape[1:])
        k_best = k.reshape(r, -1)[np.arange(r), last]
        for j in range(n - 1):
            out[j][sl] = np.where(ok, offs[j][sl] + idx[j], curs[j][sl])
        out[-1][sl] = np.where(ok, offs[-1][sl] + k_best, curs[-1][sl])
    return out


def _outer_sum(arrays: list[np.ndarray]) -> np.ndarray:
    n = len(arrays)
    total = 0.0
    for j, a in enumerate(arrays):
        shape = [a.shape[0]] + [1] * n
        shape[j + 1] = a.shape[1]
        total = total + a.reshape(shape)
    return total


def _uneven_mask(curs: list[np.ndarray], widths: list[int]) -> np.ndarray:
    """True where two operands split a memory unevenly: a loop position one
    operand moves into this memory while another leaves it above.
    Grid axis j holds cut curs[j] + i."""
    n = len(curs)
    N = curs[0].shape[0]
    mask = np.zeros((N,) + tuple(widths), dtype=bool)
    for a, b in product(range(n), repeat=2):
        if a == b:
            continue
        shape_a = [1] * n
        shape_a[a] = widths[a]
        shape_b = [1] * n
        shape_b[b] = widths[b]
        ka = curs[a].reshape((N,) + (1,) * n) + np.arange(widths[a]).reshape(shape_a)[None]
        kb = curs[b].reshape((N,) + (1,) * n) + np.arange(widths[b]).reshape(shape_b)[None]
        ca = curs[a].reshape((N,) + (1,) * n)
        mask |= np.maximum(ca, kb) < ka
    return mask
