"""mt.Attention(Q, Kt, V): softmax(scale * Q Kt) V, computed depth-first.

Q (..., S, P), Kt (..., P, T), V (..., T, Pv); batch dims broadcast as in
MatMul -> (..., S, Pv). The kernel walks one batch entry (head) and one
block of `block_rows` query rows at a time: scores -> softmax -> . V -> the
output rows. Its scratch is one block of scores (block_rows x T floats), so
the (heads x S x T) attention map never exists in RAM. Made by
passes/depth_first_attention.py from MatMul -> [scale] -> Softmax -> MatMul."""
from __future__ import annotations

import math

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float
from .gemm import value_shape
from .matmul import _batch_offsets
from .registry import broadcast_shape, register


def _layout(node, qs, ks, vs):
    """(batch, q batch, k batch, v batch, S, P, T, Pv)."""
    if min(len(qs), len(ks), len(vs)) < 2 or qs[-1] != ks[-2] or ks[-1] != vs[-2]:
        raise ShapeError(f"{node_label(node)}: attention shapes Q {qs}, Kt {ks}, V {vs} do not chain")
    batch = broadcast_shape(node, qs[:-2], ks[:-2], vs[:-2])
    return batch, tuple(qs[:-2]), tuple(ks[:-2]), tuple(vs[:-2]), qs[-2], qs[-1], ks[-1], vs[-1]


def _shapes(ins):
    return [value_shape(v) for v in ins[:3]]


def _infer(node, ins):
    batch, *_, s, _, _, pv = _layout(node, *_shapes(ins))
    return [TensorType(batch + (s, pv), ins[0].dtype)]


def _reference(node, args):
    q, kt, v = (a.astype(np.float64) for a in args)
    scores = np.matmul(q, kt) * float(node.attr("scale", 1.0))
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return [np.matmul(e / e.sum(axis=-1, keepdims=True), v).astype(args[0].dtype)]


def _block(node, s):
    return max(1, min(int(node.attr("block_rows", 1)), s))


def _lower(node, ctx):
    for i in range(3):
        require_float(node, ctx.ins, i)
    batch, qb, kb, vb, s, p, t, pv = _layout(node, *_shapes(ctx.ins))
    offs = [ctx.table(_batch_offsets(own, batch, size)) for own, size in
            ((qb, s * p), (kb, p * t), (vb, t * pv))]
    return (f"mt_attention_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{math.prod(batch)}, {s}, {p}, {t}, {pv}, {offs[0]}, {offs[1]}, {offs[2]}, "
            f"{float_literal(node.attr('scale', 1.0))}, {_block(node, s)}, (float *){ctx.scratch});")


def _scratch(node, ins, outs):
    s, t = outs[0].shape[-2], value_shape(ins[1])[-1]
    return 4 * _block(node, s) * t


def _macs(node, ins, outs):
    batch, *_, s, p, t, pv = _layout(node, *_shapes(ins))
    return math.prod(batch) * s * t * (p + pv + 2)


register("mt.Attention", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         scratch=_scratch)
