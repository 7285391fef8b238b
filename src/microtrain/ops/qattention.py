"""mt.QAttention: the int8 attention core, depth-first.

Exactly the integer chain the quantizer emits, fused:

    scores = mt.QMatMul(q, kt)             (s_* attributes, inputs s_mul / s_add)
    scores = mt.QMul(scores, m_b)          (optional scalar scale; m_* attributes, input m_b)
    probs  = mt.ITASoftmax | mt.IBertSoftmax (signed_output)   (p_* attributes)
    ctx    = mt.QMatMul(probs, v)          (c_* attributes, inputs c_mul / c_add)

Inputs: q, kt, v, s_mul, s_add, m_b ("" without the scale), c_mul, c_add.
The golden model runs the four ops' own reference functions, so the fusion
cannot change a result; the kernel does the same integer arithmetic one query
row at a time with one row of int8 scores (T bytes) as scratch, so the
heads x S x T scores and probabilities never exist in RAM. Made from the
unfused chain by passes/depth_first_attention.py (`depth_first=True`)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import Node, TensorType
from ..ops.registry import INTERNAL_DOMAIN
from ._quant import requant_params
from .gemm import value_shape
from .matmul import _batch_offsets
from .registry import broadcast_shape, get_op, register

STAGES = {"s": "mt.QMatMul", "m": "mt.QMul", "c": "mt.QMatMul"}


def stage_node(node: Node, prefix: str) -> Node:
    """The unfused node of one stage, rebuilt from the prefixed attributes."""
    op = node.attr("p_op") if prefix == "p" else STAGES[prefix]
    attrs = {k[2:]: v for k, v in node.attrs.items() if k.startswith(prefix + "_") and k != "p_op"}
    return Node(op, f"{node.name}/{prefix}", [], [], attrs, domain=INTERNAL_DOMAIN)


def _dims(ins):
    qs, ks, vs = (value_shape(v) for v in ins[:3])
    batch = broadcast_shape(None, qs[:-2], ks[:-2], vs[:-2])
    return tuple(batch), tuple(qs[:-2]), tuple(ks[:-2]), tuple(vs[:-2]), qs[-2], qs[-1], ks[-1], vs[-1]


def _infer(node, ins):
    batch, *_, s, _, _, pv = _dims(ins)
    return [TensorType(batch + (s, pv), np.int8)]


def _reference(node, args):
    q, kt, v, s_mul, s_add, m_b, c_mul, c_add = args
    run = lambda prefix, inputs: get_op(stage_node(node, prefix)).reference(stage_node(node, prefix), inputs)[0]
    scores = run("s", [q, kt, s_mul, s_add])
    if m_b is not None:
        scores = run("m", [scores, m_b])
    return [run("c", [run("p", [scores]), v, c_mul, c_add])]


def _requant_fields(node, ctx, prefix, mul, add) -> str:
    """azp, bzp, mul table, nmul, add table, nadd, shift, lo, hi of one QMatMul stage."""
    shift, lo, hi = requant_params(stage_node(node, prefix))
    return (f"{int(node.attr(prefix + '_a_zero_point', 0))}, {int(node.attr(prefix + '_b_zero_point', 0))}, "
            f"{ctx.table(mul)}, {mul.size}, {ctx.table(add, 'int64_t')}, {add.size}, {shift}, {lo}, {hi}")


def core_initializer(node, ctx, consts) -> str:
    """C initializer of mt_qatt_core_t for a node carrying the s_/m_/p_/c_
    attributes; `consts` = (s_mul, s_add, m_b or None, c_mul, c_add) arrays."""
    s_mul, s_add, m_b, c_mul, c_add = consts
    if m_b is not None:
        m = stage_node(node, "m")
        shift, lo, hi = requant_params(m)
        scale = (f"1, {int(m.attr('a_zero_point', 0))}, {int(m.attr('b_zero_point', 0))}, "
                 f"{int(np.asarray(m_b).reshape(-1)[0])}, {int(m.attr('mul', 1))}, "
                 f"INT64_C({int(m.attr('add', 0))}), {shift}, {lo}, {hi}")
    else:
        scale = "0, 0, 0, 0, 1, INT64_C(0), 0, -128, 127"
    sm = stage_node(node, "p")
    soft = (f"{0 if sm.op == 'mt.ITASoftmax' else 1}, {int(sm.attr('q_ln2', 1))}, {int(sm.attr('q_b', 0))}, "
            f"{int(sm.attr('q_c', 0))}, {int(sm.attr('signed_output', 0))}")
    return (f"{{{_requant_fields(node, ctx, 's', s_mul, s_add)}, {scale}, {soft}, "
            f"{_requant_fields(node, ctx, 'c', c_mul, c_add)}}}")


def _lower(node, ctx):
    batch, qb, kb, vb, s, p, t, pv = _dims(ctx.ins)
    offs = [ctx.table(_batch_offsets(own, batch, sz)) for own, sz in ((qb, s * p), (kb, p * t), (vb, t * pv))]
    consts = [ctx.ins[i].const if ctx.has_input(i) else None for i in (3, 4, 5, 6, 7)]
    return (f"{{ static const mt_qatt_core_t core = {core_initializer(node, ctx, consts)};\n"
            f"  mt_qattention_s8({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.out(0)}, "
            f"{math.prod(batch)}, {offs[0]}, {offs[1]}, {offs[2]}, {s}, {p}, {t}, {pv}, &core, "
            f"(int8_t *){ctx.scratch}); }}")


def _scratch(node, ins, outs):
    return value_shape(ins[1])[-1]


def _macs(node, ins, outs):
    batch, *_, s, p, t, pv = _dims(ins)
    return math.prod(batch) * s * t * (p + pv + 3)


register("mt.QAttention", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
