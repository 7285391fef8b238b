"""Slice (starts/ends/axes/steps, negative and clamped bounds, negative
steps), lowered to the generic strided copy `mt_copy_strided`. Also home of
the strided-copy helpers that Expand and Transpose share."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from .registry import norm_axis, register, require_const

MAX_RANK = 8  # MT_MAX_RANK in runtime/mt_kernels.h


def dense_strides(shape) -> list[int]:
    strides, acc = [0] * len(shape), 1
    for ax in range(len(shape) - 1, -1, -1):
        strides[ax] = acc
        acc *= shape[ax]
    return strides


def collapse_strided(out_shape, strides) -> tuple[list[int], list[int]]:
    """Drop size-1 axes and merge neighbours that are contiguous in the input,
    so the kernel's inner row (one memcpy when its stride is 1) is long."""
    merged: list[list[int]] = []
    for dim, stride in zip(out_shape, strides):
        if dim == 1:
            continue
        if merged and merged[-1][1] == stride * dim:
            merged[-1] = [merged[-1][0] * dim, stride]
        else:
            merged.append([dim, stride])
    if not merged:
        return [1], [1]
    return [m[0] for m in merged], [m[1] for m in merged]


def lower_strided_copy(node, ctx, out_shape, strides, offset: int) -> str:
    """C call copying x viewed through (out_shape, strides, offset) into y."""
    if size(out_shape) == 0:
        return "/* empty output: nothing to copy */"
    shape, st = collapse_strided(out_shape, strides)
    if len(shape) > MAX_RANK:
        raise UnsupportedOpError(f"{node_label(node)}: rank {len(shape)} exceeds the kernels' "
                                 f"maximum rank {MAX_RANK}")
    return (f"mt_copy_strided({ctx.inp(0)}, {ctx.out(0)}, {ctx.outs[0].dtype.itemsize}, {len(shape)}, "
            f"{ctx.table(shape)}, {ctx.table(st)}, {offset});")


# ---- Slice ------------------------------------------------------------------

