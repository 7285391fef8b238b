"""Integer-only Transformer ops: C bit-exact with the golden model, the golden
model checked against an independent implementation (ITA) or against float
softmax / GELU / LayerNorm within stated bounds (I-BERT)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from int_graph import compile_ir, random_int8, single_op_graph
from microtrain.golden import interpret
from microtrain.ops.ibert_gelu import ibert_gelu_params
from microtrain.ops.ibert_layernorm import ibert_layernorm_params
from microtrain.ops.ibert_softmax import ibert_softmax_params
from microtrain.ops.ita_softmax import ITA_LOGIT_SCALE
from microtrain.ops._intmath import isqrt_newton
from microtrain.errors import MicrotrainError

# Row lengths: shorter than a group, exactly one, one past, several and ragged.
ROW_LENGTHS = [1, 5, 16, 17, 31, 32, 33, 64, 81, 100]


def ita_rule(row) -> list[int]:
    """The ITA streaming softmax written straight from the issue text, in Python ints."""
    def rnd32(d):  # round half up of d / 32, clamped at 31
        return min(31, math.floor(d / 32 + 0.5))
    running_max, running_sum = -128, 0
    for start in range(0, len(row), 16):
        group = [int(v) for v in row[start:start + 16]]
        if max(group) > running_max:
            running_sum = running_sum >> rnd32(max(group) - running_max)
            running_max = max(group)
        for v in group:
            running_sum += 256 >> rnd32(running_max - v)
    inv = 65280 // running_sum
    return [inv >> rnd32(running_max - int(v)) for v in row]


def special_rows(n, rng):
    """Random rows plus the corner cases: all equal, extremes, max in the last group."""
    rows = [random_int8(rng, n), np.full(n, -128, np.int8), np.full(n, 127, np.int8),
            np.full(n, 3, np.int8), np.where(np.arange(n) % 2, 127, -128).astype(np.int8)]
    late = np.full(n, -100, np.int8)
    late[-1] = 127
    rows.append(late)
    rising = np.clip(np.arange(n) * 7 - 128, -128, 127).astype(np.int8)
    rows.append(rising)
    return np.stack(rows)


def _inputs(op_rows, rng):
    return {f"x{n}": special_rows(n, rng) for n in op_rows}


@pytest.fixture(scope="module")
def ita_model():
    shapes = {f"x{n}": ((7, n), np.int8) for n in ROW_LENGTHS}
    shapes["s17"] = shapes["s81"] = None   # the same rows with int8 output (signed_output)
    shapes = {k: (v or ((7, int(k[1:])), np.int8)) for k, v in shapes.items()}
    g = single_op_graph("mt.ITASoftmax", shapes, {"s17": {"signed_output": 1}, "s81": {"signed_output": 1}})
    return g, compile_ir(g)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ita_softmax_c_golden_and_rule_agree(ita_model, seed):
    g, cm = ita_model
    inputs = _inputs(ROW_LENGTHS, np.random.default_rng(seed))
    inputs["s17"], inputs["s81"] = inputs["x17"], inputs["x81"]
    ref = interpret(g, inputs)
    got = cm.run(inputs)
    for n in (17, 81):   # int8 form: y - 128
        assert ref[f"y_s{n}"].dtype == np.int8
        np.testing.assert_array_equal(ref[f"y_s{n}"].astype(np.int64), ref[f"y_x{n}"].astype(np.int64) - 128)
        np.testing.assert_array_equal(got[f"y_s{n}"], ref[f"y_s{n}"])
    for n in ROW_LENGTHS:
        x, name = inputs[f"x{n}"], f"y_x{n}"
        want = np.array([ita_rule(r) for r in x], dtype=np.int64)
        np.testing.assert_array_equal(ref[name].astype(np.int64), want, err_msg=f"golden vs rule, n={n}")
        np.testing.assert_array_equal(got[name], ref[name], err_msg=f"C vs golden, n={n}")
        assert ref[name].dtype == np.uint8


def test_ita_softmax_known_values():
    """Hand-worked rows. Equal logits: 65280 // (4 * 256) = 63 each. A lone 127
    among -128s: distance 255 -> shift round(7.97) = 8, sum 256 + 3 = 259,
    inv 252. [40, 8, -128, -128]: shifts 0, 1, 5, 5 -> sum 256+128+8+8 = 400,
    inv 163, y = 163, 81, 5, 5."""
    g = single_op_graph("mt.ITASoftmax", {"x": ((3, 4), np.int8)})
    x = np.array([[5, 5, 5, 5], [127, -128, -128, -128], [40, 8, -128, -128]], np.int8)
    y = interpret(g, {"x": x})["y_x"]
    assert y.tolist() == [[63] * 4, [252, 0, 0, 0], [163, 81, 5, 5]]


def test_ita_softmax_group_rescale():
    """The running sum is shifted when a later group raises the max: 16 zeros
    then one 64 -> sum = (16 * 256) >> 2 + 256 = 1280, inv = 51."""
    x = np.zeros((1, 17), np.int8)
    x[0, 16] = 64
    y = interpret(single_op_graph("mt.ITASoftmax", {"x": ((1, 17), np.int8)}), {"x": x})["y_x"]
    assert y[0, 16] == 51 and set(y[0, :16].tolist()) == {51 >> 2}


def test_ita_softmax_is_close_to_float_softmax_on_random_logits():
    rng = np.random.default_rng(3)
    x = np.clip(rng.normal(0, 40, size=(64, 81)), -128, 127).astype(np.int8)
    g = single_op_graph("mt.ITASoftmax", {"x": (x.shape, np.int8)})
    y = interpret(g, {"x": x})["y_x"] / 255.0
    xf = x.astype(np.float64) * ITA_LOGIT_SCALE
    p = np.exp(xf - xf.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # exp is 2^-round(d/32) (each term off by up to 2^(1/2)) and y has 1/255
    # steps; measured max 0.025 on this input
    assert np.max(np.abs(y - p)) < 0.04


# ---- I-BERT --------------------------------------------------------------------

IBERT_SCALES = [0.01, 0.03, 0.06]          # one per row length below
IBERT_ROWS = [7, 32, 81]


def _layernorm_attrs(n, in_scale, seed):
    rng = np.random.default_rng(seed)
    gamma, beta = 1 + 0.3 * rng.standard_normal(n), 0.2 * rng.standard_normal(n)
    return gamma, beta, ibert_layernorm_params(gamma, beta, in_scale, 4.0 / 127)


def _ibert_cases(op):
    shapes, attrs = {}, {}
    for n, s in zip(IBERT_ROWS, IBERT_SCALES):
        name = f"x{n}"
        shapes[name] = ((7, n), np.int8)   # the 7 rows of special_rows
        if op == "mt.IBertSoftmax":
            attrs[name] = {**ibert_softmax_params(s), "signed_output": int(n == 32)}
        elif op == "mt.IBertGelu":   # zero points on one input (asymmetric int8 activations)
            attrs[name] = {**ibert_gelu_params(s, s), "x_zero_point": -9 * (n == 32), "y_zero_point": 5 * (n == 32)}
        else:
            gamma, beta, _ = _layernorm_attrs(n, s, n)
            attrs[name] = ibert_layernorm_params(gamma, beta, s, 4.0 / 127, out_zero_point=-3 * (n == 32))
    return shapes, attrs


@pytest.fixture(scope="module", params=["mt.IBertSoftmax", "mt.IBertGelu", "mt.IBertLayerNorm"])
def ibert_model(request):
    shapes, attrs = _ibert_cases(request.param)
    g = single_op_graph(request.param, shapes, attrs)
    return g, compile_ir(g)


@pytest.mark.parametrize("seed", [0, 1])
def test_ibert_c_is_bit_exact_with_golden(ibert_model, seed):
    g, cm = ibert_model
    inputs = _inputs(IBERT_ROWS, np.random.default_rng(seed))
    ref, got = interpret(g, inputs), cm.run(inputs)
    for name in g.outputs:
        assert ref[name].std() > 0 or name == "y_x7", f"{name}: constant output, the check is vacuous"
        np.testing.assert_array_equal(got[name], ref[name], err_msg=f"{g.nodes[0].op} {name}")


def _float_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("scale", IBERT_SCALES)
def test_ibert_softmax_close_to_float(scale):
    rng = np.random.default_rng(5)
    x = random_int8(rng, (64, 81))
    g = single_op_graph("mt.IBertSoftmax", {"x": (x.shape, np.int8)}, {"x": ibert_softmax_params(scale)})
    y = interpret(g, {"x": x})["y_x"] / 255.0
    # 1/255 output step + polynomial exp, plus an error that grows with the scale:
    # ln2 is represented as floor(ln2 / S) * S (measured 0.0039, 0.0040, 0.022)
    assert np.max(np.abs(y - _float_softmax(x * scale))) < 6e-3 + 0.4 * scale


@pytest.mark.parametrize("scale", [0.02, 0.05, 0.1])
def test_ibert_gelu_close_to_float(scale):
    from microtrain.ops._common import erf
    x = np.arange(-128, 128, dtype=np.int8)
    g = single_op_graph("mt.IBertGelu", {"x": (x.shape, np.int8)}, {"x": ibert_gelu_params(scale, scale)})
    y = interpret(g, {"x": x})["y_x"] * scale
    xf = x * scale
    want = np.clip(xf * 0.5 * (1 + erf(xf / math.sqrt(2))), -128 * scale, 127 * scale)
    # half an output LSB of rounding + the erf polynomial (|error| < 0.02, times |x|/2, saturating)
    assert np.max(np.abs(y - want)) < 0.5 * scale + 0.03


@pytest.mark.parametrize("scale", [0.02, 0.1])
def test_ibert_layernorm_close_to_float(scale):
    n, out_scale = 32, 4.0 / 127
    gamma, beta, attrs = _layernorm_attrs(n, scale, 9)
    x = random_int8(np.random.default_rng(9), (50, n))
    g = single_op_graph("mt.IBertLayerNorm", {"x": (x.shape, np.int8)}, {"x": attrs})
    y = interpret(g, {"x": x})["y_x"] * out_scale
    xf = x * scale
    want = (xf - xf.mean(-1, keepdims=True)) / np.sqrt(xf.var(-1, keepdims=True) + 1e-5) * gamma + beta
    want = np.clip(want, -128 * out_scale, 127 * out_scale)
    # one output LSB: rounding (1/2) plus the integer std / x-hat truncation
    assert np.max(np.abs(y - want)) < out_scale


def test_zero_points_shift_values_not_results():
    """GELU of x - zx equals GELU with x_zero_point = zx, moved by y_zero_point;
    LayerNorm ignores the input zero point and adds the output one."""
    x = np.arange(-100, 100, dtype=np.int8)
    p = ibert_gelu_params(0.05, 0.05)
    from microtrain.ops.ibert_gelu import ibert_gelu
    from microtrain.ops.ibert_layernorm import ibert_layernorm
    base = ibert_gelu(x, **p).astype(np.int64)
    shifted = ibert_gelu((x.astype(np.int64) + 20).astype(np.int8), **p, x_zero_point=20, y_zero_point=-7)
    np.testing.assert_array_equal(shifted.astype(np.int64), np.clip(base - 7, -128, 127))
    rows = random_int8(np.random.default_rng(4), (5, 16)) // 2
    gamma, beta = np.linspace(0.5, 1.5, 16), np.linspace(-0.2, 0.2, 16)
    a0 = ibert_layernorm_params(gamma, beta, 0.03, 0.03)
    a1 = ibert_layernorm_params(gamma, beta, 0.03, 0.03, out_zero_point=4)
    y0 = ibert_layernorm(rows, **a0).astype(np.int64)
    y1 = ibert_layernorm((rows.astype(np.int64) + 30).astype(np.int8), **a1).astype(np.int64)
    np.testing.assert_array_equal(y1, np.clip(y0 + 4, -128, 127))


def test_isqrt_newton_is_the_floor_root():
    rng = np.random.default_rng(0)
    vals = np.concatenate([np.arange(0, 300), rng.integers(0, 1 << 46, size=300)]).astype(np.int64)
    assert isqrt_newton(vals).tolist() == [math.isqrt(int(v)) for v in vals]


def test_ibert_params_reject_unusable_scales():
    with pytest.raises(MicrotrainError, match="I-BERT softmax"):
        ibert_softmax_params(1.0)        # ln2 / S < 1: no range reduction possible
    with pytest.raises(MicrotrainError, match="I-BERT GELU"):
        ibert_gelu_params(0.0, 0.1)


def test_int_ops_reject_float_input():
    with pytest.raises(MicrotrainError, match="int8"):
        single_op_graph("mt.ITASoftmax", {"x": ((2, 4), np.float32)})
