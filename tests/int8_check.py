"""Helpers for the int8 tests: single microtrain-domain op models, C vs golden."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

import microtrain


def q_model(op, inputs: dict, consts: dict | None = None, order=None, **attrs) -> onnx.ModelProto:
    """One `op` node (microtrain domain) reading run-time `inputs` and constant
    `consts` in `order` (default: inputs then consts), output 'y'."""
    consts = consts or {}
    names = order or [*inputs, *consts]
    node = helper.make_node(op, names, ["y"], domain="microtrain", **attrs)
    vi = [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
          for k, v in inputs.items()]
    g = helper.make_graph([node], "q", vi, [helper.make_tensor_value_info("y", onnx.TensorProto.INT8, None)],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m


def check_bit_exact(model, inputs) -> np.ndarray:
    cm = microtrain.compile(model)
    got = cm.run(inputs)["y"]
    want = cm.reference(inputs)["y"]
    assert got.dtype == np.int8 and want.dtype == np.int8
    np.testing.assert_array_equal(got, want)
    return want


def rand_s8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def rand_requant(rng, channels, taps):
    """mul/add/shift mapping the accumulator of `taps` random int8 products
    (std ~ sqrt(taps) * 74^2) onto about +-3 std of int8, so both the
    rounding and the clamping are exercised."""
    acc_bits = float(np.log2(np.sqrt(taps) * 74 * 74 * 1.5))
    shift = int(rng.integers(20, 40))
    mul = rng.integers(1 << 29, 1 << 31, channels).astype(np.int32)
    # scale so that |acc| ~ 2^acc_bits maps to ~ +-200
    target = 200.0 / 2 ** acc_bits
    mul = np.maximum(1, (mul.astype(np.float64) * target * (1 << shift) / (1 << 30))).astype(np.int64)
    mul = np.minimum(mul, (1 << 31) - 1).astype(np.int32)
    add = rng.integers(-40, 40, channels).astype(np.int64) << shift
    return mul, add, shift
