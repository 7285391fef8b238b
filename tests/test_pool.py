"""MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool: C kernel vs
golden model vs onnxruntime over kernel sizes, strides, dilations, padding,
auto_pad modes, ceil_mode, count_include_pad, 1-3 spatial dims."""
import itertools

import numpy as np
import pytest
from onnx import helper

from microtrain.errors import MicrotrainError
from onnx_check import check_model, make_model

import microtrain

rng = np.random.default_rng(0)


def _pool(op, x, opset=19, outputs=("y",), **attrs):
    node = helper.make_node(op, ["x"], list(outputs), name="pool", **attrs)
    dtypes = {"idx": np.int64}
    m = make_model([node], {"x": x}, [o for o in outputs if o], opset=opset, output_dtypes=dtypes)
    return check_model(m, {"x": x})


# kernel x stride x dilation x ceil_mode over a 2-D input whose sizes leave
# partial windows, with explicit pads (asymmetric when the kernel allows).
GRID = list(itertools.product([1, 2, 3], [1, 2], [1, 2], [0, 1]))


def _pads(k, variant):
    if k == 1:
        return [0, 0, 0, 0]
    return [[0, 0, 0, 0], [1, 0, 0, 1], [1, 1, 1, 1]][variant % 3]


@pytest.mark.parametrize("k,s,d,ceil", GRID)
def test_maxpool_2d_grid(k, s, d, ceil):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    _pool("MaxPool", x, kernel_shape=[k, k], strides=[s, s], dilations=[d, d], ceil_mode=ceil,
          pads=_pads(k, k + s + d))


@pytest.mark.parametrize("k,s,d,ceil", GRID)
@pytest.mark.parametrize("include_pad", [0, 1])
def test_avgpool_2d_grid(k, s, d, ceil, include_pad):
    x = rng.standard_normal((1, 2, 7, 6)).astype(np.float32)
    _pool("AveragePool", x, kernel_shape=[k, k], strides=[s, s], dilations=[d, d],
          ceil_mode=ceil, count_include_pad=include_pad, pads=_pads(k, k + s + d + include_pad))


AUTO_PAD = ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"]


@pytest.mark.parametrize("auto_pad", AUTO_PAD)
@pytest.mark.parametrize("k,s", [(2, 1), (3, 2), (2, 2)])
@pytest.mark.parametrize("op,extra", [("MaxPool", {}), ("AveragePool", {"count_include_pad": 0}),
                                      ("AveragePool", {"count_include_pad": 1})])
def test_auto_pad(auto_pad, k, s, op, extra):
    x = rng.standard_normal((2, 3, 7, 8)).astype(np.float32)
    _pool(op, x, kernel_shape=[k, k], strides=[s, s], auto_pad=auto_pad, **extra)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("shape,attrs", [
    ((2, 3, 9), dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    ((1, 2, 10), dict(kernel_shape=[2], strides=[3], ceil_mode=1)),
    ((1, 2, 8), dict(kernel_shape=[3], dilations=[2], pads=[2, 1], ceil_mode=1)),
    # ceil_mode would add a window starting in the right padding: ONNX drops it
    ((1, 2, 4), dict(kernel_shape=[3], strides=[2], pads=[0, 2], ceil_mode=1)),
    ((1, 1, 5, 4), dict(kernel_shape=[2, 3], strides=[3, 2], pads=[0, 0, 1, 2], ceil_mode=1)),
    ((1, 2, 5, 6, 7), dict(kernel_shape=[2, 3, 2], strides=[2, 1, 2], pads=[1, 0, 1, 0, 1, 1])),
    ((1, 1, 6, 5, 6), dict(kernel_shape=[3, 2, 3], strides=[2, 2, 2], ceil_mode=1,
                           dilations=[1, 2, 1])),
    ((1, 2, 4, 5, 6), dict(kernel_shape=[2, 2, 3], auto_pad="SAME_UPPER")),
    ((1, 2, 6, 9), dict(kernel_shape=[3, 1], strides=[1, 3], pads=[1, 0, 2, 0])),
])
def test_pool_1d_3d_and_anisotropic(op, shape, attrs):
    x = rng.standard_normal(shape).astype(np.float32)
    if op == "AveragePool":
        attrs = dict(attrs, count_include_pad=int("pads" in attrs))
    _pool(op, x, **attrs)


@pytest.mark.parametrize("shape,attrs", [
    ((1, 2, 6, 7), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ((2, 2, 5, 6), dict(kernel_shape=[2, 3], strides=[1, 2], ceil_mode=1, storage_order=1)),
    ((1, 3, 9), dict(kernel_shape=[3], strides=[2], dilations=[2])),
    ((1, 2, 4, 5, 6), dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2], storage_order=1)),
    ((1, 2, 4, 5, 6), dict(kernel_shape=[2, 3, 2], pads=[1, 1, 0, 0, 1, 1])),
])
def test_maxpool_indices(shape, attrs):
    x = rng.standard_normal(shape).astype(np.float32)
    _pool("MaxPool", x, opset=12, outputs=("y", "idx"), **attrs)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 4, 5, 6), (2, 2, 3, 4, 5), (1, 1, 1, 1)])
