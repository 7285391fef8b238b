"""mt.IBertGelu: I-BERT's integer GELU, int8 -> int8 (Kim et al. 2021).

GELU(x) = x/2 * (1 + erf(x / sqrt 2)), erf(u) ~= sign(u) [a (min(|u|, -b) + b)^2 + 1],
a = -0.2888, b = -1.769. With S' = S / sqrt 2 and q the int8 input:

    q = x - x_zero_point
    T = (min(|q|, -q_b) + q_b)^2 + q_c          (<= 0; erf ~= sign(q) * |a| S'^2 * -T)
    acc = q * (sign(q) * -T + q_one)            (scale S * |a| S'^2 / 2)
    y = clip(round_half_up(acc * mult / 2^shift) + y_zero_point)

Attributes (from the input/output scales by `ibert_gelu_params`):
q_b = floor(b / S'), q_c = floor(1 / (a S'^2)), q_one = floor(1 / (|a| S'^2)),
mult/shift = S |a| S'^2 / (2 S_out) as a 15-bit fixed-point multiplier."""
from __future__ import annotations

import math

import numpy as np

from ..errors import MicrotrainError
from ..ir import TensorType
from ._common import size
from ._intmath import clip_int8, fixed_point, round_shift
from .ita_softmax import require_int8
from .registry import register

ERF_A, ERF_B = -0.2888, -1.769


def ibert_gelu_params(in_scale: float, out_scale: float) -> dict:
    s = float(in_scale) / math.sqrt(2.0)
    if not s > 0 or -math.floor(ERF_B / s) > (1 << 14):
        raise MicrotrainError(f"I-BERT GELU: input scale {in_scale:g} is too small or not positive")
    s_erf = -ERF_A * s * s
    mult, shift = fixed_point(float(in_scale) * s_erf / (2.0 * float(out_scale)), "I-BERT GELU")
    return {"q_b": math.floor(ERF_B / s), "q_c": math.floor(1.0 / (ERF_A * s * s)),
            "q_one": math.floor(1.0 / s_erf), "mult": mult, "shift": shift}


def _infer(node, ins):
    require_int8(node, ins)
    return [TensorType(ins[0].shape, np.int8)]


def ibert_gelu(x, q_b, q_c, q_one, mult, shift, x_zero_point=0, y_zero_point=0):
    q = np.asarray(x).astype(np.int64) - x_zero_point
    t = (np.minimum(np.abs(q), -q_b) + q_b) ** 2 + q_c
    acc = q * (np.sign(q) * -t + q_one)
    return clip_int8(round_shift(acc * mult, shift) + y_zero_point)


def _reference(node, args):
    a = node.attrs
    return [ibert_gelu(args[0], a["q_b"], a["q_c"], a["q_one"], a["mult"], a["shift"],
                       int(a.get("x_zero_point", 0)), int(a.get("y_zero_point", 0)))]


def _lower(node, ctx):
    require_int8(node, ctx.ins)
    a = node.attrs
    return (f"mt_ibert_gelu_i8({ctx.inp(0)}, {ctx.out(0)}, {size(ctx.ins[0].shape)}, "
            f"{a['q_b']}, {a['q_c']}, {a['q_one']}, {a['mult']}, {a['shift']}, "
            f"{int(a.get('x_zero_point', 0))}, {int(a.get('y_zero_point', 0))});")


register("mt.IBertGelu", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 3 * size(outs[0].shape), inplace=True)
