"""BatchNormalization, inference form: y = (x - mean) / sqrt(var + eps) * scale
+ bias per channel (axis 1), any rank >= 2. A BN right after Conv/Gemm is
folded away by passes/fold_batchnorm.py; this kernel runs the others.
Training-mode ONNX BatchNormalization (running-stat outputs) is not supported;
microtrain's own training mode is mt.BatchNormTrain (below)."""
from __future__ import annotations

import numpy as np

from ..codegen.context import float_literal
from ..errors import ShapeError, UnsupportedOpError, node_label
from ..ir import TensorType
from ._common import require_float, size
from .registry import register, unsupported_attr


def _check(node, ins):
    if int(node.attr("training_mode", 0)) != 0 or len([o for o in node.outputs if o]) > 1:
        raise UnsupportedOpError(
            f"{node_label(node)}: training-mode BatchNormalization (batch statistics or "
            "running-mean/var outputs) is not supported; export the model in eval mode "
            "(model.eval() before torch.onnx.export)")
    if int(node.attr("spatial", 1)) != 1:
        raise unsupported_attr(node, "spatial", node.attr("spatial"),
                               "per-activation statistics (opset < 9) are not supported")
    shape = ins[0].shape
    if len(shape) < 2:
        raise ShapeError(f"{node_label(node)}: input must have rank >= 2 (N, C, ...), got {shape}")
    for i, what in enumerate(("scale", "bias", "mean", "var"), start=1):
        if i >= len(ins) or not ins[i].present or size(ins[i].shape) != shape[1]:
            raise ShapeError(f"{node_label(node)}: {what} (input {i}) must hold {shape[1]} "
                             "values, one per channel")


def _infer(node, ins):
    _check(node, ins)
    return [TensorType(ins[0].shape, ins[0].dtype)]


def _reference(node, args):
    x, scale, bias, mean, var = args[:5]
    eps = node.attr("epsilon", 1e-5)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s = scale.astype(np.float64).reshape(shape) / np.sqrt(var.astype(np.float64).reshape(shape) + eps)
    y = (x - mean.astype(np.float64).reshape(shape)) * s + bias.astype(np.float64).reshape(shape)
    return [y.astype(x.dtype)]


def _lower(node, ctx):
    _check(node, ctx.ins)
    for i in range(5):
        require_float(node, ctx.ins, i)
    shape = ctx.ins[0].shape
    eps = float_literal(node.attr("epsilon", 1e-5))
    return (f"mt_batchnorm_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, {ctx.inp(3)}, "
            f"{ctx.inp(4)}, {ctx.out(0)}, {shape[0]}, {shape[1]}, {size(shape[2:])}, {eps});")


def _macs(node, ins, outs):
    return size(outs[0].shape)


register("BatchNormalization", infer=_infer, reference=_reference, lower=_lower, macs=_macs,
         inplace=True, vjp=lambda node, gb, dys: _vjp(node, gb, dys))


# ---- training ------------------------------------------------------------------
# Frozen BN (the default for training): the running statistics are constants,
# so dx = dy * scale / sqrt(var + eps) and only dscale needs x.
# Train mode: training/norms.py rewrites BN to mt.BatchNormTrain(x, scale, bias,
# running_mean, running_var), which normalizes with the micro-batch statistics
# and updates the running statistics in place (ONNX momentum:
# running = momentum * running + (1 - momentum) * batch; the running variance
# takes the unbiased batch variance like PyTorch, the normalization the biased
# one). Both backward forms run mt.BatchNormGrad(dy, x, scale, mean, var) with
# attribute batch_stats; its statistics are recomputed from x (nothing saved).

def _channel_view(x):
    return (1, -1) + (1,) * (x.ndim - 2)


def _batch_moments(x):
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), axes


def _train_infer(node, ins):
    _check(node, ins)
    return [TensorType(ins[0].shape, ins[0].dtype)]


def _train_reference(node, args):
    x, scale, bias, rmean, rvar = (a.astype(np.float64) for a in args[:5])
    eps, mom = node.attr("epsilon", 1e-5), node.attr("momentum", 0.9)
    mean, var, _ = _batch_moments(x)
    count = x.size // x.shape[1]
    unbiased = var * count / (count - 1) if count > 1 else var
    view = _channel_view(x)
    y = (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + eps) * scale.reshape(view) + bias.reshape(view)
    new_mean = mom * rmean.reshape(-1) + (1 - mom) * mean
    new_var = mom * rvar.reshape(-1) + (1 - mom) * unbiased
    return [new_mean.reshape(args[3].shape).astype(np.float32), new_var.reshape(args[4].shape).astype(np.float32),
            y.astype(np.float32)]


