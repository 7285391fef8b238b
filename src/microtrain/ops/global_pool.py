"""GlobalAveragePool and GlobalMaxPool: mean/max over all spatial dims of an
(N, C, D1, ...) input, output (N, C, 1, ...). Lowered to the reduce kernel
viewing the input as (N*C, spatial)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .reduce import CODES as REDUCE_CODES
from .registry import register

KERNEL_OP = {"GlobalAveragePool": REDUCE_CODES["ReduceMean"],
             "GlobalMaxPool": REDUCE_CODES["ReduceMax"]}


def _infer(node, ins):
    shape = ins[0].shape
    if len(shape) < 3:
        raise ShapeError(f"{node_label(node)}: input must be (N, C, D1, ...), got {tuple(shape)}")
    return [TensorType(tuple(shape[:2]) + (1,) * (len(shape) - 2), ins[0].dtype)]


def _reference(node, args):
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if node.op == "GlobalAveragePool":
        return [x.astype(np.float64).mean(axis=axes, keepdims=True).astype(x.dtype)]
    return [x.max(axis=axes, keepdims=True)]


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    dims = [shape[0] * shape[1], size(shape[2:])]
    return (f"mt_reduce_f32({KERNEL_OP[node.op]}, {ctx.inp(0)}, {ctx.out(0)}, 2, "
            f"{ctx.table(dims)}, {ctx.table([0, 1])}, {dims[0]});")


def _macs(node, ins, outs):
    return size(ins[0].shape)


for _name in KERNEL_OP:
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=_macs)
