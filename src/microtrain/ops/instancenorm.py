"""InstanceNormalization: statistics per (sample, channel) over the spatial
dims, per-channel scale and bias. Runs on the GroupNorm kernel with
groups = channels."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import register


def _infer(node, ins):
    shape = ins[0].shape
    if len(shape) < 3:
        raise ShapeError(f"{node_label(node)}: input must have rank >= 3 (N, C, D1, ...), "
                         f"got {tuple(shape)}")
    for i, what in ((1, "scale"), (2, "bias")):
        if i >= len(ins) or not ins[i].present or size(ins[i].shape) != shape[1]:
            raise ShapeError(f"{node_label(node)}: {what} (input {i}) must hold {shape[1]} "
                             "values, one per channel")
    return [TensorType(shape, ins[0].dtype)]


def _reference(node, args):
    x, scale, bias = args[:3]
    eps = node.attr("epsilon", 1e-5)
    dims = tuple(range(2, x.ndim))
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    xf = x.astype(np.float64)
    mean = xf.mean(axis=dims, keepdims=True)
    xhat = (xf - mean) / np.sqrt(((xf - mean) ** 2).mean(axis=dims, keepdims=True) + eps)
    return [(xhat * scale.reshape(bshape) + bias.reshape(bshape)).astype(x.dtype)]


def _lower(node, ctx):
    for i in range(3):
        require_float(node, ctx.ins, i)
    shape = ctx.ins[0].shape
    eps = float_literal(node.attr("epsilon", 1e-5))
    par = ctx.par()   # multi-core: this core's (sample, channel) blocks
    return (f"mt_groupnorm_f32{'_par' if par else ''}({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{shape[0]}, {shape[1]}, 1, {size(shape[2:])}, 1, {eps}{', ' + par if par else ''});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


def _vjp(node, gb, dys):
    from .groupnorm import emit_groupnorm_grad
    return emit_groupnorm_grad(node, gb, dys, gb.shape(node.inputs[0])[1], per_channel=True)


register("InstanceNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True, vjp=_vjp)
