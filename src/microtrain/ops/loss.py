"""Training losses (microtrain-internal ops). Each computes the loss and its
gradient with respect to the prediction in one pass, already scaled by
`scale` (1 / effective batch for a mean), so the backward starts from there.

* mt.SoftmaxCrossEntropy(logits[N, C], labels int32[N]) -> loss[1], dlogits[N, C]
* mt.MSELoss(pred[N, ...], target[N, ...])             -> loss[1], dpred"""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..ir import TensorType
from ._common import size
from .registry import register


def _infer(node, ins):
    return [TensorType((1,), np.float32), TensorType(ins[0].shape, ins[0].dtype)]


def _xent_reference(node, args):
    logits, labels = args
    scale = node.attr("scale", 1.0)
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    idx = labels.astype(np.int64).reshape(-1)
    loss = -logp[np.arange(len(idx)), idx].sum() * scale
    d = np.exp(logp)
    d[np.arange(len(idx)), idx] -= 1.0
    return [np.array([loss], np.float32), (d * scale).astype(np.float32)]


def _xent_lower(node, ctx):
    n, c = ctx.ins[0].shape[0], size(ctx.ins[0].shape[1:])
    return (f"mt_softmax_xent_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {ctx.out(1)}, {n}, {c}, "
            f"{float_literal(node.attr('scale', 1.0))});")


def _mse_reference(node, args):
    pred, target = args
    scale = node.attr("scale", 1.0)
    diff = pred.astype(np.float64) - target.astype(np.float64)
    return [np.array([(diff * diff).sum() * scale], np.float32), (2 * diff * scale).astype(np.float32)]


def _mse_lower(node, ctx):
    return (f"mt_mse_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.out(0)}, {ctx.out(1)}, "
            f"{size(ctx.ins[0].shape)}, {float_literal(node.attr('scale', 1.0))});")


register("mt.SoftmaxCrossEntropy", infer=_infer, reference=_xent_reference, lower=_xent_lower,
         macs=lambda node, ins, outs: size(ins[0].shape), foldable=False)
register("mt.MSELoss", infer=_infer, reference=_mse_reference, lower=_mse_lower,
         macs=lambda node, ins, outs: size(ins[0].shape), foldable=False)
