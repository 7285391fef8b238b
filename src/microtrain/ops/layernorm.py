"""LayerNormalization (opset 17): normalize over dims [axis, rank), then
y = xhat * scale + bias (bias optional; both broadcast to the normalized
shape). Optional outputs Mean and InvStdDev (shape x.shape[:axis] + 1s)."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import norm_axis, register


def _axis(node, rank):
    return norm_axis(int(node.attr("axis", -1)), rank, node)


def _stat_shape(shape, axis):
    return tuple(shape[:axis]) + (1,) * (len(shape) - axis)


def _check_affine(node, ins, axis):
    """scale/bias must broadcast to the normalized shape without growing it."""
    norm_shape = tuple(ins[0].shape[axis:])
    for i, what in ((1, "scale"), (2, "bias")):
        if i < len(ins) and ins[i].present:
            try:
                ok = np.broadcast_shapes(ins[i].shape, norm_shape) == norm_shape
            except ValueError:
                ok = False
            if not ok:
                raise ShapeError(f"{node_label(node)}: {what} shape {ins[i].shape} does not "
                                 f"broadcast to the normalized shape {norm_shape}")


def _infer(node, ins):
    shape = ins[0].shape
    axis = _axis(node, len(shape))
    _check_affine(node, ins, axis)
    stat = TensorType(_stat_shape(shape, axis), np.float32)
    return [TensorType(shape, ins[0].dtype), stat, stat][:len(node.outputs)]


def _reference(node, args):
    x = args[0]
    axis = _axis(node, x.ndim)
    eps = node.attr("epsilon", 1e-5)
    dims = tuple(range(axis, x.ndim))
    xf = x.astype(np.float64)
    mean = xf.mean(axis=dims, keepdims=True)
    invstd = 1.0 / np.sqrt(((xf - mean) ** 2).mean(axis=dims, keepdims=True) + eps)
    y = (xf - mean) * invstd * args[1]
    if len(args) > 2 and args[2] is not None:
        y = y + args[2]
    return [y.astype(x.dtype), mean.astype(np.float32), invstd.astype(np.float32)][:len(node.outputs)]


def _affine_operand(ctx, i, norm_shape):
    """Pointer to `inner` scale/bias values: the input itself when it already
    has that many, else a constant table broadcast at compile time."""
    if not ctx.has_input(i):
        return "NULL"
    require_float(ctx.node, ctx.ins, i)
    v = ctx.ins[i]
    if size(v.shape) == size(norm_shape):
        return ctx.inp(i)
    if v.const is None:
        raise UnsupportedOpError(
            f"{node_label(ctx.node)}: a broadcast {('scale', 'bias')[i - 1]} (shape {v.shape}) must "
            f"be a constant; give it the full normalized shape {tuple(norm_shape)}")
    return ctx.table(np.broadcast_to(v.const, norm_shape).astype(np.float32), "float")


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    axis = _axis(node, len(shape))
    norm_shape = tuple(shape[axis:])
    # ctx.out(k) counts only present outputs: map ONNX output slots to them.
    ptrs, k = [], 0
    for slot in range(3):
        if slot < len(node.outputs) and node.outputs[slot]:
            ptrs.append(ctx.out(k))
            k += 1
        else:
            ptrs.append("NULL")
    eps = float_literal(node.attr("epsilon", 1e-5))
    return (f"mt_layernorm_f32({ctx.inp(0)}, {_affine_operand(ctx, 1, norm_shape)}, "
            f"{_affine_operand(ctx, 2, norm_shape)}, {ptrs[0]}, {ptrs[1]}, {ptrs[2]}, "
            f"{size(shape[:axis])}, {size(norm_shape)}, {eps});")


def _macs(node, ins, outs):
    return 2 * size(outs[0].shape)


register("LayerNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True)
