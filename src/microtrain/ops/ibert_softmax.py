"""mt.IBertSoftmax: I-BERT's integer softmax over the last axis (Kim et al. 2021).

Input int8 q at scale S; output uint8, y / 255 ~= probability (as ITA).
With d = q - max(q) <= 0 (real value d*S = -z*ln2 + p, p in (-ln2, 0]):

    z = floor(-d / q_ln2);  q_p = d + z * q_ln2
    exp ~= ((q_p + q_b)^2 + q_c) >> z        (scale 0.3585 * S^2)
    y_j = (e_j * floor(255 * 2^32 / sum e)) >> 32

Attributes (from S by `ibert_softmax_params`): q_ln2 = floor(ln2/S),
q_b = floor(1.353/S), q_c = floor(0.344 / (0.3585 S^2)). z clamps at 31.
`signed_output` = 1: int8 y - 128 (as mt.ITASoftmax). The result does not
depend on the input's zero point (only q - max is used)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import MicrotrainError
from ._common import size
from ._intmath import rows_view
from .ita_softmax import probs_type, require_int8, to_signed
from .registry import register

EXP_A, EXP_B, EXP_C = 0.3585, 1.353, 0.344
MAX_Q_B = 1 << 14   # keeps (q_p + q_b)^2 + q_c below 2^31


def ibert_softmax_params(in_scale: float) -> dict:
    """Integer attributes for logits at `in_scale` per LSB."""
    s = float(in_scale)
    q_ln2 = math.floor(math.log(2.0) / s) if s > 0 else 0
    if q_ln2 < 1 or math.floor(EXP_B / s) > MAX_Q_B:
        raise MicrotrainError(f"I-BERT softmax: logit scale {s:g} is outside "
                              f"[{EXP_B / MAX_Q_B:.3g}, ln2]; use softmax='ita' or recalibrate")
    return {"q_ln2": q_ln2, "q_b": math.floor(EXP_B / s), "q_c": math.floor(EXP_C / (EXP_A * s * s))}


def _infer(node, ins):
    require_int8(node, ins, "the logits")
    return [probs_type(node, ins)]


def ibert_exp(d: np.ndarray, q_ln2: int, q_b: int, q_c: int) -> np.ndarray:
    """Integer exp of d <= 0 (int64), at scale 0.3585 * S^2."""
    z = (-d) // q_ln2
    q_p = d + z * q_ln2
    return ((q_p + q_b) ** 2 + q_c) >> np.minimum(z, 31)


def ibert_softmax(x: np.ndarray, q_ln2: int, q_b: int, q_c: int) -> np.ndarray:
    """The golden model: int8 array -> uint8 array, over the last axis."""
    rows = rows_view(x)
    e = ibert_exp(rows - rows.max(axis=1, keepdims=True), q_ln2, q_b, q_c)
    factor = (255 << 32) // e.sum(axis=1, keepdims=True)
    return ((e * factor) >> 32).astype(np.uint8).reshape(x.shape)


def _reference(node, args):
    return [to_signed(node, ibert_softmax(args[0], node.attr("q_ln2"), node.attr("q_b"), node.attr("q_c")))]


def _lower(node, ctx):
    require_int8(node, ctx.ins, "the logits")
    shape = ctx.ins[0].shape
    n = shape[-1] if shape else 1
    return (f"mt_ibert_softmax_i8({ctx.inp(0)}, (uint8_t *){ctx.out(0)}, {size(shape) // n}, {n}, "
            f"{node.attr('q_ln2')}, {node.attr('q_b')}, {node.attr('q_c')}, "
            f"{int(node.attr('signed_output', 0))});")


def _macs(node, ins, outs):
    return 3 * size(outs[0].shape)


register("mt.IBertSoftmax", infer=_infer, reference=_reference, lower=_lower, macs=_macs)
