"""mt.ITASoftmax: ITA's integer streaming softmax over the last axis.

Input: int8 logits at the fixed scale 8 / (256 * log2 e) ~= 0.02166 per LSB,
so exp(x_j - max) ~= 2^-round((max - x_j) / 32) and exp needs only shifts.
Output: uint8, y / 255 ~= probability. Per row, in groups of 16 columns:

    max = -128, sum = 0 (unsigned)
    group max > max:  sum >>= round((gmax - max) / 32); max = gmax
    sum += sum_j 256 >> round((max - x_j) / 32)
    inv = floor(65280 / sum);  y_j = inv >> round((max - x_j) / 32)

Rounding is half up ((d + 16) >> 5 for d >= 0); shifts clamp at 31. The
quantizer must requantize Q.K^T to ITA_LOGIT_SCALE before this op.
No attributes: the scale is part of the rule."""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from ._intmath import rows_view
from .registry import register

ITA_LOGIT_SCALE = 8.0 / (256.0 * math.log2(math.e))
GROUP = 16


def require_int8(node, ins, what="input"):
    if ins[0].dtype != np.int8:
        raise UnsupportedOpError(f"{node_label(node)}: {what} must be int8, got {ins[0].dtype}; "
                                 "quantize the model first (microtrain.quantize)")


def probs_type(node, ins) -> TensorType:
    """uint8 probabilities, or int8 (y - 128) with signed_output = 1."""
    return TensorType(ins[0].shape, np.int8 if node.attr("signed_output", 0) else np.uint8)


def to_signed(node, y: np.ndarray) -> np.ndarray:
    return (y.astype(np.int16) - 128).astype(np.int8) if node.attr("signed_output", 0) else y


def _infer(node, ins):
    require_int8(node, ins, "the logits")
    return [probs_type(node, ins)]


def _shift(d):
    """round-half-up(d / 32) for d >= 0, clamped at 31."""
    return np.minimum((d + 16) >> 5, 31)


def ita_softmax(x: np.ndarray) -> np.ndarray:
    """The golden model: int8 array -> uint8 array, over the last axis."""
    rows = rows_view(x)
    n = rows.shape[1]
    mx = np.full(rows.shape[0], -128, dtype=np.int64)
    total = np.zeros(rows.shape[0], dtype=np.int64)
    for g in range(0, n, GROUP):
        block = rows[:, g:g + GROUP]
        gmax = block.max(axis=1)
        grew = gmax > mx
        total = np.where(grew, total >> _shift(np.maximum(gmax - mx, 0)), total)
        mx = np.maximum(mx, gmax)
        total = total + (256 >> _shift(mx[:, None] - block)).sum(axis=1)
    inv = 65280 // total
    y = inv[:, None] >> _shift(mx[:, None] - rows)
    return y.astype(np.uint8).reshape(x.shape)


def _reference(node, args):
    return [to_signed(node, ita_softmax(args[0]))]


def _lower(node, ctx):
    require_int8(node, ctx.ins, "the logits")
    shape = ctx.ins[0].shape
    n = shape[-1] if shape else 1
    return (f"mt_ita_softmax_i8({ctx.inp(0)}, (uint8_t *){ctx.out(0)}, {size(shape) // n}, {n}, "
            f"{int(node.attr('signed_output', 0))});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


register("mt.ITASoftmax", infer=_infer, reference=_reference, lower=_lower, macs=_macs)
