"""Fast fp32 kernels (Conv: mt_conv2d_f32_fast / mt_dwconv2d_f32 /
mt_conv_pointwise_f32; Gemm/MatMul: *_blocked) against the plain reference
kernels (MICROTRAIN_KERNELS=reference) and the golden model (itself checked
against onnxruntime), over randomized shapes that hit the blocking remainders,
strides, dilations, pads, groups and 1-D; plus a small model on cortex-m4 and
rv32imfc. Each test puts many nodes in one model so it compiles twice."""
from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import helper

import microtrain
from microtrain.errors import MicrotrainError
from microtrain.ops.gemm import KERNELS_ENV
from onnx_check import assert_close, check_model, make_model

FAST_CONV = ("mt_conv2d_f32_fast", "mt_dwconv2d_f32", "mt_conv_pointwise_f32")


def kernel_calls(cm) -> list[str]:
    """Names of the kernels network.c calls, in order."""
    text = (cm.project_dir / "network.c").read_text()
    return re.findall(r"\b(mt_[a-z0-9_]+)\(", text)


def compile_reference(model, monkeypatch, target=None):
    """The same model with the reference kernels, for `target` (default: the
    suite's target, as check_model compiles the fast one)."""
    with monkeypatch.context() as m:
        m.setenv(KERNELS_ENV, "reference")
        return microtrain.compile(model, target) if target else microtrain.compile(model)


def check_fast_vs_reference(model, inputs, monkeypatch, want_kernel: str, count: int):
    """C with the fast kernels vs golden vs onnxruntime (check_model), and vs
    the C with the reference kernels: within tolerance, and in fact
    bit-identical (the fast kernels sum in the reference's order)."""
    cm, fast = check_model(model, inputs)
    calls = kernel_calls(cm)
    assert calls.count(want_kernel) == count, f"expected {count} x {want_kernel}, got {calls}"
    ref_cm = compile_reference(model, monkeypatch)
    assert want_kernel not in kernel_calls(ref_cm)
    ref = ref_cm.run(inputs)
    for name in cm.output_names:
        assert_close(fast[name], ref[name], what=f"fast vs reference kernel, output {name}")
        assert np.array_equal(fast[name], ref[name]), f"fast and reference kernels differ in bits on {name}"


# ---- randomized conv cases ---------------------------------------------------

