"""Reductions: ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd,
ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSum, ReduceLogSumExp; and the
index reductions ArgMax / ArgMin (one axis, int64 output, `mt_argreduce_f32`).

`axes` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an
optional constant input from then on. Empty axes reduce everything unless
noop_with_empty_axes=1, which reduces nothing (the element-wise part of the
op, e.g. x^2 for ReduceSumSquare, still applies, as in ONNX). One strided C
kernel (`mt_reduce_f32`) handles any set of axes after merging neighbours."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import norm_axis, register, require_const

# Kernel op codes; keep in sync with runtime/mt_reduce.h.
CODES = {"ReduceSum": 0, "ReduceMean": 1, "ReduceMax": 2, "ReduceMin": 3, "ReduceProd": 4,
         "ReduceL1": 5, "ReduceL2": 6, "ReduceSumSquare": 7, "ReduceLogSum": 8,
         "ReduceLogSumExp": 9}

# First opset where `axes` is an input instead of an attribute.
AXES_INPUT_OPSET = {name: 18 for name in CODES}
AXES_INPUT_OPSET["ReduceSum"] = 13


def _axes_operand(node, get):
    """The raw axes (list or array) or None when not given."""
    if node.opset < AXES_INPUT_OPSET[node.op]:
        return node.attr("axes")
    return get(1)


def reduced_axes(node, rank: int, axes) -> tuple[int, ...]:
    """Sorted, normalized axes to reduce (may be empty for the no-op case)."""
    axes = [] if axes is None else [int(a) for a in np.asarray(axes).reshape(-1)]
    if not axes:
        return () if int(node.attr("noop_with_empty_axes", 0)) else tuple(range(rank))
    for a in axes:
        if not -rank <= a < max(rank, 1):
            raise ShapeError(f"{node_label(node)}: axis {a} out of range for rank {rank}")
    norm = sorted({a % max(rank, 1) for a in axes})
    if len(norm) != len(axes):
        raise ShapeError(f"{node_label(node)}: axes {axes} repeat an axis")
    return tuple(norm) if rank else ()


def _out_shape(node, shape, axes) -> tuple[int, ...]:
    keep = int(node.attr("keepdims", 1))
    return tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)


def _infer(node, ins):
    shape = ins[0].shape
    axes = reduced_axes(node, len(shape), _axes_operand(
        node, lambda i: require_const(node, ins, i, "axes")))
    return [TensorType(_out_shape(node, shape, axes), ins[0].dtype)]


def _numpy_reduce(op, x, axes):
    if op == "ReduceSum":
        return np.sum(x, axis=axes, keepdims=True)
    if op == "ReduceMean":
        return np.mean(x, axis=axes, keepdims=True)
    if op in ("ReduceMax", "ReduceMin"):
        fn = np.max if op == "ReduceMax" else np.min
        if x.size:
            return fn(x, axis=axes, keepdims=True)
        # an empty reduction gives the identity: -inf/+inf, or the int limits
        info = np.iinfo(x.dtype) if np.issubdtype(x.dtype, np.integer) else None
        lo, hi = (info.min, info.max) if info else (-np.inf, np.inf)
        return fn(x, axis=axes, keepdims=True, initial=lo if op == "ReduceMax" else hi)
    if op == "ReduceProd":
        return np.prod(x, axis=axes, keepdims=True)
    if op == "ReduceL1":
        return np.sum(np.abs(x), axis=axes, keepdims=True)
    if op == "ReduceL2":
        return np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))
    if op == "ReduceSumSquare":
        return np.sum(np.square(x), axis=axes, keepdims=True)
    if op == "ReduceLogSum":
        return np.log(np.sum(x, axis=axes, keepdims=True))
    if x.size == 0:
        return np.log(np.sum(x, axis=axes, keepdims=True))  # log(0) = -inf
    m = np.max(x, axis=axes, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True))


def _reference(node, args):
    x = args[0]
    axes = reduced_axes(node, x.ndim, _axes_operand(
        node, lambda i: args[i] if i < len(args) else None))
    if np.issubdtype(x.dtype, np.floating):
        y = _numpy_reduce(node.op, x.astype(np.float64), axes)
    else:  # shape arithmetic folded at compile time; integer mean truncates
        y = _numpy_reduce(node.op, x, axes)
        y = np.trunc(y) if node.op == "ReduceMean" else y
    return [np.asarray(y).reshape(_out_shape(node, x.shape, axes)).astype(x.dtype)]


def merged_dims(shape, axes) -> tuple[list[int], list[int]]:
    """Drop size-1 dims and merge neighbours of the same kind (reduced/kept):
    the (shape, reduced-flags) the kernel walks. Never empty."""
    dims, flags = [], []
    for i, d in enumerate(shape):
        if d == 1:
            continue
        r = int(i in axes)
        if flags and flags[-1] == r:
            dims[-1] *= d
        else:
            dims.append(d)
            flags.append(r)
    return (dims, flags) if dims else ([1], [0])


def _lower(node, ctx):
    require_float(node, ctx.ins)
    shape = ctx.ins[0].shape
    axes = reduced_axes(node, len(shape), _axes_operand(
        node, lambda i: require_const(node, ctx.ins, i, "axes")))
    dims, flags = merged_dims(shape, axes)
    return (f"mt_reduce_f32({CODES[node.op]}, {ctx.inp(0)}, {ctx.out(0)}, {len(dims)}, "
            f"{ctx.table(dims)}, {ctx.table(flags)}, {size(ctx.outs[0].shape)});")


def _macs(node, ins, outs):
    return size(ins[0].shape)


# ---- gradients -------------------------------------------------------------------
# ReduceSum/ReduceMean: dy broadcast back (Reshape to keepdims, scale for the
# mean, Expand). ReduceMax/ReduceMin: mt.ReduceExtremeGrad(dy, x, y) splits dy
# evenly among tied extremes, as torch.amax/amin do (torch.max(dim) instead
# picks one); without ties both agree.

def _graph_axes(node, gb) -> tuple[int, ...]:
    rank = len(gb.shape(node.inputs[0]))

    def get(i):
        name = node.inputs[i] if i < len(node.inputs) else ""
        return gb.graph.constants.get(name) if name else None
    return reduced_axes(node, rank, _axes_operand(node, get))


def _vjp(node, gb, dys):
    x = node.inputs[0]
    shape = gb.shape(x)
    axes = _graph_axes(node, gb)
    keep_shape = tuple(1 if i in axes else d for i, d in enumerate(shape))
    dy = dys[0]
    if node.op in ("ReduceMax", "ReduceMin"):
        return [gb.emit("mt.ReduceExtremeGrad", [dy, x, node.outputs[0]], {"axes": list(axes)})]
    if gb.shape(dy) != keep_shape:
        dy = gb.emit("Reshape", [dy, gb.const(np.array(keep_shape, np.int64), np.int64)])
    if node.op == "ReduceMean" and axes:
        count = size(shape[a] for a in axes)
        dy = gb.emit("Mul", [dy, gb.const(1.0 / count)])
    if keep_shape != tuple(shape):
        dy = gb.emit("Expand", [dy, gb.const(np.array(shape, np.int64), np.int64)])
    return [dy]


def _extreme_grad_infer(node, ins):
    return [TensorType(ins[1].shape, ins[1].dtype)]


def _extreme_grad_reference(node, args):
    dy, x, y = args
    axes = tuple(node.attr("axes"))
    keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    hit = (x == y.reshape(keep)).astype(np.float64)
    ties = hit.sum(axis=axes, keepdims=True)
    return [(hit * dy.astype(np.float64).reshape(keep) / np.maximum(ties, 1)).astype(np.float32)]


def _extreme_grad_lower(node, ctx):
    dims, flags = merged_dims(ctx.ins[1].shape, tuple(node.attr("axes")))
    return (f"mt_reduce_extreme_f32_bwd({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"(float *){ctx.scratch}, {len(dims)}, {ctx.table(dims)}, {ctx.table(flags)}, "
            f"{size(ctx.ins[0].shape)});")


def _extreme_grad_scratch(node, ins, outs):
    return 4 * size(ins[0].shape)


register("mt.ReduceExtremeGrad", infer=_extreme_grad_infer, reference=_extreme_grad_reference,
         lower=_extreme_grad_lower, macs=_macs, scratch=_extreme_grad_scratch)

GRAD_OPS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin")
for _name in CODES:
    register(_name, infer=_infer, reference=_reference, lower=_lower, macs=_macs,
             vjp=_vjp if _name in GRAD_OPS else None)


# ---- ArgMax / ArgMin -----------------------------------------------------------

def _arg_geometry(node, shape) -> tuple[int, int, int, int]:
    """(axis, outer, n, inner) of the reduced axis."""
    rank = len(shape)
    if rank == 0:
        raise ShapeError(f"{node_label(node)}: input must have rank >= 1")
    axis = norm_axis(int(node.attr("axis", 0)), rank, node)
    if shape[axis] == 0:
        raise ShapeError(f"{node_label(node)}: cannot take {node.op} over the empty axis {axis}")
    return axis, size(shape[:axis]), shape[axis], size(shape[axis + 1:])


def _arg_infer(node, ins):
    axis = _arg_geometry(node, ins[0].shape)[0]
    return [TensorType(_out_shape(node, ins[0].shape, (axis,)), np.int64)]


def _arg_reference(node, args):
    x = args[0]
    axis = _arg_geometry(node, x.shape)[0]
    fn = np.argmax if node.op == "ArgMax" else np.argmin
    if int(node.attr("select_last_index", 0)):
        idx = x.shape[axis] - 1 - fn(np.flip(x, axis=axis), axis=axis)
    else:
        idx = fn(x, axis=axis)
    return [np.asarray(idx, dtype=np.int64).reshape(_out_shape(node, x.shape, (axis,)))]


def _arg_lower(node, ctx):
    require_float(node, ctx.ins)
    _, outer, n, inner = _arg_geometry(node, ctx.ins[0].shape)
    return (f"mt_argreduce_f32({ctx.inp(0)}, {ctx.out(0)}, {outer}, {n}, {inner}, "
            f"{int(node.op == 'ArgMin')}, {int(node.attr('select_last_index', 0))});")


for _name in ("ArgMax", "ArgMin"):
    register(_name, infer=_arg_infer, reference=_arg_reference, lower=_arg_lower, macs=_macs)
