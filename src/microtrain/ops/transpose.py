"""Transpose (perm, default reversed axes), lowered to `mt_transpose` after
dropping size-1 axes and merging input axes that stay neighbours."""
from __future__ import annotations

from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import size
from .registry import register
from .slice import MAX_RANK


def _perm(node, rank: int) -> list[int]:
    perm = node.attr("perm")
    perm = list(range(rank - 1, -1, -1)) if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise ShapeError(f"{node_label(node)}: perm {perm} is not a permutation of {rank} axes")
    return perm


def collapse_transpose(shape, perm) -> tuple[list[int], list[int]]:
    """An equivalent smaller transpose: size-1 axes dropped, and input axes
    that remain adjacent (and in order) in the output merged into one."""
    # Renumber the non-1 input axes 0..k-1 so size-1 axes cannot block merges.
    rank_of = {a: i for i, a in enumerate(a for a in range(len(shape)) if shape[a] != 1)}
    dims = [shape[a] for a in rank_of]
    groups: list[list[int]] = []
    for p in (rank_of[p] for p in perm if shape[p] != 1):
        if groups and p == groups[-1][-1] + 1:
            groups[-1].append(p)
        else:
            groups.append([p])
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    in_shape = [size(dims[a] for a in groups[g]) for g in order]
    new_perm = [order.index(g) for g in range(len(groups))]
    return (in_shape, new_perm) if in_shape else ([1], [0])


def _infer(node, ins):
    shape = ins[0].shape
    return [TensorType(tuple(shape[p] for p in _perm(node, len(shape))), ins[0].dtype)]


def _reference(node, args):
    return [args[0].transpose(_perm(node, args[0].ndim)).copy()]


def _lower(node, ctx):
    shape = ctx.ins[0].shape
    if size(shape) == 0:
        return "/* empty output: nothing to copy */"
    in_shape, perm = collapse_transpose(shape, _perm(node, len(shape)))
    if len(in_shape) > MAX_RANK:
        raise UnsupportedOpError(f"{node_label(node)}: rank {len(in_shape)} exceeds the kernels' "
                                 f"maximum rank {MAX_RANK}")
    return (f"mt_transpose({ctx.inp(0)}, {ctx.out(0)}, {ctx.outs[0].dtype.itemsize}, {len(in_shape)}, "
            f"{ctx.table(in_shape)}, {ctx.table(perm)});")


def _macs(node, ins, outs):
    return 0


def _vjp(node, gb, dys):
    """dx = dy transposed by the inverse permutation."""
    perm = _perm(node, len(gb.shape(node.inputs[0])))
    if perm == sorted(perm):
        return [dys[0]]
    inverse = [0] * len(perm)
    for out_axis, in_axis in enumerate(perm):
        inverse[in_axis] = out_axis
    return [gb.emit("Transpose", [dys[0]], {"perm": inverse})]


register("Transpose", infer=_infer, reference=_reference, lower=_lower, macs=_macs, vjp=_vjp)
