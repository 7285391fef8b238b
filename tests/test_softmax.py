"""Softmax / LogSoftmax: every axis (positive and negative) of ranks 1-4 at
opset 13+, and the coerce-to-2D semantics of opsets < 13."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError
from onnx_check import check_model, make_model

rng = np.random.default_rng(0)

SHAPES_AXES = [((7,), 0), ((7,), -1), ((3, 5), 0), ((3, 5), 1), ((3, 5), -2),
               ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((2, 3, 4, 5), 1),
               ((2, 3, 4, 5), -2), ((2, 3, 4, 5), 3), ((1, 1, 1, 6), -1)]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_softmax_axis(op, shape, axis):
    x = (rng.standard_normal(shape) * 4).astype(np.float32)
    m = make_model([helper.make_node(op, ["x"], ["y"], axis=axis)], {"x": x}, ["y"], opset=13)
    check_model(m, {"x": x})


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_default_axis_and_large_values(op):
    # Large logits: only a max-subtracted kernel avoids overflow here.
    x = (rng.standard_normal((3, 10)) * 40 + 100).astype(np.float32)
    m = make_model([helper.make_node(op, ["x"], ["y"])], {"x": x}, ["y"], opset=18)
    cm, got = check_model(m, {"x": x})
    assert np.all(np.isfinite(got["y"]))


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((2, 3, 4), None), ((2, 3, 4), 0), ((2, 3, 4), 2),
                                        ((2, 3, 4, 5), -2), ((3, 5), 1)])
def test_softmax_legacy_flatten(op, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    attrs = {} if axis is None else {"axis": axis}
    m = make_model([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": x}, ["y"], opset=11)
    check_model(m, {"x": x})


def test_softmax_runs_in_place_after_add():
    x = rng.standard_normal((4, 6)).astype(np.float32)
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]),
             helper.make_node("Softmax", ["a"], ["y"], axis=0)]
    check_model(make_model(nodes, {"x": x}, ["y"], opset=13), {"x": x})


def test_error_axis_out_of_range():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    m = make_model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=2)], {"x": x},
                   ["y"], opset=13)
    with pytest.raises(MicrotrainError, match="'sm'"):
        microtrain.compile(m)
