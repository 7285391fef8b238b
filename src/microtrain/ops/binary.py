"""Element-wise binary ops with numpy broadcasting: Add, Sub, Mul, Div, Pow.
One generic strided C kernel (`mt_binary_f32`) with fast paths for equal
shapes and a scalar operand."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ._common import broadcast_strides, require_float, size
from .registry import broadcast_shape, register

# Kernel op codes; keep in sync with runtime/mt_eltwise.h.
CODES = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Pow": 4}

NUMPY = {
    "Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "Div": lambda a, b: (np.trunc(a / b).astype(a.dtype) if np.issubdtype(a.dtype, np.integer)
                         else np.divide(a, b)),
    "Pow": lambda a, b: np.power(a, b.astype(a.dtype) if np.issubdtype(a.dtype, np.floating) else b).astype(a.dtype),
}


def _infer(node, ins):
    return [TensorType(broadcast_shape(node, ins[0].shape, ins[1].shape), ins[0].dtype)]


def _reference(node, args):
    a, b = args
    if node.op != "Pow" and a.dtype != b.dtype:
        b = b.astype(a.dtype)
    return [np.asarray(NUMPY[node.op](a, b)).astype(a.dtype, copy=False)]


def _lower(node, ctx):
    require_float(node, ctx.ins, 0)
    out = ctx.outs[0]
    shape = out.shape or (1,)
    a_st = broadcast_strides(ctx.ins[0].shape, shape)
    b_st = broadcast_strides(ctx.ins[1].shape, shape)
    b_ptr = ctx.inp(1)
    if ctx.ins[1].dtype != np.float32:
        if ctx.ins[1].const is None:
            require_float(node, ctx.ins, 1)
        b_ptr = ctx.table(ctx.ins[1].const.astype(np.float32), "float")
    return (f"mt_binary_f32({CODES[node.op]}, {ctx.inp(0)}, {b_ptr}, {ctx.out(0)}, {len(shape)}, "
            f"{ctx.table(shape)}, {ctx.table(a_st)}, {ctx.table(b_st)});")


def _macs(node, ins, outs):
    return size(outs[0].shape)


def _vjp(node, gb, dys):
    """d(a op b): sums over broadcast axes via gb.unbroadcast."""
    (dy,) = dys
    a, b = node.inputs
    y = node.outputs[0]
    da = db = None
    op = node.op
    if op == "Add":
        da, db = dy if gb.needs(0) else None, dy if gb.needs(1) else None
    elif op == "Sub":
        da = dy if gb.needs(0) else None
        db = gb.emit("Neg", [dy]) if gb.needs(1) else None
    elif op == "Mul":
        da = gb.emit("Mul", [dy, b]) if gb.needs(0) else None
        db = gb.emit("Mul", [dy, a]) if gb.needs(1) else None
    elif op == "Div":
        da = gb.emit("Div", [dy, b]) if gb.needs(0) else None
        db = gb.emit("Neg", [gb.emit("Mul", [dy, gb.emit("Div", [y, b])])]) if gb.needs(1) else None
    elif op == "Pow":
        if gb.needs(0):  # b * a^(b-1)
            bm1 = gb.emit("Sub", [b, gb.const(1.0)])
            da = gb.emit("Mul", [dy, gb.emit("Mul", [b, gb.emit("Pow", [a, bm1])])])
        if gb.needs(1):  # y * ln(a)
            db = gb.emit("Mul", [dy, gb.emit("Mul", [y, gb.emit("Log", [a])])])
    return [gb.unbroadcast(da, gb.shape(a)) if da else None,
            gb.unbroadcast(db, gb.shape(b)) if db else None]


for _name in CODES:
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=_macs, inplace=True, vjp=_vjp)
