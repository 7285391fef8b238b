"""BatchNormalization, inference form: y = (x - mean) / sqrt(var + eps) * scale
+ bias per channel (axis 1), any rank >= 2. A BN right after Conv/Gemm is
folded away by passes/fold_batchnorm.py; this kernel runs the others.
Training mode (batch statistics, running-stat outputs) is not supported."""
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
         inplace=True)
