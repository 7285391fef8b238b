"""mt.Requant(x, mul, add): int8 or int32 tensor -> int8 with the shared
requantization rule (ops/_quant.py, docs/quantization.md), per channel along
`axis`. Used where a scale changes without arithmetic (Concat inputs brought
to one scale), by imported PULP RequantShift nodes, and by the integer
Transformer ops. For int8 x, a zero point of x is folded into `add`."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from ._quant import check_channel_vector, requant_c_args, requant_params, requantize
from .registry import norm_axis, register


def _axis(node, rank) -> int:
    return norm_axis(int(node.attr("axis", 1 if rank > 1 else 0)), rank, node) if rank else 0


def _infer(node, ins):
    if ins[0].dtype not in (np.int8, np.int32):
        raise UnsupportedOpError(f"{node_label(node)}: input is {ins[0].dtype}; mt.Requant takes int8 or int32")
    requant_params(node)
    rank = len(ins[0].shape)
    channels = ins[0].shape[_axis(node, rank)] if rank else 1
    check_channel_vector(node, "mul", ins[1].const, channels)
    check_channel_vector(node, "add", ins[2].const, channels)
    return [TensorType(ins[0].shape, np.int8)]


def _reference(node, args):
    x, mul, add = args
    shift, lo, hi = requant_params(node)
    return [requantize(x, mul, add, shift, lo, hi, _axis(node, x.ndim))]


def _lower(node, ctx):
    shape = ctx.ins[0].shape
    axis = _axis(node, len(shape))
    outer = size(shape[:axis]) if shape else 1
    channels = shape[axis] if shape else 1
    inner = size(shape[axis + 1:]) if shape else 1
    kernel = "mt_requant_s8_s8" if ctx.ins[0].dtype == np.int8 else "mt_requant_s32_s8"
    return (f"{kernel}({ctx.inp(0)}, {ctx.out(0)}, {outer}, {channels}, {inner}, "
            f"{requant_c_args(ctx, 1, 2)});")


register("mt.Requant", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: size(outs[0].shape))
