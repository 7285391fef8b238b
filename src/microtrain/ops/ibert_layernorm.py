"""mt.IBertLayerNorm: integer LayerNorm over the last axis, int8 -> int8
(I-BERT, Kim et al. 2021: integer mean/variance, integer square root).

Input q at scale S, n values per row. Everything is exact integer arithmetic:

    c_j  = n q_j - sum q                  (x - mean, at scale S / n)
    std  = isqrt(sum c^2 // n + eps_q)    (Newton iteration; at least 1)
    xh_j = floor(c_j * floor(2^30 / std) / 2^(30 - F))      (x-hat at 2^-F)
    y_j  = clip(round_half_up((xh_j * G_j + B_j) / 2^(F + FG)))

F = 10, FG = 12. Per-channel attributes (from gamma, beta and the scales by
`ibert_layernorm_params`): G = round(gamma / S_out * 2^FG),
B = round(beta / S_out * 2^(F + FG)) + zp_out * 2^(F + FG) (the output zero
point rides in B), eps_q = round(eps n^2 / S^2). The input's zero point
cancels in c."""
from __future__ import annotations

import numpy as np

from ..errors import MicrotrainError, ShapeError, node_label
from ..ir import TensorType
from ._common import size
from ._intmath import clip_int8, floor_shift, isqrt_newton, round_shift, rows_view
from .ita_softmax import require_int8
from .registry import register

F, FG, INV_BITS = 10, 12, 30


def ibert_layernorm_params(gamma, beta, in_scale: float, out_scale: float, eps: float = 1e-5,
                           out_zero_point: int = 0) -> dict:
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    beta = np.zeros_like(gamma) if beta is None else np.asarray(beta, dtype=np.float64).reshape(-1)
    if not (in_scale > 0 and out_scale > 0):
        raise MicrotrainError(f"I-BERT LayerNorm: scales must be positive, got {in_scale}, {out_scale}")
    g = np.round(gamma / out_scale * 2.0 ** FG).astype(np.int64)
    b = np.round(beta / out_scale * 2.0 ** (F + FG)).astype(np.int64) + (int(out_zero_point) << (F + FG))
    if np.max(np.abs(g)) >= 1 << 24 or np.max(np.abs(b)) >= 1 << 50:
        raise MicrotrainError("I-BERT LayerNorm: gamma/beta too large for the output scale "
                              f"{out_scale:g}; recalibrate the output")
    n = gamma.size
    return {"gain": g, "bias": b, "eps_q": int(round(eps * n * n / (in_scale * in_scale)))}


def _infer(node, ins):
    require_int8(node, ins)
    n = ins[0].shape[-1] if ins[0].shape else 1
    for key in ("gain", "bias"):
        if np.asarray(node.attr(key)).size != n:
            raise ShapeError(f"{node_label(node)}: attribute {key} has {np.asarray(node.attr(key)).size} "
                             f"values for rows of {n}")
    return [TensorType(ins[0].shape, np.int8)]


def ibert_layernorm(x, gain, bias, eps_q):
    rows = rows_view(x)
    n = rows.shape[1]
    c = n * rows - rows.sum(axis=1, keepdims=True)
    std = np.maximum(isqrt_newton((c * c).sum(axis=1) // n + eps_q), 1)
    inv = (np.int64(1) << INV_BITS) // std
    xh = floor_shift(c * inv[:, None], INV_BITS - F)
    acc = xh * np.asarray(gain, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return clip_int8(round_shift(acc, F + FG)).reshape(np.shape(x))


def _reference(node, args):
    return [ibert_layernorm(args[0], node.attr("gain"), node.attr("bias"), node.attr("eps_q"))]


def _lower(node, ctx):
    require_int8(node, ctx.ins)
    shape = ctx.ins[0].shape
    n = shape[-1] if shape else 1
    gain = ctx.table(np.asarray(node.attr("gain"), dtype=np.int64), "int32_t")
    bias = ctx.table(np.asarray(node.attr("bias"), dtype=np.int64), "int64_t")
    return (f"mt_ibert_layernorm_i8({ctx.inp(0)}, {ctx.out(0)}, {size(shape) // n}, {n}, "
            f"{gain}, {bias}, INT64_C({int(node.attr('eps_q'))}));")


register("mt.IBertLayerNorm", infer=_infer, reference=_reference, lower=_lower,
         macs=lambda node, ins, outs: 4 * size(outs[0].shape))
