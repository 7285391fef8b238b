"""Graph passes: each checked for what it removes AND that numbers still match onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from microtrain.compiler import lower_to_graph
from microtrain.frontend import onnx_to_ir
from onnx_check import check_model, make_model

rng = np.random.default_rng(1)


def bn_params(c):
    return {"g": rng.uniform(0.5, 1.5, c).astype(np.float32), "b": rng.standard_normal(c).astype(np.float32),
            "m": rng.standard_normal(c).astype(np.float32), "v": rng.uniform(0.5, 2, c).astype(np.float32)}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("group", [1, 2])
def test_batchnorm_folds_into_conv(bias, group):
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    inits = {"w": rng.standard_normal((6, 4 // group, 3, 3)).astype(np.float32), **bn_params(6)}
    conv_in = ["x", "w"]
    if bias:
        inits["cb"] = rng.standard_normal(6).astype(np.float32)
        conv_in.append("cb")
    nodes = [helper.make_node("Conv", conv_in, ["c"], group=group, pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["y"], epsilon=1e-3)]
    m = make_model(nodes, {"x": x}, ["y"], inits)
    cm, _ = check_model(m, {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Conv"]


@pytest.mark.parametrize("trans_b", [0, 1])
def test_batchnorm_folds_into_gemm(trans_b):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    w = rng.standard_normal((4, 5) if trans_b else (5, 4)).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=trans_b, alpha=0.5, beta=2.0),
             helper.make_node("Unsqueeze", ["h", "ax"], ["h4"]),
             helper.make_node("BatchNormalization", ["h4", "g", "b", "m", "v"], ["y"])]
    inits = {"w": w, "c": rng.standard_normal(4).astype(np.float32), "ax": np.array([2, 3]), **bn_params(4)}
    # BN after an Unsqueeze cannot fold (not directly after the Gemm): it must still be right.
    check_model(make_model(nodes, {"x": x}, ["y"], inits, opset=17), {"x": x})
    nodes2 = [helper.make_node("Gemm", ["x", "w", "c"], ["h"], transB=trans_b, alpha=0.5, beta=2.0),
              helper.make_node("BatchNormalization", ["h", "g", "b", "m", "v"], ["y"])]
    cm, _ = check_model(make_model(nodes2, {"x": x}, ["y"], inits), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Gemm"]


def test_identity_and_dropout_removed():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    nodes = [helper.make_node("Identity", ["x"], ["a"]), helper.make_node("Relu", ["a"], ["b"]),
             helper.make_node("Dropout", ["b"], ["c"]), helper.make_node("Sigmoid", ["c"], ["y"])]
    cm, _ = check_model(make_model(nodes, {"x": x}, ["y"]), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Relu", "Sigmoid"]


def test_constant_subgraph_folds():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    nodes = [helper.make_node("Mul", ["c1", "c2"], ["k"]), helper.make_node("Exp", ["k"], ["e"]),
             helper.make_node("Add", ["x", "e"], ["y"])]
    inits = {"c1": np.array([1, 2, 3], np.float32), "c2": np.array([0.5, 0.25, 0.1], np.float32)}
    cm, _ = check_model(make_model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert [n.op for n in cm.graph.nodes] == ["Add"]


def test_shape_chain_from_pytorch_export_folds():
    """x.view(x.size(0), -1) exported as Shape->Gather->Unsqueeze->Concat->Reshape."""
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    cm, got = check_model(make_model(nodes, {"x": x}, ["y"], inits), {"x": x})
    assert got["y"].shape == (2, 12)
    assert [n.op for n in cm.graph.nodes] == ["Reshape"]


def test_graph_prints_every_tensor_with_shape():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    m = make_model([helper.make_node("Relu", ["x"], ["y"], name="act")], {"x": x}, ["y"])
    g = lower_to_graph(m)
    text = str(g)
    assert "act" in text and "Relu" in text and "float32[2x3]" in text
    assert "float32[2x3]" in str(onnx_to_ir(m))
