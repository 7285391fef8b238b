"""Expand: numpy-style broadcast of the input to a constant shape, lowered to
the strided copy with stride 0 on broadcast axes."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ._common import broadcast_strides
from .registry import broadcast_shape, register, require_const
from .slice import lower_strided_copy


def _out_shape(node, in_shape, shape) -> tuple[int, ...]:
    target = tuple(int(d) for d in np.asarray(shape).reshape(-1))
    return broadcast_shape(node, tuple(in_shape), target)


def _infer(node, ins):
    shape = require_const(node, ins, 1, "the target shape")
    return [TensorType(_out_shape(node, ins[0].shape, shape), ins[0].dtype)]


def _reference(node, args):
    x, shape = args
    return [np.broadcast_to(x, _out_shape(node, x.shape, shape)).copy()]


def _lower(node, ctx):
    out_shape = ctx.outs[0].shape
    strides = broadcast_strides(ctx.ins[0].shape, out_shape)
    return lower_strided_copy(node, ctx, out_shape, strides, 0)


def _macs(node, ins, outs):
    return 0


def _vjp(node, gb, dys):
    """dx = dy summed over the axes Expand broadcast."""
    return [gb.unbroadcast(dys[0], gb.shape(node.inputs[0])), None]


register("Expand", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
