"""mt.PulpILayerNorm(x, weight, bias): the `iLayerNorm` node of the PULP
convention (Deeploy TargetLibraries/Generic/src/Layernorm_s8.c,
Layernorm_s8_s8), int8 -> int8 over the last axis (n values). Integer
weight/bias per channel, attributes log2D (= log2 of the node's D),
x_offset, lo/hi (the n_levels range):

    v = stored + x_offset;  mean = trunc(sum v / n)            (C division)
    var = floor(sum (v - mean)^2 / n) + 1;  std = floor(sqrt(var))
    y_j = clip(floor((trunc((v_j - mean) * w_j / std) + b_j) / 2^log2D), lo, hi)

trunc is C's division toward zero. Deeploy's kernel stores the last step
with an int8 cast; here it is clipped to [lo, hi] (the same whenever the
value is in range)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import size
from ._intmath import rows_view
from .ita_softmax import require_int8
from .registry import register


def _infer(node, ins):
    require_int8(node, ins)
    n = ins[0].shape[-1] if ins[0].shape else 1
    for i, what in ((1, "weight"), (2, "bias")):
        if ins[i].const is None or ins[i].dtype != np.int32 or np.asarray(ins[i].const).size != n:
            raise ShapeError(f"{node_label(node)}: {what} must be an int32 constant of {n} values "
                             f"(rows of {n})")
    return [TensorType(ins[0].shape, np.int8)]


def trunc_div(a, b):
    """C99 integer division (toward zero) on int64 arrays."""
    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) != (np.asarray(b) < 0), -q, q)


def pulp_ilayernorm(x, weight, bias, log2d, x_offset=0, lo=-128, hi=127):
    v = rows_view(x) + x_offset
    n = v.shape[1]
    mean = trunc_div(v.sum(axis=1, keepdims=True), n)
    c = v - mean
    var = (c * c).sum(axis=1) // n + 1
    std = np.array([math.isqrt(int(s)) for s in var], dtype=np.int64)[:, None]
    w = np.asarray(weight, dtype=np.int64).reshape(-1)
    b = np.asarray(bias, dtype=np.int64).reshape(-1)
    y = (trunc_div(c * w, std) + b) >> log2d
    return np.clip(y, lo, hi).astype(np.int8).reshape(np.shape(x))


def _reference(node, args):
    return [pulp_ilayernorm(args[0], args[1], args[2], int(node.attr("log2D")), int(node.attr("x_offset", 0)),
                            int(node.attr("lo", -128)), int(node.attr("hi", 127)))]


def _lower(node, ctx):
    shape = ctx.ins[0].shape
    n = shape[-1] if shape else 1
    return (f"mt_pulp_ilayernorm_i8({ctx.inp(0)}, {ctx.out(0)}, {size(shape) // n}, {n}, {ctx.inp(1)}, "
            f"{ctx.inp(2)}, {int(node.attr('log2D'))}, {int(node.attr('x_offset', 0))}, {int(node.attr('lo', -128))}, "
            f"{int(node.attr('hi', 127))});")


register("mt.PulpILayerNorm", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 3 * size(outs[0].shape))
