"""The register-blocked int8 GEMM kernels (runtime/mt_int8_gemm.c:
mt_conv_s8_gemm, mt_matmul_s8_gemm) bit-exact with the numpy golden model
over randomized shapes, on the host and under QEMU on cortex-m4 (the
__smlad/__sxtb16 path), rv32imc and rv32imfc (the 4x5 assembly kernel). One firmware per
target holds all the cases (one node each), so the emulator tests stay fast."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import microtrain
from int8_check import q_model, rand_requant, rand_s8


def _conv_case(rng, i):
    nsp = 1 + i % 2
    group = [1, 2, 3, 1][i % 4]
    cg = int(rng.integers(1, 5)) if i % 5 else 1            # cg = 1: channel multiplier
    mg = int(rng.integers(2, 10))                            # blocks of 4 (2 on DSP) + tails
    k = [int(rng.integers(1, 4)) for _ in range(nsp)]
    dil = [int(rng.integers(1, 3)) for _ in range(nsp)]
    stride = [int(rng.integers(1, 3)) for _ in range(nsp)]
    pads = [int(rng.integers(0, 3)) for _ in range(2 * nsp)]
    size = [int(rng.integers((kk - 1) * d + 1, 10)) for kk, d in zip(k, dil)]
    return ((int(rng.integers(1, 3)), group * cg, *size), (group * mg, cg, *k),
            dict(group=group, strides=stride, dilations=dil, pads=pads))


MATMUL_SHAPES = [((5, 7), (7, 3)), ((3, 9), (9, 10)), ((2, 7, 13), (13, 6)), ((2, 4, 5), (2, 5, 9)),
                 ((11, 16), (16, 8)),
                 ((13, 10), (10, 7)), ((2, 9, 12), (12, 5))]   # rv32: blocks of 5 + 4 + 4 / 5 + 4 rows of A


def _model(seed=0):
    """Graph of independent mt.QConv / mt.QMatMul nodes (constant weights,
    random zero points, per-channel or per-tensor requant), inputs and
    feeds."""
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, inits, feeds = [], [], [], [], {}

    def add(op, x, w, mul, add_, **attrs):
        i = len(nodes)
        xn, names = f"x{i}", [f"x{i}", f"w{i}", f"m{i}", f"a{i}"]
        feeds[xn] = x
        inputs.append(helper.make_tensor_value_info(xn, onnx.TensorProto.INT8, x.shape))
        inits.extend(numpy_helper.from_array(np.asarray(v), n) for v, n in zip((w, mul, add_), names[1:]))
        nodes.append(helper.make_node(op, names, [f"y{i}"], domain="microtrain", **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))

    for i in range(8):
        xs, ws, attrs = _conv_case(rng, i)
        x, w = rand_s8(rng, xs), rand_s8(rng, ws)
        mul, add_, shift = rand_requant(rng, ws[0] if i % 3 else 1, taps=int(np.prod(ws[1:])))
        lo = [-128, 0][i % 2]                                   # fused ReLU on every other one
        add("mt.QConv", x, w, mul, add_, x_zero_point=int(rng.integers(-128, 128)), shift=shift, lo=lo,
            **attrs)
    for i, (a_shape, b_shape) in enumerate(MATMUL_SHAPES):
        a, b = rand_s8(rng, a_shape), rand_s8(rng, b_shape)
        mul, add_, shift = rand_requant(rng, b_shape[-1] if i % 2 else 1, taps=a_shape[-1])
        add("mt.QMatMul", a, b, mul, add_, a_zero_point=int(rng.integers(-128, 128)),
            b_zero_point=int(rng.integers(-30, 30)), shift=shift)
    g = helper.make_graph(nodes, "gemm_cases", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


@pytest.mark.parametrize("target", ["host", "cortex-m4", "rv32imc", "rv32imfc"])
def test_gemm_kernels_bit_exact(target):
    model, feeds = _model()
    cm = microtrain.compile(model, target)
    source = (cm.project_dir / "network.c").read_text()
    assert source.count("mt_conv_s8_gemm(") == 8 and source.count("mt_matmul_s8_gemm(") == len(MATMUL_SHAPES)
    got, want = cm.run(feeds), cm.reference(feeds)
    for name in want:
        assert got[name].dtype == np.int8
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{target} {name}")
    inner = np.concatenate([((w > -128) & (w < 127)).ravel() for w in want.values()])
    assert inner.mean() > 0.3   # the requant is exercised, not saturating everything


# Kernel width 3, stride 1 and dilation 1 along W, input channels per group a
# multiple of 4: on rv32im the sliding-window kernel (runtime/mt_int8_slide.c,
# 2 channels x 8 pixels); the last two cases fall back to the GEMM panel.
SLIDE_CASES = [
    ((1, 8, 5, 11), (6, 8, 3, 3), dict(pads=[1, 1, 1, 1])),            # 11 px: 8 + 3, rows 4 + 2
    ((2, 4, 6, 16), (3, 4, 3, 3), dict()),                              # no padding, 3 channels
    ((1, 12, 7, 9), (5, 12, 3, 3), dict(pads=[0, 2, 1, 2], strides=[2, 1], dilations=[2, 1])),  # 3 groups of 4 ic
    ((2, 8, 20), (7, 8, 3), dict(pads=[1, 1])),                          # 1-D
    ((1, 8, 5, 7), (6, 4, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),     # grouped, 3 channels a group
    ((1, 4, 3, 4, 10), (4, 4, 2, 3, 3), dict(pads=[1, 0, 1, 1, 0, 1])),  # 3-D
    ((1, 4, 3, 3), (2, 4, 3, 3), dict(pads=[2, 3, 2, 3])),              # columns and rows wholly in padding
    ((1, 4, 2, 1), (3, 4, 1, 3), dict(pads=[0, 1, 0, 1])),              # one column
    ((1, 16, 4, 23), (9, 16, 3, 3), dict(pads=[1, 0, 1, 2])),           # 4 groups of 4 ic, 23 px
    ((1, 6, 5, 9), (4, 6, 3, 3), dict(pads=[1, 1, 1, 1])),              # 6 ic: GEMM path
    ((1, 8, 6, 12), (4, 8, 3, 3), dict(strides=[1, 2], pads=[1, 1, 1, 1])),  # stride 2 along W: GEMM path
]


def _requant_with_shift(rng, channels, taps, wide):
    """rand_requant drawn until its shift is >= 32 (wide) or < 32: both
    branches of the kernels' requantization."""
    while True:
        mul, add, shift = rand_requant(rng, channels, taps)
        if (shift >= 32) == wide:
            return mul, add, shift