def random_conv(rng, kind: str, nsp: int):
    """(x_shape, w_shape, attrs) of a valid conv of the given kind."""
    while True:
        n = int(rng.integers(1, 3))
        size = [int(rng.integers(1, 14)) for _ in range(nsp)]
        if kind == "pointwise":
            c, m = int(rng.integers(1, 11)), int(rng.integers(1, 11))
            return (n, c, *size), (m, c, *[1] * nsp), {}
        kernel = [int(rng.integers(1, 6)) for _ in range(nsp)]
        strides = [int(rng.choice([1, 1, 2, 2, 3])) for _ in range(nsp)]
        dil = [int(rng.choice([1, 1, 1, 2])) for _ in range(nsp)]
        pads = [int(rng.integers(0, 3)) for _ in range(2 * nsp)]
        if kind == "depthwise":
            c = int(rng.integers(1, 8))
            group, m = c, c * int(rng.integers(1, 4))
        else:
            group = int(rng.choice([1, 1, 1, 2, 3]))
            c = group * int(rng.integers(2, 6))       # >= 2 channels per group (1 is depthwise)
            m = group * int(rng.integers(1, 7))
        if all(size[a] + pads[a] + pads[a + nsp] >= (kernel[a] - 1) * dil[a] + 1 for a in range(nsp)):
            attrs = dict(strides=strides, dilations=dil, pads=pads)
            if group > 1:
                attrs["group"] = group
            return (n, c, *size), (m, c // group, *kernel), attrs


def conv_model(rng, specs):
    nodes, inputs, inits = [], {}, {}
    for i, (x_shape, w_shape, attrs) in enumerate(specs):
        inputs[f"x{i}"] = rng.standard_normal(x_shape).astype(np.float32)
        inits[f"w{i}"] = rng.standard_normal(w_shape).astype(np.float32)
        names = [f"x{i}", f"w{i}"]
        if i % 3:     # some without bias
            inits[f"b{i}"] = rng.standard_normal(w_shape[0]).astype(np.float32)
            names.append(f"b{i}")
        nodes.append(helper.make_node("Conv", names, [f"y{i}"], name=f"conv{i}", **attrs))
    return make_model(nodes, inputs, [f"y{i}" for i in range(len(specs))], inits), inputs


KERNEL_OF = {"general": "mt_conv2d_f32_fast", "depthwise": "mt_dwconv2d_f32",
             "pointwise": "mt_conv_pointwise_f32"}


@pytest.mark.parametrize("nsp", [1, 2])
@pytest.mark.parametrize("kind", ["general", "depthwise", "pointwise"])
@pytest.mark.parametrize("seed", [0, 1])
def test_conv_fast_paths_random(kind, nsp, seed, monkeypatch):
    rng = np.random.default_rng(1000 * seed + 10 * nsp + len(kind))
    specs = [random_conv(rng, kind, nsp) for _ in range(12)]
    model, inputs = conv_model(rng, specs)
    check_fast_vs_reference(model, inputs, monkeypatch, KERNEL_OF[kind], len(specs))


# Hand-picked cases: the specialized 3x3 stride 1/2 interiors with widths
# around the 4-pixel block, channel counts around the 4-channel block, pads
# wider than the kernel (rows/columns made of bias only), auto_pad, and a
# runtime weight.
EDGE_CONVS = [
    ((1, 5, 9, 11), (7, 5, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((1, 4, 8, 8), (4, 4, 3, 3), dict(pads=[1, 1, 1, 1])),
    ((2, 3, 10, 13), (9, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 2, 7, 6), (3, 2, 3, 3), dict(strides=[2, 2], pads=[0, 1, 1, 0])),
    ((1, 3, 3, 3), (5, 3, 3, 3), dict(pads=[3, 3, 3, 3])),
    ((1, 2, 12, 12), (6, 2, 3, 3), dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    ((1, 4, 9, 9), (4, 4, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    ((1, 3, 5, 17), (2, 3, 1, 5), dict(pads=[0, 2, 0, 2])),
    ((1, 6, 6, 6), (6, 2, 3, 3), dict(group=3, pads=[1, 1, 1, 1])),
]


def test_conv_fast_edges(monkeypatch):
    rng = np.random.default_rng(7)
    model, inputs = conv_model(rng, EDGE_CONVS)
    check_fast_vs_reference(model, inputs, monkeypatch, "mt_conv2d_f32_fast", len(EDGE_CONVS))


DW_EDGES = [
    ((1, 8, 16, 16), (8, 1, 3, 3), dict(group=8, pads=[1, 1, 1, 1])),
    ((2, 3, 9, 7), (3, 1, 3, 3), dict(group=3, strides=[2, 2], pads=[1, 1, 1, 1])),
    ((1, 5, 6, 13), (5, 1, 5, 5), dict(group=5, pads=[2, 2, 2, 2])),
    ((1, 2, 4, 4), (6, 1, 3, 3), dict(group=2, pads=[4, 4, 4, 4])),
    ((1, 4, 11, 11), (4, 1, 3, 3), dict(group=4, dilations=[2, 2], strides=[2, 1])),
    ((1, 3, 1, 20), (3, 1, 1, 3), dict(group=3, pads=[0, 1, 0, 1])),
]


def test_dwconv_edges(monkeypatch):
    rng = np.random.default_rng(8)
    model, inputs = conv_model(rng, DW_EDGES)
    check_fast_vs_reference(model, inputs, monkeypatch, "mt_dwconv2d_f32", len(DW_EDGES))


def test_conv_choice_keeps_reference_where_no_fast_path(monkeypatch):
    """3-D convs, and 1x1 convs with padding, stride or groups, are not the
    pointwise GEMM; 3-D stays on the reference kernel."""
    rng = np.random.default_rng(9)
    specs = [((1, 2, 4, 5, 6), (3, 2, 2, 2, 2), dict(pads=[1] * 6))]
    model, inputs = conv_model(rng, specs)
    cm, _ = check_model(model, inputs)
    assert "mt_conv_f32" in kernel_calls(cm)
    specs = [((1, 4, 5, 5), (3, 4, 1, 1), dict(pads=[1, 0, 1, 0])),
             ((1, 4, 5, 5), (3, 4, 1, 1), dict(strides=[2, 2])),
             ((1, 4, 5, 5), (4, 2, 1, 1), dict(group=2)),
             ((1, 4, 5, 5), (3, 4, 1, 1), dict(pads=[0, 0, 1, 1]))]
    model, inputs = conv_model(rng, specs)
    check_fast_vs_reference(model, inputs, monkeypatch, "mt_conv2d_f32_fast", len(specs))


def test_conv_runtime_weight(monkeypatch):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1, 5, 7, 9)).astype(np.float32)
    w = rng.standard_normal((6, 5, 3, 3)).astype(np.float32)
    dw = rng.standard_normal((5, 1, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "dw"], ["z"], name="dw", group=5, strides=[2, 2])]
    inputs = {"x": x, "w": w, "dw": dw}
    check_fast_vs_reference(make_model(nodes, inputs, ["y", "z"]), inputs, monkeypatch,
                            "mt_conv2d_f32_fast", 1)


# ---- Gemm / MatMul -----------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gemm_blocked_random(seed, monkeypatch):
    rng = np.random.default_rng(50 + seed)
    nodes, inputs, inits = [], {}, {}
    combos = [(ta, tb, c) for ta in (0, 1) for tb in (0, 1) for c in ("none", "row", "full", "col")]
    for i, (ta, tb, c) in enumerate(combos):
        m, k, n = (int(v) for v in rng.integers(1, 19, 3))
        a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        inputs[f"a{i}"] = a
        (inputs if i % 2 else inits)[f"b{i}"] = b     # runtime and constant B
        names = [f"a{i}", f"b{i}"]
        if c != "none":
            inits[f"c{i}"] = rng.standard_normal({"row": (n,), "full": (m, n), "col": (m, 1)}[c]).astype(np.float32)
            names.append(f"c{i}")
        alpha, beta = float(rng.choice([1.0, 0.5, -2.0])), float(rng.choice([1.0, 0.25]))
        nodes.append(helper.make_node("Gemm", names, [f"y{i}"], name=f"gemm{i}", transA=ta, transB=tb,
                                      alpha=alpha, beta=beta))
    model = make_model(nodes, inputs, [f"y{i}" for i in range(len(nodes))], inits)
    check_fast_vs_reference(model, inputs, monkeypatch, "mt_gemm_f32_blocked", len(nodes))


MATMULS = [((5, 7), (7, 3)), ((1, 1), (1, 1)), ((4, 4), (4, 4)), ((9, 13), (13, 17)),
           ((2, 3, 6, 5), (5, 9)), ((3, 1, 5, 2), (4, 2, 7)), ((7,), (7, 5)), ((6, 3), (3,)),
           ((2, 8, 16), (2, 16, 8))]


def test_matmul_blocked(monkeypatch):
    rng = np.random.default_rng(60)
    nodes, inputs = [], {}
    for i, (sa, sb) in enumerate(MATMULS):
        inputs[f"a{i}"] = rng.standard_normal(sa).astype(np.float32)
        inputs[f"b{i}"] = rng.standard_normal(sb).astype(np.float32)
        nodes.append(helper.make_node("MatMul", [f"a{i}", f"b{i}"], [f"y{i}"], name=f"mm{i}"))
    model = make_model(nodes, inputs, [f"y{i}" for i in range(len(nodes))])
    check_fast_vs_reference(model, inputs, monkeypatch, "mt_matmul_f32_blocked", len(nodes))


def test_bad_kernel_set_is_a_clear_error(monkeypatch):
    x = np.ones((2, 3), np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "x2"], ["y"], name="mm")],
                       {"x": x, "x2": x.T.copy()}, ["y"])
    monkeypatch.setenv(KERNELS_ENV, "turbo")
    with pytest.raises(MicrotrainError, match="MICROTRAIN_KERNELS"):
        microtrain.compile(model)


