"""Split along one axis: sizes from the `split` attribute (opset < 13), the
`split` input (13+), `num_outputs` (18+, last chunk may be smaller) or equal
parts. Lowered to `mt_split` (block copies, the inverse of mt_concat)."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from .registry import norm_axis, register, require_const
from .slice import constant_operands


def _sizes(node, shape, split) -> tuple[int, list[int]]:
    axis = norm_axis(int(node.attr("axis", 0)), len(shape), node)
    dim, n_out = shape[axis], len(node.outputs)
    if split is not None:
        sizes = [int(s) for s in np.asarray(split).reshape(-1)]
        if len(sizes) != n_out or sum(sizes) != dim or min(sizes, default=0) < 0:
            raise ShapeError(f"{node_label(node)}: split {sizes} does not cut axis {axis} "
                             f"(size {dim}) into {n_out} outputs")
        return axis, sizes
    num = node.attr("num_outputs")
    if num is not None:
        if int(num) != n_out:
            raise ShapeError(f"{node_label(node)}: num_outputs={num} but the node has {n_out} outputs")
        chunk = -(-dim // n_out)
        sizes = [min(chunk, max(dim - k * chunk, 0)) for k in range(n_out)]
        if 0 in sizes:
            raise ShapeError(f"{node_label(node)}: axis {axis} (size {dim}) is too small "
                             f"for {n_out} outputs")
        return axis, sizes
    if dim % n_out:
        raise ShapeError(f"{node_label(node)}: axis {axis} (size {dim}) does not split evenly "
                         f"into {n_out} outputs; give `split` sizes")
    return axis, [dim // n_out] * n_out


def _split_operand(node, get):
    if node.opset < 13:
        return node.attr("split")
    return get(1)


def _infer(node, ins):
    shape = ins[0].shape
    axis, sizes = _sizes(node, shape, _split_operand(node, lambda i: require_const(node, ins, i, "split")))
    return [TensorType(shape[:axis] + (s,) + shape[axis + 1:], ins[0].dtype) for s in sizes]


def _reference(node, args):
    x = args[0]
    axis, sizes = _sizes(node, x.shape, _split_operand(node, lambda i: args[i] if i < len(args) else None))
    return [p.copy() for p in np.split(x, np.cumsum(sizes)[:-1], axis=axis)]


def _lower(node, ctx):
    if not all(node.outputs):
        raise UnsupportedOpError(f"{node_label(node)}: omitted Split outputs are not supported")
    shape = ctx.ins[0].shape
    axis = norm_axis(int(node.attr("axis", 0)), len(shape), node)
    itemsize = ctx.ins[0].dtype.itemsize
    chunks = [size(t.shape[axis:]) * itemsize for t in ctx.outs]
    dsts = ", ".join(ctx.out(i) for i in range(len(ctx.outs)))
    return (f"{{ void *const dsts[] = {{{dsts}}};\n"
            f"  mt_split({ctx.inp(0)}, dsts, {len(chunks)}, {ctx.table(chunks)}, {size(shape[:axis])}); }}")


def _macs(node, ins, outs):
    return 0


# ---- gradient ----------------------------------------------------------------
# dx = Concat of the outputs' gradients. Outputs that get no gradient count as
# zeros: then the internal mt.SplitGrad (Concat with omitted inputs, which
# mt_concat fills with zeros, so no zero tensor is ever materialized).

def _vjp(node, gb, dys):
    x_shape = gb.shape(node.inputs[0])
    axis, sizes = _sizes(node, x_shape, _split_operand(node, constant_operands(gb, node)))
    if all(d is not None for d in dys):
        dx = dys[0] if len(dys) == 1 else gb.emit("Concat", list(dys), {"axis": axis})
    else:
        dx = gb.emit("mt.SplitGrad", [d or "" for d in dys], {"axis": axis, "sizes": sizes})
    return [dx] + [None] * (len(node.inputs) - 1)


def _grad_shape(node, ins) -> tuple[int, ...]:
    axis, sizes = int(node.attr("axis")), [int(s) for s in node.attr("sizes")]
    present = [v for v in ins if v.present]
    shape = list(present[0].shape)
    shape[axis] = sum(sizes)
    for k, v in enumerate(ins):
        if v.present and tuple(v.shape) != tuple(shape[:axis] + [sizes[k]] + shape[axis + 1:]):
            raise ShapeError(f"{node_label(node)}: gradient {k} has shape {tuple(v.shape)}, "
                             f"expected block {sizes[k]} of {tuple(shape)} on axis {axis}")
    return tuple(shape)


def _grad_infer(node, ins):
    return [TensorType(_grad_shape(node, ins), next(v.dtype for v in ins if v.present))]


def _grad_reference(node, args):
    axis, sizes = int(node.attr("axis")), [int(s) for s in node.attr("sizes")]
    like = next(a for a in args if a is not None)
    blocks = []
    for a, n in zip(args, sizes):
        if a is None:
            shape = list(like.shape)
            shape[axis] = n
            a = np.zeros(shape, like.dtype)
        blocks.append(a)
    return [np.concatenate(blocks, axis=axis)]


def _grad_lower(node, ctx):
    axis, sizes = int(node.attr("axis")), [int(s) for s in node.attr("sizes")]
    shape = ctx.outs[0].shape
    row = size(shape[axis + 1:]) * ctx.outs[0].dtype.itemsize
    chunks = [n * row for n in sizes]
    srcs = ", ".join(ctx.inp(i) for i in range(len(sizes)))
    return (f"{{ const void *const srcs[] = {{{srcs}}};\n"
            f"  mt_concat(srcs, {len(chunks)}, {ctx.table(chunks)}, {size(shape[:axis])}, {ctx.out(0)}); }}")


register("Split", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
register("mt.SplitGrad", infer=_grad_infer, reference=_grad_reference, lower=_grad_lower, macs=_macs)
