"""The suite-wide target switch (MICROTRAIN_TEST_TARGET, tests/conftest.py):
compiles that name no target build for the suite's target, and its results
come from the emulated firmware. In a host run this checks the default."""
import numpy as np
from onnx import helper

import microtrain
from microtrain.compiler import compile_graph, lower_to_graph
from onnx_check import make_model
from suite_target import TEST_TARGET


def relu_model():
    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(1, 12)
    return make_model([helper.make_node("Relu", ["x"], ["y"])], {"x": x}, ["y"]), x


def test_compile_and_compile_graph_default_to_the_suite_target():
    model, x = relu_model()
    cm = microtrain.compile(model)
    assert cm.target_info.name == TEST_TARGET
    assert compile_graph(lower_to_graph(model, None)).target_info.name == TEST_TARGET
    np.testing.assert_array_equal(cm.run({"x": x})["y"], np.maximum(x, 0))
    assert microtrain.compile(model, "host").target_info.name == "host"   # a named target is kept


def test_compile_training_defaults_to_the_suite_target():
    w = np.full((12, 3), 0.1, np.float32)
    x = np.ones((1, 12), np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": x}, ["y"], {"w": w})
    tr = microtrain.compile_training(model, params=["w"], loss="mse", lr=0.5)
    assert tr.target == TEST_TARGET
    loss = tr.step(x, np.zeros((1, 3), np.float32))
    np.testing.assert_allclose(loss, np.mean(np.full(3, 1.2) ** 2), rtol=1e-5)
