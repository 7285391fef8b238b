"""mt.QAdd(a, b) and mt.QMul(a, b): int8 element-wise ops with numpy
broadcasting and requantization (ops/_quant.py rule; scalar parameters as
attributes):
    QAdd: y = clamp(((a-za)*a_mul + (b-zb)*b_mul + add + 2^(shift-1)) >> shift, lo, hi)
    QMul: y = clamp(((a-za)*(b-zb)*mul + add + 2^(shift-1)) >> shift, lo, hi)
with za/zb = a_zero_point/b_zero_point; the output zero point is in add.
Kernel: mt_qbinary_s8 (runtime/mt_int8_eltwise.c), strided like mt_binary_f32."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ._common import broadcast_strides, size
from ._quant import check_int8, requant_params
from .registry import broadcast_shape, register

CODES = {"mt.QAdd": 0, "mt.QMul": 1}   # keep in sync with runtime/mt_int8.h


def _infer(node, ins):
    check_int8(node, ins, (0, 1))
    requant_params(node)
    return [TensorType(broadcast_shape(node, ins[0].shape, ins[1].shape), np.int8)]


def _reference(node, args):
    shift, lo, hi = requant_params(node)
    a = args[0].astype(np.int64) - int(node.attr("a_zero_point", 0))
    b = args[1].astype(np.int64) - int(node.attr("b_zero_point", 0))
    if node.op == "mt.QAdd":
        acc = a * int(node.attr("a_mul", 1)) + b * int(node.attr("b_mul", 1))
    else:
        acc = a * b * int(node.attr("mul", 1))
    rounding = (1 << (shift - 1)) if shift else 0
    y = (acc + int(node.attr("add", 0)) + rounding) >> shift
    return [np.clip(y, lo, hi).astype(np.int8)]


def _lower(node, ctx):
    shift, lo, hi = requant_params(node)
    shape = ctx.outs[0].shape or (1,)
    a_st = broadcast_strides(ctx.ins[0].shape, shape)
    b_st = broadcast_strides(ctx.ins[1].shape, shape)
    if node.op == "mt.QAdd":
        m1, m2 = int(node.attr("a_mul", 1)), int(node.attr("b_mul", 1))
    else:
        m1, m2 = int(node.attr("mul", 1)), 0
    return (f"mt_qbinary_s8({CODES[node.op]}, {ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {len(shape)}, "
            f"{ctx.table(shape)}, {ctx.table(a_st)}, {ctx.table(b_st)}, "
            f"{int(node.attr('a_zero_point', 0))}, {int(node.attr('b_zero_point', 0))}, "
            f"{m1}, {m2}, INT64_C({int(node.attr('add', 0))}), {shift}, {lo}, {hi});")


for _name in CODES:
    register(_name, infer=_infer, reference=_reference, lower=_lower,
             macs=lambda node, ins, outs: size(outs[0].shape))
