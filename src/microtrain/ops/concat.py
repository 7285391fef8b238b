"""Concat along one axis (negative allowed). Inputs may mix constants and
run-time tensors. Lowered to `mt_concat`: outer rows, each the concatenation
of one contiguous block of every input."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import size
from .registry import norm_axis, register


def _axis_and_shape(node, shapes) -> tuple[int, tuple[int, ...]]:
    rank = len(shapes[0])
    if node.attr("axis") is None:
        raise ShapeError(f"{node_label(node)}: Concat needs an axis attribute")
    axis = norm_axis(int(node.attr("axis")), rank, node)
    for s in shapes[1:]:
        if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != axis):
            raise ShapeError(f"{node_label(node)}: cannot concatenate shapes "
                             f"{', '.join(map(str, shapes))} on axis {axis}")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return axis, tuple(out)


def _infer(node, ins):
    dtypes = {v.dtype for v in ins}
    if len(dtypes) > 1:
        raise ShapeError(f"{node_label(node)}: inputs have different dtypes {sorted(map(str, dtypes))}")
    _, shape = _axis_and_shape(node, [v.shape for v in ins])
    return [TensorType(shape, ins[0].dtype)]


def _reference(node, args):
    axis, _ = _axis_and_shape(node, [a.shape for a in args])
    return [np.concatenate(args, axis=axis)]


def _lower(node, ctx):
    axis, shape = _axis_and_shape(node, [v.shape for v in ctx.ins])
    itemsize = ctx.outs[0].dtype.itemsize
    outer = size(shape[:axis])
    chunks = [size(v.shape[axis:]) * itemsize for v in ctx.ins]
    srcs = ", ".join(ctx.inp(i) for i in range(len(ctx.ins)))
    return (f"{{ const void *const srcs[] = {{{srcs}}};\n"
            f"  mt_concat(srcs, {len(chunks)}, {ctx.table(chunks)}, {outer}, {ctx.out(0)}); }}")


def _macs(node, ins, outs):
    return 0


def _vjp(node, gb, dys):
    """dx_k = the k-th block of dy along the axis: one Split when every input
    needs it, else one Slice per input that does (the others cost nothing)."""
    shapes = [gb.shape(i) for i in node.inputs]
    axis, _ = _axis_and_shape(node, shapes)
    sizes = [s[axis] for s in shapes]
    wanted = [k for k in range(len(shapes)) if gb.needs(k)]
    if len(wanted) == len(shapes) and len(shapes) > 1:
        parts = gb.emit("Split", [dys[0], gb.const(np.array(sizes, np.int64), np.int64)],
                        {"axis": axis}, n_out=len(shapes))
        return list(parts)
    grads = [None] * len(shapes)
    ends = np.cumsum(sizes)
    for k in wanted:
        if len(shapes) == 1:
            grads[k] = dys[0]
            continue
        grads[k] = gb.emit("Slice", [dys[0], gb.const([ends[k] - sizes[k]], np.int64),
                                     gb.const([ends[k]], np.int64), gb.const([axis], np.int64)])
    return grads


register("Concat", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
