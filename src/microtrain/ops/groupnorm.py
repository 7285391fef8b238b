"""GroupNormalization: statistics per (sample, group of C/num_groups
channels), then a per-group (opset 18) or per-channel (opset 21) affine.
Shares its kernel with InstanceNormalization (groups = channels)."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import register


def _groups(node, shape) -> int:
    g = int(node.attr("num_groups", 0))
    if len(shape) < 2 or g <= 0 or shape[1] % g:
        raise ShapeError(f"{node_label(node)}: num_groups={g} must divide the channel count "
                         f"(axis 1 of input shape {tuple(shape)})")
    return g


def affine_per_channel(node) -> bool:
    """Opset 21 made scale/bias per channel; opset 18 had them per group."""
    return node.opset >= 21


def _infer(node, ins):
    shape = ins[0].shape
    g = _groups(node, shape)
    want = shape[1] if affine_per_channel(node) else g
    for i, what in ((1, "scale"), (2, "bias")):
        if i >= len(ins) or not ins[i].present or size(ins[i].shape) != want:
            raise ShapeError(f"{node_label(node)}: {what} (input {i}) must hold {want} values "
                             f"({'one per channel' if affine_per_channel(node) else 'one per group'}"
                             f" at opset {node.opset})")
    return [TensorType(shape, ins[0].dtype)]


def _reference(node, args):
    x, scale, bias = args[:3]
    n, c = x.shape[:2]
    g = _groups(node, x.shape)
    eps = node.attr("epsilon", 1e-5)
    xg = x.astype(np.float64).reshape(n, g, -1)
    mean = xg.mean(axis=2, keepdims=True)
    xhat = (xg - mean) / np.sqrt(((xg - mean) ** 2).mean(axis=2, keepdims=True) + eps)
    if affine_per_channel(node):
        y = xhat.reshape(n, c, -1) * scale.reshape(1, c, 1) + bias.reshape(1, c, 1)
    else:
        y = xhat * scale.reshape(1, g, 1) + bias.reshape(1, g, 1)
    return [y.reshape(x.shape).astype(x.dtype)]


def _lower(node, ctx):
    for i in range(3):
        require_float(node, ctx.ins, i)
    shape = ctx.ins[0].shape
    g = _groups(node, shape)
    eps = float_literal(node.attr("epsilon", 1e-5))
    return (f"mt_groupnorm_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{shape[0]}, {g}, {shape[1] // g}, {size(shape[2:])}, "
            f"{int(affine_per_channel(node))}, {eps});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


register("GroupNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True)