def _slide_model(seed=1):
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, inits, feeds = [], [], [], [], {}
    for i, (xs, ws, attrs) in enumerate(SLIDE_CASES):
        x, w = rand_s8(rng, xs), rand_s8(rng, ws)
        mul, add_, shift = _requant_with_shift(rng, ws[0] if i % 3 else 1, int(np.prod(ws[1:])), i % 2 == 0)
        lo, hi = [(-128, 127), (0, 127), (-100, 90)][i % 3]                 # fused ReLU / clip
        names = [f"x{i}", f"w{i}", f"m{i}", f"a{i}"]
        feeds[names[0]] = x
        inputs.append(helper.make_tensor_value_info(names[0], onnx.TensorProto.INT8, x.shape))
        inits.extend(numpy_helper.from_array(np.asarray(v), n) for v, n in zip((w, mul, add_), names[1:]))
        nodes.append(helper.make_node("mt.QConv", names, [f"y{i}"], domain="microtrain",
                                      x_zero_point=int(rng.integers(-128, 128)), shift=shift, lo=lo, hi=hi,
                                      **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))
    g = helper.make_graph(nodes, "slide_cases", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


@pytest.mark.parametrize("target", ["host", "rv32imc", "rv32imfc"])
def test_slide_conv_bit_exact(target):
    model, feeds = _slide_model()
    cm = microtrain.compile(model, target)
    assert (cm.project_dir / "network.c").read_text().count("mt_conv_s8_gemm(") == len(SLIDE_CASES)
    got, want = cm.run(feeds), cm.reference(feeds)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{target} {name}")
        inner = ((want[name] > -128) & (want[name] < 127)).mean()
        assert inner > 0.3, name   # the requant is exercised, not saturating everything


def test_conv3x3_under_2_5_instructions_per_mac_rv32imc():
    """The issue's bar on the bench layer (bench/int8_conv_kernels.py): 64->64
    channels, 3x3, 16x16, padding 1; QEMU instruction counts (deterministic)."""
    rng = np.random.default_rng(0)
    x, w = rand_s8(rng, (1, 64, 16, 16)), rand_s8(rng, (64, 64, 3, 3))
    mul, add_, shift = rand_requant(rng, 64, taps=576)
    model = q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add_}, x_zero_point=3, shift=shift,
                    pads=[1, 1, 1, 1])
    cm = microtrain.compile(model, "rv32imc")
    np.testing.assert_array_equal(cm.run({"x": x})["y"], cm.reference({"x": x})["y"])
    layer = cm.profile({"x": x}).layers[0]
    assert layer.instructions / layer.macs < 2.5
