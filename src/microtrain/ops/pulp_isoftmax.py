"""mt.PulpISoftmax: the `iSoftmax` node of the PULP convention (QuantLib's
I-BERT-style softmax as Deeploy runs it, TargetLibraries/Generic/src/
Softmax_s8.c, Softmax_s8_s8), int8 -> int8 over the last axis. Attributes
coeffA, coeffB, coeffC, log2, n_levels (integers). Per row, d_j = x_j - max:

    z = floor(-d / log2), clamped to [0, 31];  p = d + z * log2
    e_j = (coeffA * (p + coeffB)^2 + coeffC) >> z
    out_j = floor(e_j * (n_levels - 1) / sum_j e_j) - n_levels / 2   (int8)

e_j depends only on max - x_j in 0..255, so the golden model is a 256-entry
table. `isoftmax_table` also checks that every intermediate fits Deeploy's
int32/uint32 arithmetic for this row length, so the C (int64 here) and
Deeploy's kernel compute the same numbers; the import refuses parameters
that would overflow there."""
from __future__ import annotations

import numpy as np

from ..errors import MicrotrainError, node_label
from ..ir import TensorType
from ._common import size
from ._intmath import rows_view
from .ita_softmax import require_int8
from .registry import register

ATTRS = ("coeffA", "coeffB", "coeffC", "log2", "n_levels")


def isoftmax_table(node, n: int) -> np.ndarray:
    """e(d) for d = max - x in 0..255, after the overflow checks."""
    a, b, c, log2, levels = (int(node.attr(k)) for k in ATTRS)
    if log2 < 2 or not 2 <= levels <= 256:
        raise MicrotrainError(f"{node_label(node)}: log2={log2} must be >= 2 and n_levels={levels} in 2..256")
    d = np.arange(256, dtype=np.int64)
    z = np.clip(d // log2, 0, 31)
    p = -d + z * log2
    square = a * (p + b) ** 2
    v = square + c
    if np.abs(square).max() >= 1 << 31 or v.min() < 0:
        raise MicrotrainError(f"{node_label(node)}: coeffA*(p+coeffB)^2 + coeffC leaves int32 or goes "
                              "negative for some input; the exporter's coefficients do not fit int8 logits")
    e = v >> z
    if e.max() * max(n, levels - 1) >= 1 << 32:
        raise MicrotrainError(f"{node_label(node)}: the exp sum of {n} values overflows uint32 "
                              f"(max term {int(e.max())}); not representable as Deeploy computes it")
    return e


def _infer(node, ins):
    require_int8(node, ins, "the input")
    for k in ATTRS:
        if node.attr(k) is None:
            raise MicrotrainError(f"{node_label(node)}: attribute {k} is missing")
    isoftmax_table(node, ins[0].shape[-1] if ins[0].shape else 1)
    return [TensorType(ins[0].shape, np.int8)]


def pulp_isoftmax(node, x: np.ndarray) -> np.ndarray:
    rows = rows_view(x)
    e = isoftmax_table(node, rows.shape[1])[rows.max(axis=1, keepdims=True) - rows]
    levels = int(node.attr("n_levels"))
    y = e * (levels - 1) // e.sum(axis=1, keepdims=True) - levels // 2
    return y.astype(np.int8).reshape(np.shape(x))


def _reference(node, args):
    return [pulp_isoftmax(node, args[0])]


def _lower(node, ctx):
    shape = ctx.ins[0].shape
    n = shape[-1] if shape else 1
    a, b, c, log2, levels = (int(node.attr(k)) for k in ATTRS)
    return (f"mt_pulp_isoftmax_i8({ctx.inp(0)}, {ctx.out(0)}, {size(shape) // n}, {n}, {a}, {b}, "
            f"INT64_C({c}), {log2}, {levels});")


register("mt.PulpISoftmax", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 4 * size(outs[0].shape))
