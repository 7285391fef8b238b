"""A layer as a perfect loop nest over named dimensions, and the size of each
operand's tile for given per-dimension loop extents (vectorized)."""
from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd, prod

import numpy as np

from .errors import SchedulerError

OPERANDS = ("I", "W", "O")  # inputs, weights, outputs / partial sums


@dataclass(frozen=True)
class PrTerm:
    """A partially relevant data dimension, e.g. IX = stride*OX + dilation*FX.

    `limit` caps the count at the real tensor extent (padding is not stored)."""
    name: str
    dim_a: str
    coef_a: int
    dim_b: str
    coef_b: int
    limit: int


@dataclass
class Layer:
    """One conv/matmul-like layer: O[...] += W[...] * I[...].

    `relevant[op]` lists the loop dims that index operand `op` directly,
    `partial[op]` its partially relevant data dims (sliding windows)."""
    name: str
    sizes: dict[str, int]
    relevant: dict[str, tuple[str, ...]]
    partial: dict[str, tuple[PrTerm, ...]] = field(default_factory=dict)
    precision: dict[str, int] = field(default_factory=lambda: {"I": 8, "W": 8, "O": 16, "O_final": 8})
    op_type: str = "Conv"

    def __post_init__(self) -> None:
        for dim, size in self.sizes.items():
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise SchedulerError(f"layer '{self.name}': dimension {dim} has size {size!r}; sizes must be integers >= 1")
        for op in OPERANDS:
            used = set(self.relevant.get(op, ()))
            for term in self.partial.get(op, ()):
                used |= {term.dim_a, term.dim_b}
            missing = used - set(self.sizes)
            if missing:
                raise SchedulerError(f"layer '{self.name}': operand {op} uses unknown dimension(s) {sorted(missing)}")
        for key in ("I", "W", "O", "O_final"):
            if key not in self.precision:
                raise SchedulerError(f"layer '{self.name}': missing operand precision for {key}")

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(self.sizes)

    @property
    def macs(self) -> int:
        return prod(self.sizes.values())

    def is_relevant(self, op: str, dim: str) -> bool:
        """True if changing `dim` changes which elements of `op` are touched."""
        if dim in self.relevant.get(op, ()):
            return True
        return any(dim in (t.dim_a, t.dim_b) for t in self.partial.get(op, ()))

    def tensor_size(self, op: str, extents: dict[str, int]) -> int:
        """Elements of `op` touched by loops with the given extents (scalar form)."""
        arr = np.array([[extents.get(d, 1) for d in self.dims]], dtype=np.int64)
        return int(self.tensor_size_many(op, arr)[0])

    def tensor_size_many(self, op: str, extents: np.ndarray) -> np.ndarray:
        """Vectorized: `extents[..., j]` is the loop extent of `self.dims[j]`."""
        index = {d: j for j, d in enumerate(self.dims)}
        out = np.ones(extents.shape[:-1], dtype=np.float64)
        for dim in self.relevant.get(op, ()):
            out = out * extents[..., index[dim]]
        for t in self.partial.get(op, ()):
            out = out * np.minimum(
                distinct_sums(t.coef_a, extents[..., index[t.dim_a]], t.coef_b, extents[..., index[t.dim_b]]),
                t.limit,
            )
        return out


def distinct_sums(sa: int, a, sb: int, b):
    """Number of distinct values of sa*i + sb*j for i < a, j < b (a, b >= 1).

    Along one stride class the sums overlap once (b - sa/g) of the b values
    repeat for every step of i beyond the first (a - sb/g) — the closed form
    below; checked against brute force in the tests."""
    g = gcd(sa, sb)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return a * b - np.maximum(0.0, b - sa // g) * np.maximum(0.0, a - sb // g)


def conv_layer(name: str, *, k: int, c: int, oy: int, ox: int, fy: int = 1, fx: int = 1, b: int = 1,
               g: int = 1, stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
               iy: int | None = None, ix: int | None = None,
               precision: dict[str, int] | None = None, op_type: str = "Conv") -> Layer:
    """Grouped 2-D convolution; g > 1 with k = c = 1 is depthwise.

    iy/ix default to the unpadded window span (no padding)."""
    sy, sx = (stride, stride) if isinstance(stride, int) else stride
    dy, dx = (dilation, dilation) if isinstance(dilation, int) else dilation
    span_y = sy * (oy - 1) + dy * (fy - 1) + 1
    span_x = sx * (ox - 1) + dx * (fx - 1) + 1
    sizes = {"B": b, "G": g, "K": k, "C": c, "OY": oy, "OX": ox, "FY": fy, "FX": fx}
    return Layer(
        name=name,
        sizes=sizes,
        relevant={"I": ("B", "G", "C"), "W": ("G", "K", "C", "FY", "FX"), "O": ("B", "G", "K", "OY", "OX")},
        partial={"I": (PrTerm("IY", "OY", sy, "FY", dy, min(iy or span_y, span_y)),
                       PrTerm("IX", "OX", sx, "FX", dx, min(ix or span_x, span_x)))},
        precision=dict(precision or {"I": 8, "W": 8, "O": 16, "O_final": 8}),
        op_type=op_type,
    )


def matmul_layer(name: str, *, m: int, n: int, k: int, precision: dict[str, int] | None = None) -> Layer:
    """Y[m, n] = X[m, k] @ W[k, n] as a 1x1 conv: B=m rows, K=n outputs, C=k."""
    return Layer(
        name=name,
        sizes={"B": m, "K": n, "C": k},
        relevant={"I": ("B", "C"), "W": ("K", "C"), "O": ("B", "K")},
        precision=dict(precision or {"I": 8, "W": 8, "O": 16, "O_final": 8}),
        op_type="Gemm",
    )
