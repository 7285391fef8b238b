"""mt.MHSA: multi-head self-attention with its projections, depth-first.

    X (S, E); per head h:  Q_h = X Wq_h + bq_h,  K_h = X Wk_h + bk_h,  V_h = X Wv_h + bv_h
    Y (S, Eo) = bo + sum_h softmax(scale * Q_h K_h^T) V_h Wo_h

Inputs: X, Wq (H, E, P), bq (H, P), Wk (H, E, P), bk (H, P), Wv (H, E, Pv),
bv (H, Pv), Wo (H, Pv, Eo), bo (Eo). With `keys_are_input` = 1 (after FWSA,
where K_h = X) Wk/bk are empty and X itself is the keys.

The kernel holds one head's K_h and V_h and one block of `block_rows` query
rows (their Q, scores and context rows) in scratch, and accumulates the
output projection into Y per block: neither the H x S x S map nor the
full Q, K, V tensors ever exist. Made by passes/depth_first_attention.py."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, node_label
from ..ir import TensorType
from ._common import require_float
from .gemm import value_shape
from .registry import register


def _dims(node, ins):
    """(S, E, H, P, Pv, Eo)."""
    shapes = [value_shape(v) if v.present or v.const is not None else None for v in ins]
    s, e = shapes[0]
    h, _, pv = shapes[5]
    eo = shapes[7][-1]
    p = e if node.attr("keys_are_input", 0) else shapes[1][-1]
    if shapes[1][:2] != (h, e) or (shapes[3] is not None and shapes[3] != shapes[1]) \
            or shapes[5][:2] != (h, e) or shapes[7][:2] != (h, pv):
        raise ShapeError(f"{node_label(node)}: projection shapes {shapes[1:]} do not fit X {shapes[0]}")
    return s, e, h, p, pv, eo


def _infer(node, ins):
    s, *_, eo = _dims(node, ins)
    return [TensorType((s, eo), ins[0].dtype)]


def _reference(node, args):
    x, wq, bq, wk, bk, wv, bv, wo, bo = (None if a is None else a.astype(np.float64) for a in args)
    q = np.einsum("se,hep->hsp", x, wq) + bq[:, None]
    k = np.broadcast_to(x, (wq.shape[0],) + x.shape) if node.attr("keys_are_input", 0) \
        else np.einsum("se,hep->hsp", x, wk) + bk[:, None]
    v = np.einsum("se,hep->hsp", x, wv) + bv[:, None]
    scores = np.matmul(q, np.swapaxes(k, 1, 2)) * float(node.attr("scale", 1.0))
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    ctx = np.matmul(e / e.sum(axis=-1, keepdims=True), v)
    return [(np.einsum("hsp,hpo->so", ctx, wo) + bo).astype(args[0].dtype)]


def _block(node, s):
    return max(1, min(int(node.attr("block_rows", 1)), s))


def _scratch(node, ins, outs):
    s, e, h, p, pv, eo = _dims(node, ins)
    r = _block(node, s)
    keys = 0 if node.attr("keys_are_input", 0) else s * p
    return 4 * (keys + s * pv + r * (p + s + pv))


def _lower(node, ctx):
    for i in (0, 1, 5, 7):
        require_float(node, ctx.ins, i)
    s, e, h, p, pv, eo = _dims(node, ctx.ins)
    keys_x = int(node.attr("keys_are_input", 0))
    wk, bk = ("NULL", "NULL") if keys_x else (ctx.inp(3), ctx.inp(4))
    return (f"mt_mhsa_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {wk}, {bk}, {ctx.inp(5)}, "
            f"{ctx.inp(6)}, {ctx.inp(7)}, {ctx.inp(8)}, {ctx.out(0)}, {s}, {e}, {h}, {p}, {pv}, {eo}, "
            f"{float_literal(node.attr('scale', 1.0))}, {_block(node, s)}, (float *){ctx.scratch});")


def _macs(node, ins, outs):
    s, e, h, p, pv, eo = _dims(node, ins)
    keys = 0 if node.attr("keys_are_input", 0) else s * e * p
    return h * (s * e * p + keys + s * e * pv + s * s * (p + pv + 2) + s * pv * eo)


register("mt.MHSA", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
