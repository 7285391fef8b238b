"""Integer arithmetic shared by the integer-only Transformer ops (ITA / I-BERT):
floor and round-half-up shifts, the integer square root, and the fixed-point
multiplier that carries a float scale ratio into integer attributes. The C
kernels (runtime/mt_int_attn.c) implement the same functions."""
from __future__ import annotations

import math

import numpy as np

from ..errors import MicrotrainError

# Fixed-point multipliers are 15-bit (2^14 <= mult < 2^15): products with the
# kernels' bounded accumulators stay far inside int64, and 15 bits are more
# than an int8 output can resolve.
MULT_BITS = 15
MAX_SHIFT = 62


def floor_shift(v, s):
    """floor(v / 2^s) (numpy's >> on signed ints is exactly that)."""
    return np.asarray(v, dtype=np.int64) >> np.asarray(s, dtype=np.int64)


def round_shift(v, s):
    """round-half-up(v / 2^s) = floor((v + 2^(s-1)) / 2^s); s >= 0."""
    v = np.asarray(v, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return (v + half) >> s


def isqrt_newton(n: np.ndarray) -> np.ndarray:
    """floor(sqrt(n)) for int64 n >= 0 by Newton's iteration from 2^ceil(bits/2)
    (an upper bound, so the iterates decrease monotonically to the floor root);
    stops when an iterate no longer decreases, as in I-BERT."""
    n = np.asarray(n, dtype=np.int64)
    bits = np.array([int(v).bit_length() for v in n.reshape(-1)], dtype=np.int64).reshape(n.shape)
    x = np.left_shift(np.int64(1), (bits + 1) // 2)
    x = np.where(n == 0, 0, x)
    while True:
        safe = np.maximum(x, 1)
        nxt = np.where(n == 0, 0, (x + n // safe) // 2)
        done = nxt >= x
        if np.all(done):
            return x
        x = np.where(done, x, nxt)


def fixed_point(ratio: float, what: str) -> tuple[int, int]:
    """(mult, shift) with ratio ~= mult / 2^shift, 2^14 <= mult < 2^15."""
    if not (ratio > 0 and math.isfinite(ratio)):
        raise MicrotrainError(f"{what}: scale ratio {ratio!r} must be positive and finite")
    mant, exp = math.frexp(ratio)          # ratio = mant * 2^exp, 0.5 <= mant < 1
    mult = int(round(mant * (1 << MULT_BITS)))
    shift = MULT_BITS - exp
    if mult == 1 << MULT_BITS:
        mult //= 2
        shift -= 1
    if not 0 <= shift <= MAX_SHIFT:
        raise MicrotrainError(f"{what}: scale ratio {ratio:g} is out of the fixed-point range "
                              f"(shift {shift} not in [0, {MAX_SHIFT}]); check the calibrated scales")
    return mult, shift


def clip_int8(v):
    return np.clip(v, -128, 127).astype(np.int8)


def rows_view(x: np.ndarray) -> np.ndarray:
    """(rows, n) int64 view of a tensor normalized over its last axis."""
    n = x.shape[-1] if x.ndim else 1
    return x.astype(np.int64).reshape(-1, n)
