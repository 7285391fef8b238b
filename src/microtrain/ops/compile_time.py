"""Ops evaluated only at compile time (`lower=None`): the integer shape
arithmetic of PyTorch exports (Shape -> Gather -> Unsqueeze -> Concat ->
Reshape), masks and comparisons on constants. `passes/infer.py` folds them
with these numpy references, which therefore work on int64 as well as float.
If one survives folding (it depends on a run-time input) the codegen stops
with a clear error. Cast alone also has a C lowering (float32/int32/int64)."""
from __future__ import annotations

import numpy as np
from onnx import helper

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from .registry import broadcast_shape, register, require_const, unsupported_attr


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


# ---- Shape / Size -------------------------------------------------------------

def _shape_range(node, rank: int) -> tuple[int, int]:
    """Shape's start/end attributes (opset 15), clamped like Python slices."""
    start, end = int(node.attr("start", 0)), node.attr("end")
    end = rank if end is None else int(end)
    start, end = (start + rank if start < 0 else start), (end + rank if end < 0 else end)
    start, end = min(max(start, 0), rank), min(max(end, 0), rank)
    return start, max(start, end)


def _shape_infer(node, ins):
    start, end = _shape_range(node, len(ins[0].shape))
    return [TensorType((end - start,), np.int64)]


def _shape_reference(node, args):
    start, end = _shape_range(node, args[0].ndim)
    return [np.array(args[0].shape[start:end], dtype=np.int64)]


def _size_infer(node, ins):
    return [TensorType((), np.int64)]


def _size_reference(node, args):
    return [np.array(args[0].size, dtype=np.int64)]


# ---- Cast -----------------------------------------------------------------------

# Kernel type codes; keep in sync with runtime/mt_shape.h.
CAST_CODES = {np.dtype(np.float32): 0, np.dtype(np.int32): 1, np.dtype(np.int64): 2}


def _cast_dtype(node) -> np.dtype:
    to = node.attr("to")
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(int(to)))
    except Exception:
        raise unsupported_attr(node, "to", to, "cast to a numeric type") from None
    if dtype.kind not in "biuf":
        raise unsupported_attr(node, "to", to, "cast to a numeric type")
    return dtype


def _cast_infer(node, ins):
    return [TensorType(ins[0].shape, _cast_dtype(node))]


def _cast_reference(node, args):
    x, dtype = args[0], _cast_dtype(node)
    if x.dtype.kind == "f" and dtype.kind in "iu":
        x = np.trunc(x)
    return [x.astype(dtype)]


def _cast_lower(node, ctx):
    src, dst = ctx.ins[0].dtype, ctx.outs[0].dtype
    if src not in CAST_CODES or dst not in CAST_CODES:
        raise UnsupportedOpError(f"{node_label(node)}: run-time Cast from {src} to {dst} is not "
                                 "supported (float32, int32 and int64 only)")
    return (f"mt_cast({ctx.inp(0)}, {CAST_CODES[src]}, {ctx.out(0)}, {CAST_CODES[dst]}, "
            f"{size(ctx.outs[0].shape)});")


# ---- ConstantOfShape / Range ------------------------------------------------------

def _fill_value(node) -> np.ndarray:
    value = node.attr("value")
    if value is None:
        return np.zeros((), np.float32)
    value = np.asarray(value)
    if value.size != 1:
        raise unsupported_attr(node, "value", value.tolist(), "give a one-element tensor")
    return value.reshape(())


def _constant_of_shape_infer(node, ins):
    shape = _ints(require_const(node, ins, 0, "the output shape"))
    return [TensorType(tuple(shape), _fill_value(node).dtype)]


def _constant_of_shape_reference(node, args):
    shape = _ints(args[0])
    if min(shape, default=0) < 0:
        raise ShapeError(f"{node_label(node)}: negative dimension in shape {shape}")
    value = _fill_value(node)
    return [np.full(shape, value, dtype=value.dtype)]


def _range_count(start, limit, delta) -> int:
    return max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)


def _range_infer(node, ins):
    bounds = [require_const(node, ins, i, w) for i, w in enumerate(("start", "limit", "delta"))]
    return [TensorType((_range_count(*bounds),), ins[0].dtype)]


def _range_reference(node, args):
    start, limit, delta = (np.asarray(a).reshape(()) for a in args)
    if delta == 0:
        raise ShapeError(f"{node_label(node)}: delta is 0")
    n = _range_count(start, limit, delta)
    return [(start + delta * np.arange(n)).astype(start.dtype)]


# ---- element-wise with broadcasting: Where, comparisons, logic, variadic -----------

def _broadcast_infer(dtype_of):
    def infer(node, ins):
        shape = broadcast_shape(node, *(v.shape for v in ins if v.present))
        return [TensorType(shape, dtype_of([v.dtype for v in ins if v.present]))]
    return infer


def _same_dtype(dtypes):
    return dtypes[0]


def _bool(dtypes):
    return np.dtype(np.bool_)


def _where_dtype(dtypes):
    return dtypes[1]


ELEMENTWISE = {
    # name: (numpy function over all inputs, output dtype rule)
    "Where": (lambda c, a, b: np.where(c.astype(bool), a, b), _where_dtype),
    "Equal": (np.equal, _bool),
    "Less": (np.less, _bool),
    "LessOrEqual": (np.less_equal, _bool),
    "Greater": (np.greater, _bool),
    "GreaterOrEqual": (np.greater_equal, _bool),
    "Not": (np.logical_not, _bool),
    "And": (np.logical_and, _bool),
    "Or": (np.logical_or, _bool),
    "Xor": (np.logical_xor, _bool),
    "Floor": (np.floor, _same_dtype),
    "Ceil": (np.ceil, _same_dtype),
    "Max": (lambda *xs: _variadic(np.maximum, xs), _same_dtype),
    "Min": (lambda *xs: _variadic(np.minimum, xs), _same_dtype),
    "Sum": (lambda *xs: _variadic(np.add, xs), _same_dtype),
    "Mean": (lambda *xs: _variadic(np.add, xs) / len(xs), _same_dtype),
}


def _variadic(fn, xs):
    out = xs[0]
    for x in xs[1:]:
        out = fn(out, x)
    return out


def _elementwise_reference(node, args):
    fn, dtype_of = ELEMENTWISE[node.op]
    args = [a for a in args if a is not None]
    out = np.asarray(fn(*args))
    return [out.astype(dtype_of([a.dtype for a in args]), copy=False)]


def _no_macs(node, ins, outs):
    return 0


register("Shape", infer=_shape_infer, reference=_shape_reference, macs=_no_macs, types_only=True)
register("Size", infer=_size_infer, reference=_size_reference, macs=_no_macs, types_only=True)
register("Cast", infer=_cast_infer, reference=_cast_reference, lower=_cast_lower, macs=_no_macs)
register("ConstantOfShape", infer=_constant_of_shape_infer, reference=_constant_of_shape_reference,
         macs=_no_macs)
register("Range", infer=_range_infer, reference=_range_reference, macs=_no_macs)
for _name, (_fn, _dtype_of) in ELEMENTWISE.items():
    register(_name, infer=_broadcast_infer(_dtype_of), reference=_elementwise_reference, macs=_no_macs)