def _operands(node, get):
    """(starts, ends, axes, steps) as int lists; axes/steps may be None."""
    if node.opset < 10:
        return (node.attr("starts"), node.attr("ends"), node.attr("axes"), None)
    return tuple(get(i, what) for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")))


def _as_list(v):
    return None if v is None else [int(x) for x in np.asarray(v).reshape(-1)]


def slice_plan(node, shape, starts, ends, axes, steps) -> list[tuple[int, int, int]]:
    """Per input axis: (first index, step, count), with ONNX clamping rules."""
    starts, ends, axes, steps = map(_as_list, (starts, ends, axes, steps))
    if starts is None or ends is None or len(starts) != len(ends):
        raise ShapeError(f"{node_label(node)}: starts and ends must be given with equal lengths")
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else [norm_axis(a, rank, node) for a in axes]
    steps = [1] * len(starts) if steps is None else steps
    if len(axes) != len(starts) or len(steps) != len(starts):
        raise ShapeError(f"{node_label(node)}: starts, ends, axes and steps differ in length")
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{node_label(node)}: repeated axis in {axes}")
    plan = [(0, 1, d) for d in shape]
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if step == 0:
            raise ShapeError(f"{node_label(node)}: step 0 on axis {axis}")
        dim = shape[axis]
        start = start + dim if start < 0 else start
        end = end + dim if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            count = max(0, -(-(end - start) // step))
        else:
            start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            count = max(0, -(-(start - end) // -step))
        plan[axis] = (start, step, count)
    return plan


def _infer(node, ins):
    plan = slice_plan(node, ins[0].shape, *_operands(node, lambda i, w: require_const(node, ins, i, w)))
    return [TensorType(tuple(c for _, _, c in plan), ins[0].dtype)]


def _reference(node, args):
    x = args[0]
    plan = slice_plan(node, x.shape, *_operands(node, lambda i, w: args[i] if i < len(args) else None))
    index = []
    for start, step, count in plan:
        stop = start + step * count
        index.append(slice(start, stop if stop >= 0 else None, step) if count else slice(0, 0))
    return [x[tuple(index)].copy()]


def _lower(node, ctx):
    plan = slice_plan(node, ctx.ins[0].shape,
                      *_operands(node, lambda i, w: require_const(node, ctx.ins, i, w)))
    dense = dense_strides(ctx.ins[0].shape)
    out_shape = [c for _, _, c in plan]
    strides = [step * s for (_, step, _), s in zip(plan, dense)]
    offset = sum(start * s for (start, _, _), s in zip(plan, dense))
    return lower_strided_copy(node, ctx, out_shape, strides, offset)


def _macs(node, ins, outs):
    return 0


# ---- gradient ----------------------------------------------------------------
# dx = zeros of x's shape with dy written back where the slice read it:
# mt.SliceGrad(dy) with attributes shape (x's), starts and steps (one per axis).

def constant_operands(gb, node):
    """For a gradient rule: a getter `get(i, ...)` of node's constant input i
    (None when omitted), as the forward operand helpers take it. Shape-like
    operands were checked to be constants when the forward was inferred."""
    def get(i, *_):
        name = node.inputs[i] if i < len(node.inputs) else ""
        return gb.graph.constants.get(name) if name else None
    return get


def _vjp(node, gb, dys):
    shape = gb.shape(node.inputs[0])
    plan = slice_plan(node, shape, *_operands(node, constant_operands(gb, node)))
    grads = [None] * len(node.inputs)
    if all(p == (0, 1, d) for p, d in zip(plan, shape)):
        grads[0] = dys[0]      # the whole tensor
    else:
        grads[0] = gb.emit("mt.SliceGrad", [dys[0]], {"shape": list(shape), "starts": [p[0] for p in plan],
                                                       "steps": [p[1] for p in plan]})
    return grads


def _grad_plan(node, dy_shape) -> list[tuple[int, int, int]]:
    shape, starts, steps = (list(node.attr(a)) for a in ("shape", "starts", "steps"))
    plan = [(int(a), int(s), int(c)) for a, s, c in zip(starts, steps, dy_shape)]
    if len(plan) != len(shape) or len(dy_shape) != len(shape) or any(
            c and not (0 <= a < d and 0 <= a + s * (c - 1) < d) for (a, s, c), d in zip(plan, shape)):
        raise ShapeError(f"{node_label(node)}: gradient of shape {tuple(dy_shape)} does not fit "
                         f"a slice of {tuple(shape)}")
    return plan


def _grad_infer(node, ins):
    _grad_plan(node, ins[0].shape)
    return [TensorType(tuple(int(d) for d in node.attr("shape")), ins[0].dtype)]


def _grad_reference(node, args):
    dy = args[0]
    dx = np.zeros([int(d) for d in node.attr("shape")], dy.dtype)
    positions = [a + s * np.arange(c) for a, s, c in _grad_plan(node, dy.shape)]
    dx[np.ix_(*positions)] = dy
    return [dx]


def _grad_lower(node, ctx):
    plan = _grad_plan(node, ctx.ins[0].shape)
    dense = dense_strides(ctx.outs[0].shape)
    shape, strides = collapse_strided([c for _, _, c in plan], [s * d for (_, s, _), d in zip(plan, dense)])
    offset = sum(a * d for (a, _, _), d in zip(plan, dense))
    if len(shape) > MAX_RANK:
        raise UnsupportedOpError(f"{node_label(node)}: rank {len(shape)} exceeds the kernels' "
                                 f"maximum rank {MAX_RANK}")
    return (f"mt_slice_bwd({ctx.inp(0)}, {ctx.out(0)}, {ctx.outs[0].dtype.itemsize}, "
            f"{size(ctx.outs[0].shape)}, {len(shape)}, {ctx.table(shape)}, {ctx.table(strides)}, {offset});")


register("Slice", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
register("mt.SliceGrad", infer=_grad_infer, reference=_grad_reference, lower=_grad_lower, macs=_macs)
