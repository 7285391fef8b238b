"""BatchNormalization (inference), LayerNormalization, InstanceNormalization,
GroupNormalization (opset 18 per-group and opset 21 per-channel affine)."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError
from onnx_check import check_model, make_model

rng = np.random.default_rng(0)


def _randn(*shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


def _bn_params(c):
    return {"scale": _randn(c), "bias": _randn(c), "mean": _randn(c),
            "var": (rng.random(c) + 0.5).astype(np.float32)}


# ---- BatchNormalization ---------------------------------------------------

@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5), (2, 4, 3, 5), (1, 2, 3, 2, 4)])
@pytest.mark.parametrize("epsilon", [1e-5, 0.1])
def test_batchnorm_on_input(shape, epsilon):
    x = _randn(*shape, scale=2.0, shift=1.0)
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"],
                            epsilon=epsilon)
    check_model(make_model([node], {"x": x}, ["y"], _bn_params(shape[1]), opset=15), {"x": x})


def test_batchnorm_after_add_is_not_folded():
    x = _randn(2, 3, 4, 4)
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
             helper.make_node("BatchNormalization", ["a", "scale", "bias", "mean", "var"], ["y"])]
    cm, _ = check_model(make_model(nodes, {"x": x}, ["y"], _bn_params(3), opset=14), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Add", "BatchNormalization"]


def test_batchnorm_runtime_parameters():
    x = _randn(2, 3, 4)
    params = _bn_params(3)
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"])
    inputs = {"x": x, **params}
    check_model(make_model([node], inputs, ["y"], opset=15), inputs)


@pytest.mark.parametrize("attrs,outputs", [({"training_mode": 1}, ["y"]),
                                           ({"training_mode": 1}, ["y", "rm", "rv"])])
def test_error_batchnorm_training_mode(attrs, outputs):
    x = _randn(2, 3, 4)
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], outputs,
                            name="bn", **attrs)
    m = make_model([node], {"x": x}, outputs, _bn_params(3), opset=15)
    with pytest.raises(MicrotrainError, match="'bn'.*eval mode"):
        microtrain.compile(m)


# ---- LayerNormalization ----------------------------------------------------

LN_CASES = [((6,), -1), ((3, 8), -1), ((3, 8), 0), ((2, 3, 8), -1), ((2, 3, 8), 1),
            ((2, 3, 8), -2), ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 2), ((2, 3, 4, 5), 1)]


@pytest.mark.parametrize("shape,axis", LN_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_layernorm(shape, axis, with_bias):
    x = _randn(*shape, scale=3.0, shift=2.0)
    norm_shape = shape[axis % len(shape):]
    inits = {"scale": _randn(*norm_shape)}
    ins = ["x", "scale"]
    if with_bias:
        inits["bias"] = _randn(*norm_shape)
        ins.append("bias")
    node = helper.make_node("LayerNormalization", ins, ["y"], axis=axis, epsilon=1e-3)
    check_model(make_model([node], {"x": x}, ["y"], inits), {"x": x})


@pytest.mark.parametrize("outputs", [["y", "mean", "invstd"], ["y", "mean"], ["y", "", "invstd"]])
def test_layernorm_mean_invstd_outputs(outputs):
    x = _randn(2, 3, 6, shift=1.0)
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], outputs, axis=1)
    inits = {"scale": _randn(3, 6), "bias": _randn(3, 6)}
    check_model(make_model([node], {"x": x}, [o for o in outputs if o], inits), {"x": x})


def test_layernorm_broadcast_scale_and_runtime_scale():
    x = _randn(2, 3, 4, 6)
    # scale (6,) broadcast over the normalized shape (4, 6); bias given at run time
    node = helper.make_node("LayerNormalization", ["x", "scale", "bias"], ["y"], axis=2)
    bias = _randn(4, 6)
    m = make_model([node], {"x": x, "bias": bias}, ["y"], {"scale": _randn(6)})
    check_model(m, {"x": x, "bias": bias})


def test_error_layernorm_runtime_broadcast_scale():
    x = _randn(2, 4, 6)
    scale = _randn(6)
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln", axis=1)
    m = make_model([node], {"x": x, "scale": scale}, ["y"])
    with pytest.raises(MicrotrainError, match="'ln'.*constant"):
        microtrain.compile(m)


# ---- InstanceNormalization / GroupNormalization ----------------------------

@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 4, 3, 5), (1, 2, 3, 2, 4), (3, 2, 1)])
def test_instancenorm(shape):
    x = _randn(*shape, scale=2.0, shift=-1.0)
    c = shape[1]
    node = helper.make_node("InstanceNormalization", ["x", "scale", "bias"], ["y"], epsilon=1e-4)
    check_model(make_model([node], {"x": x}, ["y"], {"scale": _randn(c), "bias": _randn(c)}),
                {"x": x})


GN_CASES = [((2, 6, 5), 3), ((2, 6, 5), 1), ((2, 6, 5), 6), ((1, 4, 3, 3), 2),
            ((2, 8, 2, 3, 2), 4), ((3, 4), 2)]


@pytest.mark.parametrize("shape,groups", GN_CASES)
@pytest.mark.parametrize("opset", [18, 21])
def test_groupnorm(shape, groups, opset):
    x = _randn(*shape, scale=2.0, shift=0.5)
    n_affine = groups if opset < 21 else shape[1]
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"],
                            num_groups=groups, epsilon=1e-3)
    inits = {"scale": _randn(n_affine), "bias": _randn(n_affine)}
    check_model(make_model([node], {"x": x}, ["y"], inits, opset=opset), {"x": x})


@pytest.mark.parametrize("groups,opset,n_affine", [(4, 18, 6), (3, 21, 3), (4, 21, 6)])
def test_error_groupnorm_bad_groups_or_affine(groups, opset, n_affine):
    x = _randn(2, 6, 4)
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], name="gn",
                            num_groups=groups)
    inits = {"scale": _randn(n_affine), "bias": _randn(n_affine)}
    m = make_model([node], {"x": x}, ["y"], inits, opset=opset)
    with pytest.raises(MicrotrainError, match="'gn'"):
        microtrain.compile(m)


def test_error_layernorm_scale_does_not_broadcast():
    x = _randn(2, 4, 6)
    node = helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln", axis=-1)
    m = make_model([node], {"x": x}, ["y"], {"scale": _randn(4)})
    with pytest.raises(MicrotrainError, match="'ln'.*broadcast"):
        microtrain.compile(m)


def test_error_batchnorm_per_activation_spatial():
    x = _randn(2, 3, 4)
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"],
                            name="bn", spatial=0)
    m = make_model([node], {"x": x}, ["y"], _bn_params(3), opset=7)
    with pytest.raises(MicrotrainError, match="'bn'.*spatial"):
        microtrain.compile(m)
