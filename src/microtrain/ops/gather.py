"""Gather along any axis (negative allowed) with int64/int32 indices, constant
or run-time (the embedding lookup Gather(table, ids)). Lowered to `mt_gather`,
which clamps out-of-range run-time indices (see runtime/mt_shape.h)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import norm_axis, register


def _axis(node, rank: int) -> int:
    return norm_axis(int(node.attr("axis", 0)), rank, node)


def _check_index_dtype(node, dtype) -> None:
    if np.dtype(dtype) not in (np.dtype(np.int64), np.dtype(np.int32)):
        raise UnsupportedOpError(f"{node_label(node)}: indices of dtype {np.dtype(dtype)} are not "
                                 "supported; use int64 or int32")


def _infer(node, ins):
    data, idx = ins
    _check_index_dtype(node, idx.dtype)
    axis = _axis(node, len(data.shape))
    if idx.const is not None:
        _check_range(node, idx.const, data.shape[axis])
    return [TensorType(data.shape[:axis] + idx.shape + data.shape[axis + 1:], data.dtype)]


def _check_range(node, indices, dim: int) -> None:
    bad = indices[(indices < -dim) | (indices >= dim)]
    if bad.size:
        raise ShapeError(f"{node_label(node)}: index {int(bad.reshape(-1)[0])} is out of range "
                         f"for an axis of size {dim}")


def _reference(node, args):
    data, idx = args
    axis = _axis(node, data.ndim)
    _check_range(node, idx, data.shape[axis])
    return [np.take(data, idx.astype(np.int64), axis=axis)]


def _lower(node, ctx):
    data, idx = ctx.ins
    axis = _axis(node, len(data.shape))
    if size(ctx.outs[0].shape) == 0:
        return "/* empty output: nothing to copy */"
    return (f"mt_gather({ctx.inp(0)}, {ctx.inp(1)}, {idx.dtype.itemsize}, {ctx.out(0)}, "
            f"{data.dtype.itemsize}, {size(data.shape[:axis])}, {data.shape[axis]}, "
            f"{size(idx.shape)}, {size(data.shape[axis + 1:])});")


def _macs(node, ins, outs):
    return 0


# ---- gradient ----------------------------------------------------------------
# The data input's gradient is a scatter-add of dy into zeros of data's shape
# (mt.GatherGrad(dy, indices), attributes axis and shape); repeated indices add
# up. Only the indices stay alive for it, not the (maybe large) data. Indices
# are integers: they get no gradient.

def _vjp(node, gb, dys):
    if not gb.needs(0):
        return [None, None]
    data_shape = gb.shape(node.inputs[0])
    axis = _axis(node, len(data_shape))
    return [gb.emit("mt.GatherGrad", [dys[0], node.inputs[1]], {"axis": axis, "shape": list(data_shape)}),
            None]


def _grad_geometry(node, dy_shape, idx_shape) -> tuple[tuple[int, ...], int]:
    shape, axis = tuple(int(d) for d in node.attr("shape")), int(node.attr("axis"))
    if tuple(dy_shape) != shape[:axis] + tuple(idx_shape) + shape[axis + 1:]:
        raise ShapeError(f"{node_label(node)}: gradient of shape {tuple(dy_shape)} does not match a "
                         f"gather of {tuple(idx_shape)} indices from {shape} on axis {axis}")
    return shape, axis


def _grad_infer(node, ins):
    _check_index_dtype(node, ins[1].dtype)
    shape, _ = _grad_geometry(node, ins[0].shape, ins[1].shape)
    return [TensorType(shape, ins[0].dtype)]


def _grad_reference(node, args):
    dy, idx = args
    shape, axis = _grad_geometry(node, dy.shape, idx.shape)
    dim = shape[axis]
    # Same clamping as the kernels (mt_gather), so the gradient goes where the forward read.
    rows = np.clip(np.where(idx < 0, idx + dim, idx), 0, dim - 1).astype(np.int64).reshape(-1)
    outer, inner = size(shape[:axis]), size(shape[axis + 1:])
    dyv = dy.astype(np.float64).reshape(outer, rows.size, inner)
    dx = np.zeros((outer, dim, inner))
    np.add.at(dx, (slice(None), rows), dyv)
    return [dx.reshape(shape).astype(dy.dtype)]


def _grad_lower(node, ctx):
    require_float(node, ctx.ins, 0)
    dy, idx = ctx.ins
    shape, axis = _grad_geometry(node, dy.shape, idx.shape)
    return (f"mt_gather_bwd_f32({ctx.inp(0)}, {ctx.inp(1)}, {idx.dtype.itemsize}, {ctx.out(0)}, "
            f"{size(shape[:axis])}, {shape[axis]}, {size(idx.shape)}, {size(shape[axis + 1:])});")


def _grad_macs(node, ins, outs):
    return size(ins[0].shape)


register("Gather", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
register("mt.GatherGrad", infer=_grad_infer, reference=_grad_reference, lower=_grad_lower, macs=_grad_macs)
