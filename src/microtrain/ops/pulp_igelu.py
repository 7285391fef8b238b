"""mt.PulpIGelu: the `iGELU` node of the PULP convention (Deeploy
TargetLibraries/Generic/src/GELU_s8.c, GELU_s8_s32), int8 -> int32; the
RequantShift that follows it in an export becomes an mt.Requant. Attributes
b (negative: -clip point of the erf polynomial), one, x_offset (the input's
offset: stored int8 + x_offset = the integer value):

    x = stored + x_offset;  q = min(|x|, -b);  L = sign(x) * (one - (q + b)^2)
    y = x * floor((one + L) / 2)

Deeploy computes this in int32; the import checks |x| * one < 2^31 so the
int64 golden model and C agree with it."""
from __future__ import annotations

import numpy as np

from ..errors import MicrotrainError, node_label
from ..ir import TensorType
from ._common import size
from .ita_softmax import require_int8
from .registry import register


def _params(node):
    b, one, off = int(node.attr("b")), int(node.attr("one")), int(node.attr("x_offset", 0))
    if b > 0 or b * b >= 1 << 31 or not 0 < one < 1 << 22:
        raise MicrotrainError(f"{node_label(node)}: iGELU needs b <= 0 and 0 < one < 2^22 "
                              f"(got b={b}, one={one})")
    return b, one, off


def _infer(node, ins):
    require_int8(node, ins)
    _params(node)
    return [TensorType(ins[0].shape, np.int32)]


def pulp_igelu(x: np.ndarray, b: int, one: int, x_offset: int = 0) -> np.ndarray:
    v = x.astype(np.int64) + x_offset
    q = np.minimum(np.abs(v), -b)
    ell = np.sign(v) * (one - (q + b) ** 2)
    return (v * ((one + ell) >> 1)).astype(np.int32)


def _reference(node, args):
    return [pulp_igelu(args[0], *_params(node))]


def _lower(node, ctx):
    b, one, off = _params(node)
    return f"mt_pulp_igelu_i8({ctx.inp(0)}, {ctx.out(0)}, {size(ctx.ins[0].shape)}, {b}, {one}, {off});"


register("mt.PulpIGelu", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 2 * size(outs[0].shape))
