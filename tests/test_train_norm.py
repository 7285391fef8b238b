"""Gradient rules of the normalization and softmax/reduction families vs
PyTorch autograd (float64), through the generated C and the golden model
(see grad_check.py). Gradients w.r.t. run-time tensors are checked by adding a
trainable full-shape parameter to the input first."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

from grad_check import check_grads
from microtrain.errors import MicrotrainError

rng = np.random.default_rng(11)


def randn(*shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# ---- LayerNormalization -----------------------------------------------------------

LN_CASES = [((2, 3, 4), -1, True), ((2, 3, 4), 1, True), ((2, 3, 4), -2, False), ((3, 5), -1, True),
            ((2, 2, 3, 2), 2, True), ((4, 6), 0, False)]


@pytest.mark.parametrize("shape,axis,with_bias", LN_CASES)
@pytest.mark.parametrize("train", ["all", "x", "affine"])
def test_layernorm_grads(shape, axis, with_bias, train):
    x, p = randn(*shape), randn(*shape)
    norm_shape = shape[axis % len(shape):]
    scale, bias = randn(*norm_shape) + 1, randn(*norm_shape)
    ins = ["h", "scale"] + (["bias"] if with_bias else [])
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=1e-3)]
    wb = {"scale": scale, **({"bias": bias} if with_bias else {})}
    params = {"p": p, **wb} if train == "all" else {"p": p} if train == "x" else wb
    consts = {k: v for k, v in {"p": p, **wb}.items() if k not in params}
    dims = tuple(range(axis % len(shape), len(shape)))

    def fn(x, p, scale, bias=None):
        h = x + p
        m = h.mean(dim=dims, keepdim=True)
        v = ((h - m) ** 2).mean(dim=dims, keepdim=True)
        y = (h - m) / torch.sqrt(v + 1e-3) * scale
        return y + bias if bias is not None else y
    check_grads(nodes, {"x": x}, params, fn, consts=consts)


def test_layernorm_trainable_broadcast_bias_is_refused():
    """The forward kernel needs a broadcast bias constant: training it is refused clearly."""
    x, p = randn(2, 3, 4), randn(2, 3, 4)
    scale, bias = randn(3, 4) + 1, randn(4)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("LayerNormalization", ["h", "scale", "bias"], ["y"], axis=1, name="ln")]
    with pytest.raises(MicrotrainError, match="'ln'"):
        check_grads(nodes, {"x": x}, {"p": p, "bias": bias},
                    lambda x, p, bias, scale: F.layer_norm(x + p, (3, 4), scale, None) + bias,
                    consts={"scale": scale})


# ---- GroupNormalization / InstanceNormalization ----------------------------------------

def _trainable_split(train, p, affine):
    params = {"p": p, **affine} if train == "all" else {"p": p} if train == "x" else dict(affine)
    consts = {k: v for k, v in {"p": p, **affine}.items() if k not in params}
    return params, consts


GN_CASES = [((2, 4, 3), 2), ((2, 6, 2, 3), 3), ((1, 4, 5), 1), ((2, 4, 2, 2), 4), ((3, 2, 7), 2)]


@pytest.mark.parametrize("shape,groups", GN_CASES)
@pytest.mark.parametrize("opset", [18, 21])
@pytest.mark.parametrize("train", ["all", "x", "affine"])
def test_groupnorm_grads(shape, groups, opset, train):
    c = shape[1]
    nparams = c if opset >= 21 else groups
    x, p = randn(*shape), randn(*shape)
    affine = {"scale": randn(nparams) + 1, "bias": randn(nparams)}
    params, consts = _trainable_split(train, p, affine)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("GroupNormalization", ["h", "scale", "bias"], ["y"], num_groups=groups,
                              epsilon=1e-4)]
    bshape = (1, c) + (1,) * (len(shape) - 2)

    def fn(x, p, scale, bias):
        if opset < 21:   # per-group affine: each group's value repeated over its channels
            scale, bias = scale.repeat_interleave(c // groups), bias.repeat_interleave(c // groups)
        return F.group_norm(x + p, groups, eps=1e-4) * scale.reshape(bshape) + bias.reshape(bshape)
    check_grads(nodes, {"x": x}, params, fn, consts=consts, opset=opset)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 2, 3, 4), (1, 4, 6), (2, 1, 2, 2, 3)])
@pytest.mark.parametrize("train", ["all", "x", "affine"])
def test_instancenorm_grads(shape, train):
    c = shape[1]
    x, p = randn(*shape), randn(*shape)
    affine = {"scale": randn(c) + 1, "bias": randn(c)}
    params, consts = _trainable_split(train, p, affine)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("InstanceNormalization", ["h", "scale", "bias"], ["y"], epsilon=1e-3)]
    check_grads(nodes, {"x": x}, params,
                lambda x, p, scale, bias: F.instance_norm(x + p, weight=scale, bias=bias, eps=1e-3),
                consts=consts)
