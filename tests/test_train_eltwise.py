"""Gradient rules of element-wise ops vs PyTorch autograd (see grad_check.py)."""
import numpy as np
import pytest
import torch
from onnx import helper

from grad_check import check_grads

rng = np.random.default_rng(3)

BINARY = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}


@pytest.mark.parametrize("op", list(BINARY))
@pytest.mark.parametrize("pshape", [(1, 3, 4), (3, 4), (4,), (3, 1)])
def test_binary_grads_with_broadcast(op, pshape):
    x = rng.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    p = rng.uniform(0.5, 1.5, pshape).astype(np.float32)
    q = rng.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    # y = (x + q) op p : grads for both the broadcast operand p and the full-shape q
    nodes = [helper.make_node("Add", ["x", "q"], ["h"]), helper.make_node(op, ["h", "p"], ["y"])]
    check_grads(nodes, {"x": x}, {"p": p, "q": q}, lambda x, p, q: BINARY[op](x + q, p))


UNARY = [("Sqrt", {}, torch.sqrt, True), ("Exp", {}, torch.exp, False), ("Erf", {}, torch.erf, False),
         ("Relu", {}, torch.relu, False), ("LeakyRelu", {"alpha": 0.1}, lambda t: torch.nn.functional.leaky_relu(t, 0.1), False),
         ("Sigmoid", {}, torch.sigmoid, False), ("Tanh", {}, torch.tanh, False),
         ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, torch.nn.functional.hardsigmoid, False),
         ("HardSwish", {}, torch.nn.functional.hardswish, False),
         ("Elu", {"alpha": 0.8}, lambda t: torch.nn.functional.elu(t, 0.8), False),
         ("Neg", {}, torch.neg, False), ("Abs", {}, torch.abs, False), ("Softplus", {}, torch.nn.functional.softplus, False)]


@pytest.mark.parametrize("op,attrs,fn,positive", UNARY, ids=[u[0] for u in UNARY])
def test_unary_grads(op, attrs, fn, positive):
    x = (rng.standard_normal((2, 5, 3)) * 2).astype(np.float32)
    p = (rng.standard_normal((2, 5, 3)) * 2).astype(np.float32)
    if positive:
        x, p = np.abs(x) + 0.5, np.abs(p) + 0.5
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node(op, ["h"], ["y"], **attrs)]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: fn(x + p))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_grads(approximate):
    x = (rng.standard_normal((2, 8)) * 2).astype(np.float32)
    p = (rng.standard_normal((2, 8))).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Gelu", ["h"], ["y"], approximate=approximate)]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: torch.nn.functional.gelu(x + p, approximate=approximate),
                opset=20)


def test_clip_grads():
    x = (rng.standard_normal((2, 8)) * 3).astype(np.float32)
    p = rng.standard_normal((2, 8)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Clip", ["h", "lo", "hi"], ["y"])]
    consts = {"lo": np.array(-1.0, np.float32), "hi": np.array(1.5, np.float32)}
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, lo, hi: torch.clamp(x + p, -1.0, 1.5), consts=consts)


def test_shared_tensor_read_twice():
    x = rng.standard_normal((2, 4)).astype(np.float32)
    p = rng.standard_normal((2, 4)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Mul", ["h", "h"], ["m"]),
             helper.make_node("Mul", ["m", "p"], ["y"])]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: (x + p) * (x + p) * p)
