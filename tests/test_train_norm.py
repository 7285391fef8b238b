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


def grad_nodes(trainer, op):
    """The backward nodes of `op` (and its not-in-place Params twin) in the step graph."""
    return [n for n in trainer.program.micro.nodes if n.op in (op, op + "Params")]


def assert_pruned(trainer, op, want):
    """Only the wanted of (dx, dscale, dbias) are computed: frozen tensors cost nothing."""
    (node,) = grad_nodes(trainer, op)
    assert list(node.attr("want")) == want, (node.op, node.attrs)
    assert node.op == (op if want[0] else op + "Params")
    assert len(node.outputs) == sum(want)


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
    trainer = check_grads(nodes, {"x": x}, params, fn, consts=consts)
    assert_pruned(trainer, "mt.LayerNormGrad", [int("p" in params), int("scale" in params),
                                                int("bias" in params)])


def test_layernorm_mean_output_gradient_is_refused():
    x, p = randn(2, 4), randn(2, 4)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("LayerNormalization", ["h", "scale"], ["n", "mean"], name="ln"),
             helper.make_node("Add", ["n", "mean"], ["y"])]
    with pytest.raises(MicrotrainError, match="'ln'.*Mean/InvStdDev"):
        check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, scale: x, consts={"scale": randn(4)})


def test_layernorm_constant_broadcast_scale_grads():
    x, p = randn(2, 3, 4), randn(2, 3, 4)
    scale, bias = randn(4) + 1, randn(3, 4)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("LayerNormalization", ["h", "scale", "bias"], ["y"], axis=1)]
    check_grads(nodes, {"x": x}, {"p": p, "bias": bias},
                lambda x, p, bias, scale: F.layer_norm(x + p, (3, 4)) * scale + bias, consts={"scale": scale})


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


GN_CASES = [((2, 4, 3), 2), ((2, 6, 2, 3), 3), ((1, 4, 5), 1), ((2, 4, 2, 2), 4)]


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
    trainer = check_grads(nodes, {"x": x}, params, fn, consts=consts, opset=opset)
    assert_pruned(trainer, "mt.GroupNormGrad", [int("p" in params), int("scale" in params),
                                                int("bias" in params)])


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
@pytest.mark.parametrize("train", ["all", "x", "scale", "bias"])
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
    trainer = check_grads(nodes, {"x": x}, params,
                          lambda x, p, scale, bias, mean, var: F.batch_norm(x + p, mean, var, scale, bias,
                                                                            training=False, eps=1e-3),
                          consts=consts)
    want = [int("p" in params), int("scale" in params), int("bias" in params)]
    assert_pruned(trainer, "mt.BatchNormGrad", want)
    # frozen BN reads x only for dscale
    assert bool(grad_nodes(trainer, "mt.BatchNormGrad")[0].inputs[1]) == bool(want[1])


@pytest.mark.parametrize("shape,momentum", [((2, 3, 4), 0.9), ((3, 2, 2, 3), 0.5), ((4, 5), 0.9), ((1, 2, 5), 0.7)])
@pytest.mark.parametrize("train", ["all", "x", "affine"])
def test_batchnorm_train_mode(shape, momentum, train):
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


# ---- ReduceSum / ReduceMean / ReduceMax / ReduceMin ------------------------------------

REDUCE_TORCH = {"ReduceSum": lambda h, d, k: h.sum(dim=d, keepdim=k),
                "ReduceMean": lambda h, d, k: h.mean(dim=d, keepdim=k),
                "ReduceMax": lambda h, d, k: h.amax(dim=d, keepdim=k),
                "ReduceMin": lambda h, d, k: h.amin(dim=d, keepdim=k)}
# The trainer needs the batch axis in the output: reductions over axis 0 (and
# "all axes") run with batch 1 and keepdims.
REDUCE_CASES = [((2, 3, 4), [1]), ((2, 3, 4), [-1]), ((2, 3, 4), [1, 2]), ((2, 3, 2, 3), [1, 3]),
                ((3, 5), [-1]), ((2, 1, 4), [1, 2]), ((2, 3, 2, 2), [-3, -1])]


def _reduce_nodes(op, axes, keepdims, opset, noop=0):
    from microtrain.ops.reduce import AXES_INPUT_OPSET
    attrs = {"keepdims": keepdims}
    if noop:
        attrs["noop_with_empty_axes"] = 1
    consts = {}
    ins = ["h"]
    if axes is not None and opset >= AXES_INPUT_OPSET[op]:
        consts["axes"] = np.array(axes, np.int64)
        ins.append("axes")
    elif axes is not None:
        attrs["axes"] = axes
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node(op, ins, ["y"], **attrs)]
    return nodes, consts


@pytest.mark.parametrize("op", list(REDUCE_TORCH))
@pytest.mark.parametrize("shape,axes", REDUCE_CASES)
@pytest.mark.parametrize("keepdims,opset", [(1, 17), (0, 18)])   # opset 17: axes attribute (ReduceSum: input)
def test_reduce_grads(op, shape, axes, keepdims, opset):
    x, p = randn(*shape), randn(*shape)
    nodes, consts = _reduce_nodes(op, axes, keepdims, opset)
    dims = tuple(range(len(shape))) if axes is None else tuple(axes)
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p, axes=None: REDUCE_TORCH[op](x + p, dims, bool(keepdims)),
                consts=consts, opset=opset)


@pytest.mark.parametrize("op", list(REDUCE_TORCH))
@pytest.mark.parametrize("axes,opset", [(None, 17), ([0, 2], 18), ([0], 17)])
def test_reduce_over_batch_axis_grads(op, axes, opset):
    x, p = randn(1, 3, 4), randn(1, 3, 4)
    nodes, consts = _reduce_nodes(op, axes, 1, opset)
    dims = (0, 1, 2) if axes is None else tuple(axes)
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p, axes=None: REDUCE_TORCH[op](x + p, dims, True), consts=consts, opset=opset)


@pytest.mark.parametrize("op", list(REDUCE_TORCH))
def test_reduce_empty_axes_noop_grads(op):
    x, p = randn(2, 3), randn(2, 3)
    nodes, consts = _reduce_nodes(op, [], 1, 18, noop=1)
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, axes: x + p, consts=consts, opset=18)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
def test_reduce_extreme_ties_split_evenly(op):
    """Exact ties (integers + a zero parameter): dy is shared like torch.amax/amin."""
    x = rng.integers(-2, 3, (2, 4, 3)).astype(np.float32)
    p = np.zeros((2, 4, 3), np.float32)
    nodes, consts = _reduce_nodes(op, [1], 1, 18)
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p, axes: REDUCE_TORCH[op](x + p, (1,), True),
                consts=consts, opset=18)


def test_batchnorm_running_stats_as_params_are_refused():
    x = randn(2, 3, 4)
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], name="bn")]
    stats = _bn_stats(3)
    with pytest.raises(MicrotrainError, match="'bn'.*running mean/variance"):
        check_grads(nodes, {"x": x}, {"mean": stats["mean"]},
                    lambda x, mean, scale, bias, var: x,
                    consts={"scale": randn(3), "bias": randn(3), "var": stats["var"]})