def _train_lower(node, ctx):
    for i in range(5):
        require_float(node, ctx.ins, i)
    shape = ctx.ins[0].shape
    return (f"mt_batchnorm_train_f32({ctx.inp(0)}, {ctx.inp(1)}, {ctx.inp(2)}, (float *){ctx.inp(3)}, "
            f"(float *){ctx.inp(4)}, {ctx.out(0)}, {shape[0]}, {shape[1]}, {size(shape[2:])}, "
            f"{float_literal(node.attr('epsilon', 1e-5))}, {float_literal(node.attr('momentum', 0.9))});")


def _grad_infer(node, ins):
    shape = ins[0].shape
    types = (TensorType(shape, np.float32), TensorType((shape[1],), np.float32),
             TensorType((shape[1],), np.float32))
    return [t for t, w in zip(types, node.attr("want")) if w]


def _grad_reference(node, args):
    dy, x, scale, mean, var = (None if a is None else a.astype(np.float64) for a in (list(args) + [None] * 5)[:5])
    eps = node.attr("epsilon", 1e-5)
    view = _channel_view(dy)
    axes = (0,) + tuple(range(2, dy.ndim))
    if node.attr("batch_stats"):
        mean, var, _ = _batch_moments(x)
    invstd = 1.0 / np.sqrt(var.reshape(-1) + eps)
    k = (scale.reshape(-1) * invstd).reshape(view)
    dbias = dy.sum(axis=axes)
    want = node.attr("want")
    xhat = None
    if x is not None:
        xhat = (x - mean.reshape(view)) * invstd.reshape(view)
    if node.attr("batch_stats"):
        dx = k * (dy - dy.mean(axis=axes).reshape(view) - xhat * (dy * xhat).mean(axis=axes).reshape(view))
    else:
        dx = dy * k
    dscale = (dy * xhat).sum(axis=axes) if want[1] else None
    return [r.astype(np.float32) for r, w in zip((dx, dscale, dbias), want) if w]


def _grad_lower(node, ctx):
    from .layernorm import wanted_outputs
    shape = ctx.ins[0].shape
    dx, dscale, dbias = wanted_outputs(node, ctx)
    operand = [ctx.inp(i) if ctx.has_input(i) else "NULL" for i in range(5)]
    return (f"mt_batchnorm_f32_bwd({', '.join(operand)}, {dx}, {dscale}, {dbias}, {shape[0]}, "
            f"{shape[1]}, {size(shape[2:])}, {float_literal(node.attr('epsilon', 1e-5))}, "
            f"{int(node.attr('batch_stats'))});")


def _grad_macs(node, ins, outs):
    return 3 * size(ins[0].shape)


def _vjp(node, gb, dys):
    from .layernorm import emit_affine_grad
    if gb.needs(3) or gb.needs(4):
        raise UnsupportedOpError(f"{node_label(node)}: the running mean/variance are statistics, "
                                 "not trainable parameters; leave them out of params")
    x, scale, bias, mean, var = node.inputs[:5]
    batch_stats = node.op == "mt.BatchNormTrain"
    need_x = batch_stats or gb.needs(1)
    ins = [dys[0], x if need_x else "", scale, "" if batch_stats or not need_x else mean,
           "" if batch_stats else var]
    attrs = {"epsilon": float(node.attr("epsilon", 1e-5)), "batch_stats": int(batch_stats)}
    shapes = (gb.shape(x), gb.shape(scale), gb.shape(bias))
    return emit_affine_grad(gb, "mt.BatchNormGrad", ins, attrs, shapes) + [None, None]


def _register_training():
    from .layernorm import register_affine_grad
    register("mt.BatchNormTrain", infer=_train_infer, reference=_train_reference, lower=_train_lower,
             macs=_macs, inplace=True, mutates=(3, 4), foldable=False, vjp=_vjp)
    register_affine_grad("mt.BatchNormGrad", infer=_grad_infer, reference=_grad_reference,
                         lower=_grad_lower, macs=_grad_macs)


_register_training()
