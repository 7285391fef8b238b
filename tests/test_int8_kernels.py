"""Every integer kernel, C vs the numpy golden model, bit-exact, over
randomized shapes; requantization edge cases against hand-computed values."""
from fractions import Fraction
import math

import numpy as np
import pytest

import microtrain
from int8_check import check_bit_exact, q_model, rand_requant, rand_s8

CONV_CASES = [
    # (x shape, w shape, attrs)
    ((1, 3, 9, 8), (5, 3, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((2, 4, 7, 9), (6, 2, 3, 2), dict(group=2, strides=[2, 1], pads=[0, 1, 1, 0])),
    ((1, 6, 8, 8), (6, 1, 3, 3), dict(group=6, pads=[1, 1, 1, 1], strides=[2, 2])),     # depthwise
    ((1, 5, 6, 7), (8, 5, 1, 1), dict()),                                              # pointwise
    ((1, 3, 11, 10), (4, 3, 3, 3), dict(dilations=[2, 3], pads=[2, 0, 1, 3])),
    ((1, 4, 17), (3, 4, 5), dict(pads=[2, 2], strides=[3])),                            # 1-D
    ((2, 2, 13), (4, 1, 3), dict(group=2, dilations=[2], pads=[1, 0])),                 # 1-D grouped
    ((1, 3, 5, 5), (4, 3, 5, 5), dict(auto_pad="SAME_UPPER")),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_qconv_bit_exact(case):
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x, w = rand_s8(rng, xs), rand_s8(rng, ws)
    per_channel = case % 3 != 2
    mul, add, shift = rand_requant(rng, ws[0] if per_channel else 1, taps=int(np.prod(ws[1:])))
    lo, hi = (-128, 127) if case % 2 else (int(rng.integers(-128, -20)), int(rng.integers(20, 128)))
    m = q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add},
                x_zero_point=int(rng.integers(-128, 128)), shift=shift, lo=lo, hi=hi, **attrs)
    y = check_bit_exact(m, {"x": x})
    assert len(np.unique(y)) > min(10, y.size // 4)   # not a saturated/constant output


def test_qconv_golden_against_direct_sum():
    """The golden accumulator vs a literal loop over the ONNX definition."""
    rng = np.random.default_rng(7)
    x, w = rand_s8(rng, (1, 2, 5, 4)), rand_s8(rng, (3, 2, 2, 3))
    zx = 9
    m = q_model("mt.QConv", {"x": x}, {"w": w, "mul": np.ones(1, np.int32), "add": np.zeros(1, np.int64)},
                x_zero_point=zx, pads=[1, 0, 0, 2], strides=[2, 1], shift=9)
    got = microtrain.reference(m, {"x": x})["y"]
    xp = np.full((1, 2, 6, 6), zx, np.int64)   # pads: h 1+0, w 0+2
    xp[:, :, 1:6, 0:4] = x
    for oc in range(3):
        for oh in range(3):
            for ow in range(4):
                acc = int(sum((xp[0, c, oh * 2 + i, ow + j] - zx) * int(w[oc, c, i, j])
                              for c in range(2) for i in range(2) for j in range(3)))
                want = max(-128, min(127, math.floor(Fraction(acc, 512) + Fraction(1, 2))))
                assert got[0, oc, oh, ow] == want


MATMUL_CASES = [
    ((5, 7), (7, 3), True),            # const weight (Gemm form)
    ((2, 3, 4, 9), (9, 6), True),      # batched activation, shared weight
    ((2, 4, 5), (2, 5, 3), False),     # batched, both run-time (attention)
    ((3, 1, 4, 6), (1, 2, 6, 5), False),   # broadcast batch dims
]


@pytest.mark.parametrize("case", range(len(MATMUL_CASES)))
def test_qmatmul_bit_exact(case):
    a_shape, b_shape, const_b = MATMUL_CASES[case]
    rng = np.random.default_rng(10 + case)
    a, b = rand_s8(rng, a_shape), rand_s8(rng, b_shape)
    mul, add, shift = rand_requant(rng, b_shape[-1] if case % 2 == 0 else 1, taps=a_shape[-1])
    za, zb = int(rng.integers(-128, 128)), 0 if const_b else int(rng.integers(-20, 20))
    if const_b:
        m = q_model("mt.QMatMul", {"a": a}, {"b": b, "mul": mul, "add": add},
                    a_zero_point=za, b_zero_point=zb, shift=shift)
        inputs = {"a": a}
    else:
        m = q_model("mt.QMatMul", {"a": a, "b": b}, {"mul": mul, "add": add},
                    a_zero_point=za, b_zero_point=zb, shift=shift)
        inputs = {"a": a, "b": b}
    y = check_bit_exact(m, inputs)
    assert len(np.unique(y)) > min(10, y.size // 4)


@pytest.mark.parametrize("op,a_shape,b_shape", [
    ("mt.QAdd", (2, 3, 4, 5), (2, 3, 4, 5)),
    ("mt.QAdd", (2, 3, 4, 5), (1, 3, 1, 1)),
    ("mt.QMul", (3, 7), (3, 7)),
    ("mt.QMul", (4, 1, 6), (5, 1)),
])
def test_qbinary_bit_exact(op, a_shape, b_shape):
    rng = np.random.default_rng(len(a_shape) * 7 + len(b_shape))
    a, b = rand_s8(rng, a_shape), rand_s8(rng, b_shape)
    shift = 20
    scalars = (dict(a_mul=int(rng.integers(1 << 18, 1 << 20)), b_mul=int(rng.integers(1 << 18, 1 << 20)))
               if op == "mt.QAdd" else dict(mul=int(rng.integers(1 << 12, 1 << 14))))
    m = q_model(op, {"a": a, "b": b}, a_zero_point=3, b_zero_point=-7, add=-5 << shift,
                shift=shift, lo=-100, hi=110, **scalars)
    y = check_bit_exact(m, {"a": a, "b": b})
    assert len(np.unique(y)) > 10


POOL_CASES = [
    ("mt.QMaxPool", (1, 3, 8, 9), dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("mt.QMaxPool", (2, 2, 7, 7), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("mt.QMaxPool", (1, 4, 15), dict(kernel_shape=[3], strides=[2], dilations=[2], ceil_mode=1)),
    ("mt.QAvgPool", (1, 3, 8, 8), dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("mt.QAvgPool", (2, 2, 7, 6), dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("mt.QAvgPool", (1, 2, 7, 6), dict(kernel_shape=[3, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("mt.QAvgPool", (1, 5, 4, 6), dict(kernel_shape=[4, 6])),           # global average
    ("mt.QAvgPool", (1, 3, 13), dict(kernel_shape=[4], strides=[3], ceil_mode=1)),
]


@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_qpool_bit_exact(case):
    op, shape, attrs = POOL_CASES[case]
    rng = np.random.default_rng(30 + case)
    x = rand_s8(rng, shape)
    if op == "mt.QAvgPool":
        attrs = dict(attrs, x_zero_point=-11, y_zero_point=4, mul=int(rng.integers(1 << 13, 1 << 15)),
                     shift=14, lo=-120, hi=120)
    y = check_bit_exact(q_model(op, {"x": x}, **attrs), {"x": x})
    assert len(np.unique(y)) > min(5, y.size // 2)


@pytest.mark.parametrize("dtype,shape,axis", [(np.int32, (2, 5, 3), 1), (np.int8, (4, 6), 1),
                                              (np.int32, (3, 7), -1), (np.int8, (10,), 0)])
def test_requant_bit_exact(dtype, shape, axis):
    rng = np.random.default_rng(int(np.prod(shape)))
    x = rng.integers(-40000, 40000, shape) if dtype == np.int32 else rng.integers(-128, 128, shape)
    x = x.astype(dtype)
    ch = shape[axis]
    mul = rng.integers(1 << 20, 1 << 24, ch).astype(np.int32)
    add = rng.integers(-(1 << 30), 1 << 30, 1).astype(np.int64)
    shift = 31 if dtype == np.int32 else 24
    check_bit_exact(q_model("mt.Requant", {"x": x}, {"mul": mul, "add": add}, axis=axis, shift=shift),
                    {"x": x})


# acc, mul, add, shift, lo, hi -> expected (by hand: floor(v / 2^s + 1/2), clamped)
REQUANT_EDGES = [
    (5, 1, 0, 1, -128, 127, 3),          # 2.5 -> 3 (half up)
    (-5, 1, 0, 1, -128, 127, -2),        # -2.5 -> -2 (half up, not away from zero)
    (-6, 1, 0, 2, -128, 127, -1),        # -1.5 -> -1
    (-7, 1, 0, 2, -128, 127, -2),        # -1.75 -> -2
    (100, 1, 0, 0, -128, 127, 100),      # shift 0: no rounding term
    (-100, 3, 0, 0, -128, 127, -128),    # saturation low
    (2_000_000_000, (1 << 31) - 1, 0, 62, -128, 127, 1),   # large mul and the largest shift
    (1 << 30, (1 << 31) - 1, 0, 31, -128, 127, 127),       # saturation high
    (-(1 << 30), (1 << 31) - 1, 1 << 40, 40, -128, 127, -128),   # int64 range, negative
    (7, 1, 0, 0, 0, 6, 6),               # fused ReLU6-style clip
    (-3, 1, 0, 0, 0, 127, 0),            # fused ReLU
]


@pytest.mark.parametrize("edge", REQUANT_EDGES)
def test_requant_edges(edge):
    acc, mul, add, shift, lo, hi, want = edge
    exact = (math.floor(Fraction(acc * mul + add, 1 << shift) + Fraction(1, 2)) if shift
             else acc * mul + add)
    assert max(lo, min(hi, exact)) == want     # the table itself is right
    x = np.array([acc, acc], np.int32)
    m = q_model("mt.Requant", {"x": x}, {"mul": np.array([mul], np.int32), "add": np.array([add], np.int64)},
                axis=0, shift=shift, lo=lo, hi=hi)
    y = check_bit_exact(m, {"x": x})
    assert y.tolist() == [want, want]