def test_global_pool(op, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    m = make_model([helper.make_node(op, ["x"], ["y"])], {"x": x}, ["y"])
    check_model(m, {"x": x})


def test_avgpool_opset11_no_dilations():
    x = rng.standard_normal((1, 2, 6, 6)).astype(np.float32)
    _pool("AveragePool", x, opset=11, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          ceil_mode=1)


def _compile_error(node, x):
    m = make_model([node], {"x": x}, ["y"])
    with pytest.raises(MicrotrainError, match="'pool'"):
        microtrain.compile(m)


def test_error_kernel_shape_rank_mismatch():
    x = np.zeros((1, 1, 4, 4), np.float32)
    _compile_error(helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2]), x)


def test_error_window_larger_than_input():
    x = np.zeros((1, 1, 2, 2), np.float32)
    _compile_error(helper.make_node("AveragePool", ["x"], ["y"], name="pool",
                                    kernel_shape=[3, 3]), x)


def test_error_four_spatial_dims():
    x = np.zeros((1, 1, 2, 2, 2, 2), np.float32)
    _compile_error(helper.make_node("MaxPool", ["x"], ["y"], name="pool",
                                    kernel_shape=[1, 1, 1, 1]), x)


def test_error_bad_auto_pad():
    x = np.zeros((1, 1, 4, 4), np.float32)
    _compile_error(helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                                    auto_pad="WRAP"), x)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("shape,attrs", [
    ((1, 2, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1])),
    ((1, 2, 6, 6), dict(kernel_shape=[2, 2], auto_pad="SAME_UPPER")),
    ((2, 2, 9), dict(kernel_shape=[3], strides=[2])),
    ((1, 1, 4, 5, 6), dict(kernel_shape=[2, 2, 2], strides=[1, 2, 2], auto_pad="SAME_LOWER")),
])
def test_lppool(p, shape, attrs):
    x = rng.standard_normal(shape).astype(np.float32)
    _pool("LpPool", x, opset=11, p=p, **attrs)


@pytest.mark.parametrize("attrs", [dict(kernel_shape=[3, 3], dilations=[2, 1], ceil_mode=1,
                                        strides=[2, 2]),
                                   dict(kernel_shape=[2, 3], pads=[1, 1, 1, 1], ceil_mode=1,
                                        strides=[2, 2])])
def test_lppool_opset18_dilations_ceil_mode(attrs):
    x = rng.standard_normal((1, 2, 7, 8)).astype(np.float32)
    _pool("LpPool", x, opset=18, p=2, **attrs)


@pytest.mark.parametrize("p", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 7), (1, 2, 4, 5)])
def test_global_lp_pool(p, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    m = make_model([helper.make_node("GlobalLpPool", ["x"], ["y"], p=p)], {"x": x}, ["y"])
    check_model(m, {"x": x})


@pytest.mark.parametrize("op,attrs", [("LpPool", dict(kernel_shape=[2, 2])), ("GlobalLpPool", {})])
def test_error_lp_order_below_one(op, attrs):
    x = np.zeros((1, 1, 4, 4), np.float32)
    _compile_error(helper.make_node(op, ["x"], ["y"], name="pool", p=0, **attrs), x)


def test_error_same_auto_pad_with_dilations():
    x = np.zeros((1, 1, 7, 8), np.float32)
    m = make_model([helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2],
                                     dilations=[2, 2], auto_pad="SAME_UPPER")], {"x": x}, ["y"])
    with pytest.raises(MicrotrainError, match="'pool'.*explicit pads"):
        microtrain.compile(m)


def test_pool_norm_softmax_pipeline_shares_memory_correctly():
    # Several family ops chained: in-place norm/softmax steps next to pools
    # and reductions must not clobber buffers still needed.
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    c = 4
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["p", "p"], ["a"]),
        helper.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["bn"]),
        helper.make_node("InstanceNormalization", ["bn", "s", "b"], ["inn"]),
        helper.make_node("AveragePool", ["inn"], ["ap"], kernel_shape=[2, 2], ceil_mode=1,
                         strides=[2, 2]),
        helper.make_node("Softmax", ["ap"], ["sm"], axis=1),
        helper.make_node("GlobalAveragePool", ["sm"], ["g"]),
        helper.make_node("ReduceSum", ["inn", "axes"], ["r"], keepdims=0),
    ]
    inits = {"s": rng.standard_normal(c).astype(np.float32),
             "b": rng.standard_normal(c).astype(np.float32),
             "m": rng.standard_normal(c).astype(np.float32),
             "v": (rng.random(c) + 0.5).astype(np.float32), "axes": np.array([1, 3], np.int64)}
    check_model(make_model(nodes, {"x": x}, ["g", "r", "ap"], inits, opset=17), {"x": x})
