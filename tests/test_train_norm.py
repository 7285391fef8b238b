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


# ---- BatchNormalization ------------------------------------------------------------

BN_SHAPES = [(2, 3, 4), (3, 2, 2, 3), (4, 5), (2, 1, 3, 3)]


def _bn_stats(c):
    return {"mean": randn(c, scale=0.3), "var": (rng.uniform(0.5, 1.5, c)).astype(np.float32)}


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("train", ["all", "x", "affine", "scale", "bias"])
def test_batchnorm_frozen_grads(shape, train):
    c = shape[1]
    x, p = randn(*shape), randn(*shape)
    affine = {"scale": randn(c) + 1, "bias": randn(c)}
    pool = {"p": p, **affine}
    keys = {"all": ["p", "scale", "bias"], "x": ["p"], "affine": ["scale", "bias"],
            "scale": ["scale"], "bias": ["bias"]}[train]
    params = {k: pool[k] for k in keys}
    consts = {**{k: v for k, v in pool.items() if k not in params}, **_bn_stats(c)}
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("BatchNormalization", ["h", "scale", "bias", "mean", "var"], ["y"],
                              epsilon=1e-3)]
    check_grads(nodes, {"x": x}, params,
                lambda x, p, scale, bias, mean, var: F.batch_norm(x + p, mean, var, scale, bias,
                                                                  training=False, eps=1e-3),
                consts=consts)


@pytest.fixture
def running_stats_in_state(monkeypatch):
    """Local workaround (see the report): training/program.py leaves the inputs
    that mt.BatchNormTrain mutates (running mean/var) as read-only constants;
    move them into the program's state so C and golden model can update them."""
    import microtrain.training.trainer as trainer_mod
    from microtrain.ops.registry import get_op
    original = trainer_mod.build_program

    def build_program(forward, trainable, spec):
        program = original(forward, trainable, spec)
        for graph in (program.micro, program.infer):
            for node in graph.nodes:
                for idx in get_op(node).mutates:
                    name = node.inputs[idx] if idx < len(node.inputs) else ""
                    if name in graph.constants:
                        arr = graph.constants.pop(name)
                        program.state_init.setdefault(name, arr.copy())
        return program
    monkeypatch.setattr(trainer_mod, "build_program", build_program)


@pytest.mark.parametrize("shape", BN_SHAPES[:3] + [(1, 2, 5)])
@pytest.mark.parametrize("momentum", [0.9, 0.5])
@pytest.mark.parametrize("train", ["all", "x", "affine"])
def test_batchnorm_train_mode(running_stats_in_state, shape, momentum, train):
    import microtrain
    import grad_check
    c = shape[1]
    x, p = randn(*shape), randn(*shape)
    affine = {"scale": randn(c) + 1, "bias": randn(c)}
    params, consts = _trainable_split(train, p, affine)
    stats = _bn_stats(c)
    torch_stats = {k: torch.tensor(v, dtype=torch.float64) for k, v in stats.items()}
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("BatchNormalization", ["h", "scale", "bias", "mean", "var"], ["y"],
                              epsilon=1e-3, momentum=momentum)]

    def fn(x, p, scale, bias, mean, var):   # PyTorch's momentum is 1 - ONNX's
        return F.batch_norm(x + p, torch_stats["mean"], torch_stats["var"], scale, bias,
                            training=True, momentum=1 - momentum, eps=1e-3)
    orig_compile = microtrain.compile_training

    def compile_train_mode(*a, **kw):
        return orig_compile(*a, batchnorm="train", **kw)
    grad_check.microtrain.compile_training = compile_train_mode
    try:
        trainer = check_grads(nodes, {"x": x}, params, fn, consts={**consts, **stats})
    finally:
        grad_check.microtrain.compile_training = orig_compile
    _, golden_state = trainer.reference_step(x, np.zeros((shape[0],) + shape[1:], np.float32))
    for k in ("mean", "var"):
        want = torch_stats[k].numpy()
        np.testing.assert_allclose(trainer._state[k], want, rtol=1e-5, atol=1e-6, err_msg=f"C running {k}")
        np.testing.assert_allclose(golden_state[k], want, rtol=1e-5, atol=1e-6, err_msg=f"golden running {k}")


# ---- Softmax / LogSoftmax -------------------------------------------------------------

SOFTMAX_CASES = [((2, 5), -1, 17), ((2, 3, 4), 1, 17), ((2, 3, 4), 0, 17), ((3, 2, 2, 3), -2, 17),
                 ((2, 3, 4), 1, 11), ((2, 3, 4), 2, 11)]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis,opset", SOFTMAX_CASES)
def test_softmax_grads(op, shape, axis, opset):
    x, p = randn(*shape, scale=2.0), randn(*shape)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node(op, ["h"], ["y"], axis=axis)]
    fn = torch.softmax if op == "Softmax" else torch.log_softmax

    def torch_fn(x, p):
        h = x + p
        if opset < 13:   # coerced to 2-D at axis, normalized over the flattened tail
            a = axis % len(shape)
            return fn(h.reshape(int(np.prod(shape[:a])), -1), 1).reshape(shape)
        return fn(h, axis)
    check_grads(nodes, {"x": x}, {"p": p}, torch_fn, opset=opset)
