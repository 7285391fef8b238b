"""Gradient rules of the pooling ops vs PyTorch autograd (float64), through the
generated C and the golden model (see grad_check.py): a trainable full-shape
parameter is added to the input so its gradient is the input gradient."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from onnx import helper

from grad_check import check_grads

rng = np.random.default_rng(5)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


def _pool_nodes(op, **attrs):
    return [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node(op, ["h"], ["y"], **attrs)]


# (input shape, kernel, strides, symmetric pads per dim, dilations, ceil_mode)
MAX_CASES = [
    ((2, 3, 9), [3], [1], [0], [1], 0),
    ((2, 2, 10), [3], [2], [1], [1], 1),
    ((1, 2, 11), [2], [3], [1], [2], 0),
    ((2, 2, 6, 6), [2, 2], [2, 2], [0, 0], [1, 1], 0),
    ((2, 3, 7, 7), [3, 3], [2, 2], [1, 1], [1, 1], 0),
    ((1, 2, 7, 8), [3, 2], [2, 1], [1, 0], [1, 1], 1),
    ((2, 2, 9, 9), [3, 3], [1, 2], [1, 1], [2, 2], 0),
    ((1, 2, 8, 7), [2, 3], [3, 2], [1, 1], [2, 1], 1),
    ((2, 1, 5, 5), [5, 5], [1, 1], [0, 0], [1, 1], 0),
]


def _torch_pool(kind, nd):
    return {("max", 1): F.max_pool1d, ("max", 2): F.max_pool2d,
            ("avg", 1): F.avg_pool1d, ("avg", 2): F.avg_pool2d}[(kind, nd)]


@pytest.mark.parametrize("shape,kernel,strides,pads,dilations,ceil", MAX_CASES)
def test_maxpool_grads(shape, kernel, strides, pads, dilations, ceil):
    x, p = randn(*shape), randn(*shape)
    nodes = _pool_nodes("MaxPool", kernel_shape=kernel, strides=strides, pads=pads + pads,
                        dilations=dilations, ceil_mode=ceil)
    pool = _torch_pool("max", len(kernel))
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p: pool(x + p, kernel, strides, pads, dilations, ceil_mode=bool(ceil)))


@pytest.mark.parametrize("pads", [[1, 0, 0, 2], [0, 2, 1, 0]])
def test_maxpool_asymmetric_pads_grads(pads):
    x, p = randn(2, 2, 6, 5), randn(2, 2, 6, 5)
    nodes = _pool_nodes("MaxPool", kernel_shape=[3, 3], strides=[2, 1], pads=pads)
    # ONNX pads are (h_begin, w_begin, h_end, w_end); F.pad wants (w_b, w_e, h_b, h_e)
    tpad = (pads[1], pads[3], pads[0], pads[2])
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p: F.max_pool2d(F.pad(x + p, tpad, value=-np.inf), [3, 3], [2, 1]))


def test_maxpool_with_indices_output_grads():
    """The Indices output gets no gradient; Y's gradient is unchanged."""
    x, p = randn(2, 2, 6, 6), randn(2, 2, 6, 6)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]),
             helper.make_node("MaxPool", ["h"], ["y", "idx"], kernel_shape=[2, 2], strides=[2, 2])]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: F.max_pool2d(x + p, 2, 2))


def test_relu_maxpool_chain_grads():
    """The usual Relu -> MaxPool: the pool recomputes its argmax from the Relu output."""
    x, p = randn(2, 3, 8, 8), randn(2, 3, 8, 8)
    nodes = [helper.make_node("Add", ["x", "p"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    check_grads(nodes, {"x": x}, {"p": p}, lambda x, p: F.max_pool2d(torch.relu(x + p), 3, 2, 1))


AVG_CASES = [
    ((2, 3, 9), [3], [1], [0], 0),
    ((2, 2, 10), [3], [2], [1], 1),
    ((1, 2, 11), [4], [3], [2], 1),
    ((2, 2, 6, 6), [2, 2], [2, 2], [0, 0], 0),
    ((2, 3, 7, 7), [3, 3], [2, 2], [1, 1], 0),
    ((1, 2, 7, 8), [3, 2], [2, 1], [1, 0], 1),
    ((2, 2, 8, 7), [2, 3], [3, 2], [1, 1], 1),
    ((2, 1, 5, 5), [5, 5], [1, 1], [0, 0], 0),
]


@pytest.mark.parametrize("shape,kernel,strides,pads,ceil", AVG_CASES)
@pytest.mark.parametrize("include_pad", [0, 1])
def test_avgpool_grads(shape, kernel, strides, pads, ceil, include_pad):
    x, p = randn(*shape), randn(*shape)
    nodes = _pool_nodes("AveragePool", kernel_shape=kernel, strides=strides, pads=pads + pads,
                        ceil_mode=ceil, count_include_pad=include_pad)
    pool = _torch_pool("avg", len(kernel))
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p: pool(x + p, kernel, strides, pads, ceil_mode=bool(ceil),
                                  count_include_pad=bool(include_pad)))


def test_avgpool_asymmetric_pads_include_pad_grads():
    x, p = randn(2, 2, 6, 5), randn(2, 2, 6, 5)
    nodes = _pool_nodes("AveragePool", kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1],
                        count_include_pad=1)
    check_grads(nodes, {"x": x}, {"p": p},
                lambda x, p: F.avg_pool2d(F.pad(x + p, (0, 1, 1, 0)), [3, 2], [2, 1]))


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 2, 4, 3), (1, 4, 2, 2, 3), (3, 1, 1, 1)])
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool_grads(shape, op):
    x, p = randn(*shape), randn(*shape)
    dims = tuple(range(2, len(shape)))
    fn = (lambda h: h.mean(dim=dims, keepdim=True)) if op == "GlobalAveragePool" \
        else (lambda h: h.amax(dim=dims, keepdim=True))
    check_grads(_pool_nodes(op), {"x": x}, {"p": p}, lambda x, p: fn(x + p))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool3d_grads(kind):
    x, p = randn(1, 2, 4, 5, 5), randn(1, 2, 4, 5, 5)
    if kind == "max":
        nodes = _pool_nodes("MaxPool", kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 0, 1, 1])
        fn = lambda x, p: F.max_pool3d(x + p, [2, 3, 3], [1, 2, 2], [0, 1, 1])  # noqa: E731
    else:
        nodes = _pool_nodes("AveragePool", kernel_shape=[2, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 0, 1, 1],
                            ceil_mode=1)
        fn = lambda x, p: F.avg_pool3d(x + p, [2, 3, 3], [1, 2, 2], [0, 1, 1], ceil_mode=True,  # noqa: E731
                                       count_include_pad=False)
    check_grads(nodes, {"x": x}, {"p": p}, fn)
