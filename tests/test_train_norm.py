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
