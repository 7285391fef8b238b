"""Reduce*: C kernel vs golden model vs onnxruntime over ranks, axis sets
(contiguous, non-contiguous, negative, all, empty), keepdims, axes as
attribute (old opsets) vs input (ReduceSum >= 13, others >= 18) and
noop_with_empty_axes."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError
from onnx_check import assert_close, check_model, make_model, ort_run

rng = np.random.default_rng(0)

OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
       "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]


def _input(op, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    if op == "ReduceLogSum":
        x = np.abs(x) + 0.1          # log of a positive sum
    if op == "ReduceProd":
        x = np.sign(x) * (0.8 + 0.4 * rng.random(shape)).astype(np.float32)  # no under/overflow
    return x.astype(np.float32)


def _axes_input_opset(op):
    return 13 if op == "ReduceSum" else 18


def _run(op, shape, axes, keepdims, axes_as_input, noop=None):
    x = _input(op, shape)
    attrs = {"keepdims": keepdims}
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    inits = {}
    if axes_as_input:
        opset = _axes_input_opset(op)
        ins = ["x"]
        if axes is not None:
            ins.append("axes")
            inits["axes"] = np.array(axes, dtype=np.int64)
    else:
        opset = 11 if noop is None else 13  # 13 still has the attribute for all but ReduceSum
        ins = ["x"]
        if axes is not None:
            attrs["axes"] = axes
    node = helper.make_node(op, ins, ["y"], name="red", **attrs)
    m = make_model([node], {"x": x}, ["y"], inits, opset=opset)
    return check_model(m, {"x": x})


# (shape, axes) with contiguous, split, negative and full axis sets.
CASES = [((7,), [0]), ((3, 5), [1]), ((3, 5), [0]), ((3, 5), [-1, -2]),
         ((2, 3, 4), [1]), ((2, 3, 4), [0, 2]), ((2, 3, 4), [-1]), ((2, 1, 4), [1]),
         ((2, 3, 4, 5), [1, 2]), ((2, 3, 4, 5), [0, 2]), ((2, 3, 4, 5), [1, 3]),
         ((2, 3, 4, 5), [-3, -1, 0]), ((2, 3, 4, 5), None)]


# Every op on a representative subset; the kernel's axis handling (shared by
# all ops) on every case with the three ops of the foundation set.
OP_CASES = ([(op, *case) for op in OPS[:3] for case in CASES]
            + [(op, *CASES[i]) for op in OPS[3:] for i in (0, 3, 5, 8, 10, 12)])


@pytest.mark.parametrize("op,shape,axes", OP_CASES)
def test_reduce_axes_as_input(op, shape, axes):
    _run(op, shape, axes, keepdims=int(len(shape) % 2 == 0), axes_as_input=True)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceL2"])
@pytest.mark.parametrize("shape,axes", CASES[::2])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_axes_attribute_keepdims(op, shape, axes, keepdims):
    _run(op, shape, axes, keepdims, axes_as_input=False)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean", "ReduceSumSquare", "ReduceL2"])
@pytest.mark.parametrize("noop", [0, 1])
@pytest.mark.parametrize("empty", ["omitted", "empty tensor"])
def test_reduce_empty_axes(op, noop, empty):
    shape = (2, 3, 4)
    x = _input(op, shape)
    ins, inits = ["x"], {}
    if empty == "empty tensor":
        ins.append("axes")
        inits["axes"] = np.zeros((0,), dtype=np.int64)
    node = helper.make_node(op, ins, ["y"], name="red", keepdims=0, noop_with_empty_axes=noop)
    m = make_model([node], {"x": x}, ["y"], inits, opset=_axes_input_opset(op))
    cm, got = check_model(m, {"x": x})
    assert got["y"].shape == (shape if noop else ())


def test_reduce_scalar_input():
    x = np.array(2.5, dtype=np.float32)
    m = make_model([helper.make_node("ReduceMax", ["x"], ["y"], keepdims=0)], {"x": x}, ["y"],
                   opset=18)
    check_model(m, {"x": x})


def test_reduce_folds_int64_shape_arithmetic():
    # ReduceProd of a constant int64 shape is folded at compile time.
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    nodes = [helper.make_node("ReduceProd", ["s"], ["n"], keepdims=1),
             helper.make_node("Reshape", ["x", "n"], ["y"])]
    m = make_model(nodes, {"x": x}, ["y"], {"s": np.array([2, 3, 4], np.int64)}, opset=18)
    cm, got = check_model(m, {"x": x})
    assert got["y"].shape == (24,)


def test_error_axes_not_constant():
    x = rng.standard_normal((2, 3)).astype(np.float32)
    axes = np.array([1], dtype=np.int64)
    m = make_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="red")],
                   {"x": x, "axes": axes}, ["y"], opset=13)
    with pytest.raises(MicrotrainError, match="'red'.*axes"):
        microtrain.compile(m)


@pytest.mark.parametrize("axes", [[3], [0, 0], [-4]])
def test_error_bad_axes(axes):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    m = make_model([helper.make_node("ReduceMean", ["x"], ["y"], name="red", axes=axes)],
                   {"x": x}, ["y"], opset=13)
    with pytest.raises(MicrotrainError, match="'red'"):
        microtrain.compile(m)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceProd", "ReduceL2", "ReduceSumSquare",
                                "ReduceMin", "ReduceMax", "ReduceLogSumExp"])
def test_reduce_empty_set(op):
    # Reducing a size-0 axis gives the op's identity (ONNX *_empty_set cases).
    # An ONNX dim of 0 reads as "unknown", so the shape is given at compile time.
    x = np.zeros((2, 0, 4), dtype=np.float32)
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=1)
    m = make_model([node], {"x": x}, ["y"], {"axes": np.array([1], np.int64)}, opset=18)
    cm = microtrain.compile(m, input_shapes={"x": x.shape})
    want = ort_run(m, {"x": x})["y"]
    assert_close(cm.reference({"x": x})["y"], want, what="golden vs onnxruntime")
    assert_close(cm.run({"x": x})["y"], want, what="C vs onnxruntime")


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("shape,axis", [((7,), 0), ((3, 5), 1), ((3, 5), -2), ((2, 3, 4), 1),
                                        ((2, 3, 4, 5), -1), ((2, 3, 4, 5), 0)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_argmax_argmin(op, shape, axis, keepdims):
    x = rng.standard_normal(shape).astype(np.float32)
    node = helper.make_node(op, ["x"], ["y"], axis=axis, keepdims=keepdims)
    m = make_model([node], {"x": x}, ["y"], opset=13, output_dtypes={"y": np.int64})
    check_model(m, {"x": x})


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("select_last", [0, 1])
def test_argmax_ties_select_last_index(op, select_last):
    # Few distinct values: ties decide which index wins.
    x = rng.integers(0, 3, size=(4, 6, 3)).astype(np.float32)
    node = helper.make_node(op, ["x"], ["y"], axis=1, select_last_index=select_last)
    m = make_model([node], {"x": x}, ["y"], opset=13, output_dtypes={"y": np.int64})
    check_model(m, {"x": x})