# ---- on the MCU targets -------------------------------------------------------

def small_mixed_model():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 3, 10, 9)).astype(np.float32)
    init = {"w1": rng.standard_normal((8, 3, 3, 3)) * 0.3, "b1": rng.standard_normal(8) * 0.1,
            "w2": rng.standard_normal((8, 1, 3, 3)) * 0.3, "b2": rng.standard_normal(8) * 0.1,
            "w3": rng.standard_normal((6, 8, 1, 1)) * 0.3, "b3": rng.standard_normal(6) * 0.1,
            "w4": rng.standard_normal((6 * 5 * 5, 7)) * 0.1, "b4": rng.standard_normal(7) * 0.1,
            "w5": rng.standard_normal((7, 5)) * 0.3}
    init = {k: v.astype(np.float32) for k, v in init.items()}
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", group=8, strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c2", "w3", "b3"], ["c3"], name="pw"),
             helper.make_node("Flatten", ["c3"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w4", "b4"], ["g"], name="fc"),
             helper.make_node("MatMul", ["g", "w5"], ["y"], name="mm")]
    return make_model(nodes, {"x": x}, ["y", "c1"], init), {"x": x}


@pytest.mark.parametrize("target", ["cortex-m4", "rv32imfc"])
def test_fast_kernels_on_mcu(target, monkeypatch):
    model, inputs = small_mixed_model()
    cm = microtrain.compile(model, target)
    calls = kernel_calls(cm)
    for kernel in (*FAST_CONV, "mt_gemm_f32_blocked", "mt_matmul_f32_blocked"):
        assert kernel in calls, f"{kernel} not used on {target}: {calls}"
    got = cm.run(inputs)
    want = cm.reference(inputs)
    ref = compile_reference(model, monkeypatch, target).run(inputs)
    for name in cm.output_names:
        assert_close(got[name], want[name], what=f"{target} fast vs golden, {name}")
        assert np.array_equal(got[name], ref[name]), f"{target}: fast and reference kernels differ on {name}"
