"""GlobalAveragePool, GlobalMaxPool, GlobalLpPool: mean / max / Lp norm over
all spatial dims of an (N, C, D1, ...) input, output (N, C, 1, ...). Lowered
to the reduce kernel viewing the input as (N*C, spatial); GlobalLpPool with
p other than 1 or 2 uses the LpPool kernel with one window over the input."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .avgpool import lp_order
from .maxpool import PoolGeometry, check_spatial_dims
from .reduce import CODES as REDUCE_CODES
from .registry import register

KERNEL_OP = {"GlobalAveragePool": REDUCE_CODES["ReduceMean"],
             "GlobalMaxPool": REDUCE_CODES["ReduceMax"]}
LP_REDUCE_OP = {1: REDUCE_CODES["ReduceL1"], 2: REDUCE_CODES["ReduceL2"]}


def _infer(node, ins):
    shape = ins[0].shape
    if node.op == "GlobalLpPool":
        lp_order(node)
    if len(shape) < 3:
        raise ShapeError(f"{node_label(node)}: input must be (N, C, D1, ...), got {tuple(shape)}")
    return [TensorType(tuple(shape[:2]) + (1,) * (len(shape) - 2), ins[0].dtype)]


def _reference(node, args):
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if node.op == "GlobalAveragePool":
        return [x.astype(np.float64).mean(axis=axes, keepdims=True).astype(x.dtype)]
    if node.op == "GlobalLpPool":
        p = lp_order(node)
        lp = (np.abs(x.astype(np.float64)) ** p).sum(axis=axes, keepdims=True) ** (1.0 / p)
        return [lp.astype(x.dtype)]
    return [x.max(axis=axes, keepdims=True)]


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    dims = [shape[0] * shape[1], size(shape[2:])]
    if node.op == "GlobalLpPool":
        p = lp_order(node)
        if p not in LP_REDUCE_OP:
            return _lower_lp_window(node, ctx, p)
        code = LP_REDUCE_OP[p]
    else:
        code = KERNEL_OP[node.op]
    return (f"mt_reduce_f32({code}, {ctx.inp(0)}, {ctx.out(0)}, 2, "
            f"{ctx.table(dims)}, {ctx.table([0, 1])}, {dims[0]});")


def _lower_lp_window(node, ctx, p):
    """General p: the LpPool kernel with a single window covering the input."""
    shape = ctx.ins[0].shape
    check_spatial_dims(node, shape)
    sp = list(shape[2:])
    n = len(sp)
    geom = PoolGeometry(sp, [1] * n, sp, [1] * n, [0] * n, [0] * n, [1] * n)
    return (f"mt_lppool_f32({ctx.inp(0)}, {ctx.out(0)}, {shape[0] * shape[1]}, "
            f"{ctx.table(geom.table())}, {float_literal(p)});")


def _macs(node, ins, outs):
    return size(ins[0].shape)


for _name in (*KERNEL_OP, "GlobalLpPool"):
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=_macs,
             vjp=(lambda node, gb, dys: _vjp(node, gb, dys)) if _name in KERNEL_OP else None)


# ---- gradients -------------------------------------------------------------------
# GlobalAveragePool: dy / spatial broadcast back (Mul + Expand).
# GlobalMaxPool: the reduce family's mt.ReduceExtremeGrad over the spatial axes
# (dy split evenly among tied maxima, as torch.amax).

def _vjp(node, gb, dys):
    x = node.inputs[0]
    shape = gb.shape(x)
    if node.op == "GlobalMaxPool":
        return [gb.emit("mt.ReduceExtremeGrad", [dys[0], x, node.outputs[0]],
                        {"axes": list(range(2, len(shape)))})]
    dy = gb.emit("Mul", [dys[0], gb.const(1.0 / size(shape[2:]))])
    return [gb.emit("Expand", [dy, gb.const(np.array(shape, np.int64), np.int64)])]
