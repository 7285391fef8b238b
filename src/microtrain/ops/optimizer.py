"""Optimizer updates and gradient accumulation (microtrain-internal ops that
update state tensors in place; they have no outputs). PyTorch semantics:

* mt.SGDUpdate(param, grad[, velocity]): g = grad + wd*param;
  v = momentum*v + g (when momentum > 0); param -= lr * (v or g)
* mt.AdamUpdate(param, grad, m, v, step): g = grad + wd*param;
  m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
  param -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps), t = step[0]
* mt.Accumulate(acc, grad): acc += grad      * mt.Zero(acc): acc = 0
* mt.Increment(counter): counter += 1 (Adam's step count)"""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ._common import size
from .registry import register


def _no_outputs(node, ins):
    return []


def _sgd_reference(node, args):
    # a gradient may come in another layout of the same values (C vs C x 1 x 1)
    p, g = args[0].astype(np.float64), args[1].astype(np.float64).reshape(args[0].shape)
    v = args[2] if len(args) > 2 else None
    lr, mom, wd = node.attr("lr"), node.attr("momentum", 0.0), node.attr("weight_decay", 0.0)
    g = g + wd * p
    new_v = None
    if v is not None and mom > 0:
        new_v = mom * v.astype(np.float64) + g
        g = new_v
    return [(p - lr * g).astype(np.float32), None if new_v is None else new_v.astype(np.float32)]


def _sgd_lower(node, ctx):
    n = size(ctx.ins[0].shape)
    vel = ctx.inp(2) if ctx.has_input(2) else "NULL"
    return (f"mt_sgd_update_f32((float *){ctx.inp(0)}, {ctx.inp(1)}, (float *){vel}, {n}, "
            f"{float_literal(node.attr('lr'))}, {float_literal(node.attr('momentum', 0.0))}, "
            f"{float_literal(node.attr('weight_decay', 0.0))});")


def _adam_reference(node, args):
    p, g, m, v, step = (a.astype(np.float64) for a in args)
    g = g.reshape(p.shape)
    lr, b1, b2 = node.attr("lr"), node.attr("beta1", 0.9), node.attr("beta2", 0.999)
    eps, wd = node.attr("eps", 1e-8), node.attr("weight_decay", 0.0)
    t = float(step.reshape(-1)[0])
    g = g + wd * p
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    mhat = m / (1 - b1 ** t)
    vhat = v / (1 - b2 ** t)
    p = p - lr * mhat / (np.sqrt(vhat) + eps)
    return [p.astype(np.float32), m.astype(np.float32), v.astype(np.float32)]


def _adam_lower(node, ctx):
    return (f"mt_adam_update_f32((float *){ctx.inp(0)}, {ctx.inp(1)}, (float *){ctx.inp(2)}, "
            f"(float *){ctx.inp(3)}, {ctx.inp(4)}, {size(ctx.ins[0].shape)}, "
            f"{float_literal(node.attr('lr'))}, {float_literal(node.attr('beta1', 0.9))}, "
            f"{float_literal(node.attr('beta2', 0.999))}, {float_literal(node.attr('eps', 1e-8))}, "
            f"{float_literal(node.attr('weight_decay', 0.0))});")


def _acc_reference(node, args):
    return [(args[0] + args[1].reshape(args[0].shape)).astype(np.float32)]


def _acc_lower(node, ctx):
    return f"mt_accumulate_f32((float *){ctx.inp(0)}, {ctx.inp(1)}, {size(ctx.ins[0].shape)});"


def _zero_reference(node, args):
    return [np.zeros_like(args[0])]


def _zero_lower(node, ctx):
    return f"memset((void *){ctx.inp(0)}, 0, {ctx.ins[0].type.nbytes});"


def _inc_reference(node, args):
    return [args[0] + 1]


def _inc_lower(node, ctx):
    return f"((float *){ctx.inp(0)})[0] += 1.0f;"


for _name, _ref, _low, _mut in (("mt.SGDUpdate", _sgd_reference, _sgd_lower, (0, 2)),
                                ("mt.AdamUpdate", _adam_reference, _adam_lower, (0, 2, 3)),
                                ("mt.Accumulate", _acc_reference, _acc_lower, (0,)),
                                ("mt.Zero", _zero_reference, _zero_lower, (0,)),
                                ("mt.Increment", _inc_reference, _inc_lower, (0,))):
    register(_name, infer=_no_outputs, reference=_ref, lower=_low, mutates=_mut, foldable=False,
             macs=lambda node, ins, outs: 2 * size(ins[0].shape))
