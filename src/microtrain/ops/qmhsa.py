"""mt.QMHSA: int8 multi-head self-attention with its projections, depth-first.

    x (S, E) int8 -> y (S, Eo) int8, per head h:
      Q_h, K_h, V_h = proj_j(x) for j in q, k, v     (head h's columns)
      ctx_h = the attention core of mt.QAttention (s_/m_/p_/c_ attributes)
      y = proj_o(concat_h ctx_h)                     (accumulated over heads in int32)

A projection j is the quantizer's QMatMul (`j_w` per head (H, E, n), zero
points `j_azp`/`j_bzp`, per-column `j_mul`/`j_add`, `j_shift`/`j_lo`/`j_hi`)
followed, when the Linear has a bias, by its QAdd with the constant bias:
requant((v - j_bz) * j_bm + j_bconst[col]) with `j_bshift`/`j_blo`/`j_bhi`.
Everything is an integer attribute, gathered per head by
passes/depth_first_attention.py from the unfused chain it replaces; the
tests check the result equals that chain's golden model.

The kernel keeps one head's K_h and V_h, one query row's Q/scores/context and
an int32 (S, Eo) accumulator in scratch: no H x S x S map, no full Q/K/V."""
from __future__ import annotations

import numpy as np

from ..ir import Node, TensorType
from ..ops.registry import INTERNAL_DOMAIN
from ._intmath import floor_shift
from .qattention import _reference as core_reference, core_initializer
from .registry import register

PROJ = ("q", "k", "v", "o")


def _requant(acc, mul, add, shift, lo, hi):
    rounding = (1 << (shift - 1)) if shift else 0
    return np.clip(floor_shift(np.asarray(acc, np.int64) * mul + add + rounding, shift), lo, hi)


def _bias_stage(a, j, v):
    if not a[f"{j}_has_bias"]:
        return v
    return _requant(v - a[f"{j}_bz"], a[f"{j}_bm"], a[f"{j}_bconst"], a[f"{j}_bshift"], a[f"{j}_blo"], a[f"{j}_bhi"])


def project(a: dict, j: str, x: np.ndarray) -> np.ndarray:
    """(H, rows, n) int64: projection j of x (rows, E) for every head."""
    w = np.asarray(a[f"{j}_w"], np.int64)
    h, _, n = w.shape
    acc = np.einsum("re,hen->hrn", x.astype(np.int64) - a[f"{j}_azp"], w - a[f"{j}_bzp"])
    cols = lambda t: np.asarray(t, np.int64).reshape(h, 1, n)
    v = _requant(acc, cols(a[f"{j}_mul"]), cols(a[f"{j}_add"]), a[f"{j}_shift"], a[f"{j}_lo"], a[f"{j}_hi"])
    if a[f"{j}_has_bias"]:
        v = _requant(v - a[f"{j}_bz"], a[f"{j}_bm"], cols(a[f"{j}_bconst"]), a[f"{j}_bshift"],
                     a[f"{j}_blo"], a[f"{j}_bhi"])
    return v


def _core_node(node):
    attrs = {k: v for k, v in node.attrs.items() if k[:2] in ("s_", "m_", "p_", "c_")}
    return Node("mt.QAttention", node.name + "/core", [], [], attrs, domain=INTERNAL_DOMAIN)


def _core_consts(a):
    return [a["core_s_mul"], a["core_s_add"], a.get("core_m_b"), a["core_c_mul"], a["core_c_add"]]


def _infer(node, ins):
    s = ins[0].shape[0]
    return [TensorType((s, np.asarray(node.attr("o_w")).shape[-1]), np.int8)]


def _reference(node, args):
    a = node.attrs
    x = args[0]
    q, k, v = (project(a, j, x).astype(np.int8) for j in "qkv")
    s_mul, s_add, m_b, c_mul, c_add = _core_consts(a)
    ctx = core_reference(_core_node(node), [q, np.swapaxes(k, 1, 2), v, s_mul, s_add, m_b, c_mul, c_add])[0]
    wo = np.asarray(a["o_w"], np.int64)
    acc = np.einsum("hsc,hco->so", ctx.astype(np.int64) - a["o_azp"], wo - a["o_bzp"])
    y = _requant(acc, np.asarray(a["o_mul"], np.int64), np.asarray(a["o_add"], np.int64),
                 a["o_shift"], a["o_lo"], a["o_hi"])
    y = _bias_stage(a, "o", y) if a["o_has_bias"] else y
    return [y.astype(np.int8)]


def _proj_initializer(node, ctx, j) -> str:
    a = node.attrs
    w = ctx.table(np.asarray(a[f"{j}_w"]).reshape(-1), "int8_t")
    mul, add = ctx.table(np.asarray(a[f"{j}_mul"]).reshape(-1)), ctx.table(np.asarray(a[f"{j}_add"]).reshape(-1), "int64_t")
    if a[f"{j}_has_bias"]:
        bias = (f"1, {a[f'{j}_bz']}, {a[f'{j}_bm']}, {ctx.table(np.asarray(a[f'{j}_bconst']).reshape(-1), 'int64_t')}, "
                f"{a[f'{j}_bshift']}, {a[f'{j}_blo']}, {a[f'{j}_bhi']}")
    else:
        bias = "0, 0, 0, NULL, 0, -128, 127"
    return (f"{{{w}, {a[f'{j}_azp']}, {a[f'{j}_bzp']}, {mul}, {add}, {a[f'{j}_shift']}, {a[f'{j}_lo']}, "
            f"{a[f'{j}_hi']}, {bias}}}")


def _dims(node, s):
    h, e, p = np.asarray(node.attr("q_w")).shape
    pv = np.asarray(node.attr("v_w")).shape[-1]
    eo = np.asarray(node.attr("o_w")).shape[-1]
    return s, e, h, p, pv, eo


def _lower(node, ctx):
    s, e, h, p, pv, eo = _dims(node, ctx.ins[0].shape[0])
    core = core_initializer(_core_node(node), ctx, [np.asarray(c) if c is not None else None
                                                    for c in _core_consts(node.attrs)])
    decls = "\n".join(f"  static const mt_qproj_t p{j} = {_proj_initializer(node, ctx, j)};" for j in PROJ)
    return (f"{{\n{decls}\n  static const mt_qatt_core_t core = {core};\n"
            f"  mt_qmhsa_s8({ctx.inp(0)}, {ctx.out(0)}, {s}, {e}, {h}, {p}, {pv}, {eo}, &pq, &pk, &pv, "
            f"&core, &po, {ctx.scratch}); }}")


def _scratch(node, ins, outs):
    s, e, h, p, pv, eo = _dims(node, ins[0].shape[0])
    return 4 * s * eo + s * p + s * pv + p + s + pv


def _macs(node, ins, outs):
    s, e, h, p, pv, eo = _dims(node, ins[0].shape[0])
    return h * s * (e * (2 * p + pv) + s * (p + pv) + pv * eo)


register("mt.QMHSA", infer=_infer, reference=_reference, lower=_lower, macs=_macs, scratch=_scratch)
