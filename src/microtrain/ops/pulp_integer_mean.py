"""mt.PulpIntegerMean: the `IntegerMean` node of the PULP convention (Deeploy
maps it to its ReduceMean layer; rounding from
Deeploy/Targets/Generic/Templates/ReduceMeanTemplate.py), int8 -> int8.
The reduced axes must be adjacent (x viewed as outer x L x inner). With
acc = sum of the L integer values (stored + x_offset):

    L a power of two and keepdims = 0:  y = floor((acc + L/2) / L)      (half up)
    otherwise:                          y = trunc((acc + sign(acc) * floor(L/2)) / L)
                                            (half away from zero; sign(0) = +1)

stored output = y - y_offset. The mean of int8 values is always in range."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import size
from .ita_softmax import require_int8
from .registry import norm_axis, register


def mean_layout(node, shape):
    """(outer, L, inner, output shape) for the node's adjacent axes."""
    rank = len(shape)
    axes = sorted(norm_axis(int(a), rank, node) for a in node.attr("axes"))
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise ShapeError(f"{node_label(node)}: reduced axes {axes} are not adjacent; transpose them together first")
    keep = int(node.attr("keepdims", 1))
    out = tuple(1 if i in axes else d for i, d in enumerate(shape) if keep or i not in axes)
    return size(shape[:axes[0]]), size(shape[axes[0]:axes[-1] + 1]), size(shape[axes[-1] + 1:]), out


def half_up(node, length) -> bool:
    return not int(node.attr("keepdims", 1)) and length & (length - 1) == 0


def _infer(node, ins):
    require_int8(node, ins)
    return [TensorType(mean_layout(node, ins[0].shape)[3], np.int8)]


def pulp_integer_mean(node, x):
    outer, length, inner, out = mean_layout(node, x.shape)
    acc = (x.astype(np.int64) + int(node.attr("x_offset", 0))).reshape(outer, length, inner).sum(axis=1)
    if half_up(node, length):
        y = (acc + length // 2) // length
    else:
        t = acc + np.where(acc >= 0, 1, -1) * (length // 2)
        y = np.sign(t) * (np.abs(t) // length)
    return (y - int(node.attr("y_offset", 0))).astype(np.int8).reshape(out)


def _reference(node, args):
    return [pulp_integer_mean(node, args[0])]


def _lower(node, ctx):
    outer, length, inner, _ = mean_layout(node, ctx.ins[0].shape)
    return (f"mt_pulp_integer_mean_i8({ctx.inp(0)}, {ctx.out(0)}, {outer}, {length}, {inner}, "
            f"{int(half_up(node, length))}, {int(node.attr('x_offset', 0))}, {int(node.attr('y_offset', 0))});")


register("mt.PulpIntegerMean", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: size(ins[0].shape))
