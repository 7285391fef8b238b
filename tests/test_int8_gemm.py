"""The register-blocked int8 GEMM kernels (runtime/mt_int8_gemm.c:
mt_conv_s8_gemm, mt_matmul_s8_gemm) bit-exact with the numpy golden model
over randomized shapes, on the host and under QEMU on cortex-m4 / cortex-m7 (the
SXTB16/SMLAD assembly kernel and the 32-bit requantization), rv32imc and
rv32imfc (the 4x5 assembly kernel, the sliding window). One firmware per
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


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m7", "rv32imc", "rv32imfc"])
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


# Requantization and blocking edge cases of the GEMM kernels: (op, x shape,
# w shape, attrs, shift, mul scale, lo, hi). mul ~ scale * 2^shift / acc_std:
# the outputs' spread is about `scale` (inside the clamp range), and a huge one makes
# acc * mul / 2^shift leave the int32 range (the kernels' saturation path).
# Reduction lengths cover whole 4-group trips with and without tail groups and
# K not a multiple of 4; rows / pixels leave partial blocks.
EDGE_CASES = [
    ("mt.QConv", (1, 7, 5, 4), (10, 7, 3, 3), dict(pads=[1, 1, 1, 1]), 0, 60, -128, 127),   # K = 63
    ("mt.QConv", (1, 4, 4, 5), (7, 4, 3, 3), dict(pads=[1, 0, 1, 0]), 5, 50, -100, 110),   # K = 36
    ("mt.QConv", (1, 9, 3, 3), (6, 9, 2, 2), dict(), 31, 60, 0, 127),                      # ReLU
    ("mt.QConv", (1, 5, 4, 4), (9, 5, 1, 1), dict(), 32, 2, 0, 6),                         # ReLU6-style
    ("mt.QConv", (1, 3, 6, 5), (5, 3, 3, 3), dict(pads=[0, 1, 0, 1]), 33, 60, -128, 127),
    ("mt.QConv", (1, 8, 4, 4), (6, 8, 2, 1), dict(), 0, 1 << 36, -128, 127),             # int32 overflow
    ("mt.QConv", (1, 8, 4, 4), (6, 8, 1, 2), dict(), 6, 1 << 36, -128, 127),             # int32 overflow
    ("mt.QMatMul", (7, 50), (50, 11), dict(), 0, 60, -128, 127),                           # K = 50
    ("mt.QMatMul", (5, 17), (17, 6), dict(), 12, 40, -90, 90),
    ("mt.QMatMul", (4, 68), (68, 9), dict(), 32, 60, -128, 127),
    ("mt.QMatMul", (8, 33), (33, 5), dict(), 39, 60, 0, 127),
    ("mt.QMatMul", (6, 20), (20, 7), dict(), 3, 1 << 36, -128, 127),                     # int32 overflow
]


def _edge_model(seed=1):
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, inits, feeds, saturating = [], [], [], [], {}, []
    for i, (op, xs, ws, attrs, shift, scale, lo, hi) in enumerate(EDGE_CASES):
        small = shift < 8 and scale < 1000      # small shift, in range: small values
        x = rng.integers(-3, 4, xs).astype(np.int8) if small else rand_s8(rng, xs)
        w = rng.integers(-3, 4, ws).astype(np.int8) if small else rand_s8(rng, ws)
        z = [int(rng.integers(-2, 3)) if small or scale > 1000 else int(rng.integers(-128, 128))
             for _ in range(2)]
        conv = op == "mt.QConv"
        if conv:
            taps, channels, z[1] = int(np.prod(ws[1:])), ws[0], 0
            zp = dict(x_zero_point=z[0])
        else:
            taps, channels = xs[-1], ws[-1]
            zp = dict(a_zero_point=z[0], b_zero_point=z[1] // 4)
        sd = 2.0 if small else 74.0
        acc_std = np.sqrt(taps * (sd * sd + z[0] ** 2) * (sd * sd + (z[1] // 4) ** 2))
        per_channel = i % 2 == 0
        mul = scale * 2.0 ** shift / acc_std * rng.uniform(0.7, 1.3, channels if per_channel else 1)
        mul = np.clip(np.round(mul), 1, (1 << 31) - 1).astype(np.int32)
        center = (lo + hi) // 2
        spread = max(1, (hi - lo) // 25)
        add = ((center + rng.integers(-spread, spread + 1, channels if per_channel else 1)) *
               (1 << shift)).astype(np.int64)
        names = [f"x{i}", f"w{i}", f"m{i}", f"a{i}"]
        feeds[names[0]] = x
        inputs.append(helper.make_tensor_value_info(names[0], onnx.TensorProto.INT8, x.shape))
        inits.extend(numpy_helper.from_array(np.asarray(v), n) for v, n in zip((w, mul, add), names[1:]))
        nodes.append(helper.make_node(op, names, [f"y{i}"], domain="microtrain", shift=shift, lo=lo, hi=hi,
                                      **zp, **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))
        saturating.append(scale > 1000)
    g = helper.make_graph(nodes, "gemm_edges", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds, saturating


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m7", "rv32imc"])
def test_gemm_requant_edges_bit_exact(target):
    model, feeds, saturating = _edge_model()
    cm = microtrain.compile(model, target)
    source = (cm.project_dir / "network.c").read_text()
    assert source.count("mt_conv_s8_gemm(") == 7 and source.count("mt_matmul_s8_gemm(") == 5
    got, want = cm.run(feeds), cm.reference(feeds)
    for i, (case, sat) in enumerate(zip(EDGE_CASES, saturating)):
        name, (lo, hi) = f"y{i}", case[6:8]
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{target} case {i} {case[:5]}")
        inner = ((want[name] > lo) & (want[name] < hi)).mean()
        if sat:      # the overflow cases reach both clamp bounds
            assert (want[name] == lo).any() and (want[name] == hi).any(), f"case {i}"
        else:        # the requantization is exercised, not saturating everything
            assert inner > 0.25, f"case {i}: only {inner:.2f} of the outputs inside ({lo}, {hi})"


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


@pytest.mark.parametrize("layer", ["conv3x3", "matmul"])
def test_under_1_2_instructions_per_mac_cortex_m4(layer):
    """The issue's Cortex-M4 bar on the bench layers (bench/int8_conv_kernels.py):
    64->64 channels 3x3 16x16 padding 1, and 128x128 @ 128x128; QEMU
    instruction counts (deterministic)."""
    rng = np.random.default_rng(0)
    if layer == "conv3x3":
        x, w = rand_s8(rng, (1, 64, 16, 16)), rand_s8(rng, (64, 64, 3, 3))
        mul, add_, shift = rand_requant(rng, 64, taps=576)
        model = q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add_}, x_zero_point=3, shift=shift,
                        pads=[1, 1, 1, 1])
    else:
        x, w = rand_s8(rng, (128, 128)), rand_s8(rng, (128, 128))
        mul, add_, shift = rand_requant(rng, 128, taps=128)
        model = q_model("mt.QMatMul", {"x": x}, {"w": w, "mul": mul, "add": add_}, a_zero_point=3,
                        b_zero_point=-2, shift=shift)
    cm = microtrain.compile(model, "cortex-m4")
    np.testing.assert_array_equal(cm.run({"x": x})["y"], cm.reference({"x": x})["y"])
    prof = cm.profile({"x": x}).layers[0]
    assert prof.instructions / prof.macs < 1.2


@pytest.mark.parametrize("target", ["host", "cortex-m4", "rv32imc"])
def test_relaid_weights_are_in_flash_once(target, tmp_path):
    """A GEMM-kernel layer reads its compile-time table; the original tensor
    must not also be emitted in weights.c (flash would hold the weights twice)."""
    rng = np.random.default_rng(7)
    x, w = rand_s8(rng, (1, 32, 8, 8)), rand_s8(rng, (32, 32, 3, 3))
    mul, add, shift = rand_requant(rng, 32, taps=288)
    model = q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add}, x_zero_point=3, shift=shift,
                    pads=[1, 1, 1, 1])
    cm = microtrain.compile(model, target, out_dir=tmp_path / "p")
    assert "mt_w_w" not in (tmp_path / "p" / "weights.c").read_text()
    assert "mt_w_mul" in (tmp_path / "p" / "weights.c").read_text()     # the requant constants stay
    np.testing.assert_array_equal(cm.run({"x": x})["y"], microtrain.reference(model, {"x": x})["y"])
    if target != "host":
        model_flash = cm.footprint.by_part["model"][0]
        assert model_flash < w.size * 1.25, model_flash                  # table + constants, not 2x
