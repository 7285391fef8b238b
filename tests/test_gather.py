"""Gather: embedding lookup with run-time ids, constant indices on any axis,
negative axes and indices, int32/int64 indices, scalar indices."""
import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError, ShapeError
from onnx_check import check_model, make_model

rng = np.random.default_rng(2)

# Shared-code bug (reported): frontend.py/infer.py store constants with
# np.ascontiguousarray, which turns 0-d arrays into shape (1,). Scalar
# constant indices then keep their axis. Strict, so the fix makes these pass loudly.


@pytest.mark.parametrize("vocab,dim,ids_shape", [(10, 4, (5,)), (50, 8, (2, 7)), (7, 3, ()), (16, 1, (1, 3, 2))])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_embedding_lookup_runtime_ids(vocab, dim, ids_shape, index_dtype):
    """Gather(table constant, ids run-time): the table lives in flash, ids arrive at run time."""
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids = rng.integers(-vocab, vocab, ids_shape).astype(index_dtype)  # negatives count from the end
    node = helper.make_node("Gather", ["table", "ids"], ["y"], name="emb")
    m = make_model([node], {"ids": ids}, ["y"], {"table": table})
    cm, _ = check_model(m, {"ids": ids})
    assert [n.op for n in cm.graph.nodes] == ["Gather"]


def test_embedding_then_compute():
    table = rng.standard_normal((12, 6)).astype(np.float32)
    ids = np.array([[0, 11, 5, -1]], np.int64)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="emb"),
             helper.make_node("Relu", ["e"], ["r"]),
             helper.make_node("Gather", ["r", "pos"], ["y"], name="pick", axis=1)]
    m = make_model(nodes, {"ids": ids}, ["y"], {"table": table, "pos": np.array(-1, np.int64)})
    check_model(m, {"ids": ids})


def test_embedding_then_compute_vector_index():
    table = rng.standard_normal((12, 6)).astype(np.float32)
    ids = np.array([[0, 11, 5, -1]], np.int64)
    nodes = [helper.make_node("Gather", ["table", "ids"], ["e"], name="emb"),
             helper.make_node("Relu", ["e"], ["r"]),
             helper.make_node("Gather", ["r", "pos"], ["y"], name="pick", axis=1)]
    m = make_model(nodes, {"ids": ids}, ["y"], {"table": table, "pos": np.array([-1, 0], np.int64)})
    check_model(m, {"ids": ids})


@pytest.mark.parametrize("shape,axis,indices", [
    ((5, 4), 0, [4, 0, -2]), ((5, 4), 1, [[3, 1], [0, -1]]), ((5, 4), -1, [2]),
    ((2, 3, 4), 1, [2, 2, 0]), ((2, 3, 4), -2, 1), ((2, 3, 4), 2, [[-4, 3]]),
    ((2, 3, 4, 5), 3, [4, 0, 1]), ((2, 3, 4, 5), 0, [1]), ((2, 3, 4, 5), -3, [[0], [2]]),
    ((6,), 0, [5, -6, 2, 2])])
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
def test_gather_constant_indices_runtime_data(shape, axis, indices, index_dtype):
    x = rng.standard_normal(shape).astype(np.float32)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)
    m = make_model([node], {"x": x}, ["y"], {"i": np.array(indices, index_dtype)})
    check_model(m, {"x": x})


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_gather_both_runtime(axis):
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    dim = x.shape[axis]
    idx = rng.integers(-dim, dim, (2, 3)).astype(np.int64)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)
    m = make_model([node], {"x": x, "i": idx}, ["y"])
    check_model(m, {"x": x, "i": idx})


def test_gather_int64_data():
    x = rng.integers(-1000, 1000, (6, 3)).astype(np.int64)
    idx = np.array([5, 0, -1], np.int64)
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=0)
    m = make_model([node], {"x": x, "i": idx}, ["y"], output_dtypes={"y": np.int64})
    check_model(m, {"x": x, "i": idx})


def test_gather_out_of_range_constant_index_names_node():
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="g_oob", axis=0)
    m = make_model([node], {"x": np.zeros((3, 2), np.float32)}, ["y"], {"i": np.array([3], np.int64)})
    with pytest.raises(ShapeError, match="g_oob.*out of range"):
        microtrain.compile(m)


def test_gather_float_indices_rejected():
    node = helper.make_node("Gather", ["x", "i"], ["y"], name="g_f", axis=0)
    m = make_model([node], {"x": np.zeros((3, 2), np.float32), "i": np.zeros(2, np.float32)}, ["y"])
    with pytest.raises(MicrotrainError, match="g_f"):
        microtrain.compile(m)


def test_gather_runtime_out_of_range_index_is_clamped():
    """Documented kernel behaviour (mt_shape.h): run-time indices outside the
    axis are clamped, never read out of bounds. ONNX leaves this undefined."""
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([7, -9], np.int64)
    node = helper.make_node("Gather", ["table", "ids"], ["y"])
    cm = microtrain.compile(make_model([node], {"ids": ids}, ["y"], {"table": table}))
    got = cm.run({"ids": ids})["y"]
    np.testing.assert_array_equal(got, table[[3, 0]])
