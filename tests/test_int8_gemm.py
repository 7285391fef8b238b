"""The register-blocked int8 GEMM kernels (runtime/mt_int8_gemm.c:
mt_conv_s8_gemm, mt_matmul_s8_gemm) bit-exact with the numpy golden model
over randomized shapes, on the host and under QEMU on cortex-m4 (the
__smlad/__sxtb16 path) and rv32imc (the 4x4 blocked path). One firmware per
target holds all the cases (one node each), so the emulator tests stay fast."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import microtrain
from int8_check import rand_requant, rand_s8


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
                 ((11, 16), (16, 8))]


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


@pytest.mark.parametrize("target", ["host", "cortex-m4", "rv32imc"])
def test_gemm_kernels_bit_exact(target):
    model, feeds = _model()
    cm = microtrain.compile(model, target)
    source = (cm.project_dir / "network.c").read_text()
    assert source.count("mt_conv_s8_gemm(") == 8 and source.count("mt_matmul_s8_gemm(") == 5
    got, want = cm.run(feeds), cm.reference(feeds)
    for name in want:
        assert got[name].dtype == np.int8
        np.testing.assert_array_equal(got[name], want[name], err_msg=f"{target} {name}")
    inner = np.concatenate([((w > -128) & (w < 127)).ravel() for w in want.values()])
    assert inner.mean() > 0.3   # the requant is exercised, not saturating everything
