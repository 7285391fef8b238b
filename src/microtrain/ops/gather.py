"""Gather along any axis (negative allowed) with int64/int32 indices, constant
or run-time (the embedding lookup Gather(table, ids)). Lowered to `mt_gather`,
which clamps out-of-range run-time indices (see runtime/mt_shape.h)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
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


register("Gather", infer=_infer, reference=_reference, lower=_lower, macs=_macs)
