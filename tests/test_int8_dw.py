"""The depthwise 3x3 stride-1 int8 kernel (runtime/mt_int8_dw.c,
mt_conv_s8_dw3x3) bit-exact with the numpy golden model on the host, under
QEMU on cortex-m4 / cortex-m7 (the SMLAD path) and rv32imc (plain C): pads
0..2 (asymmetric), widths that leave partial blocks of 4 outputs, batch 2,
every shift range and clamp. One firmware per target holds all cases."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import microtrain
from int8_check import rand_s8

# (x shape, pads [top, left, bottom, right], shift, lo, hi, per-channel)
DW_CASES = [
    ((1, 5, 6, 7), [1, 1, 1, 1], 33, -128, 127, True),     # OW 7: blocks of 4 + 3
    ((2, 3, 5, 4), [0, 0, 0, 0], 24, -128, 127, False),    # no padding, OW 2
    ((1, 4, 4, 9), [2, 1, 0, 2], 32, 0, 127, True),        # asymmetric, fused ReLU
    ((1, 2, 3, 3), [2, 2, 2, 2], 12, -100, 90, True),      # taps wholly in the padding
    ((1, 6, 8, 16), [1, 0, 1, 1], 40, 0, 6, False),        # ReLU6-style clip
    ((1, 3, 5, 5), [1, 1, 1, 1], 0, -128, 127, True),      # shift 0 (small values)
]


def _model(seed=3):
    rng = np.random.default_rng(seed)
    nodes, inputs, outputs, inits, feeds = [], [], [], [], {}
    for i, (xs, pads, shift, lo, hi, per_channel) in enumerate(DW_CASES):
        c = xs[1]
        small = shift == 0
        x = rng.integers(-3, 4, xs).astype(np.int8) if small else rand_s8(rng, xs)
        w = rng.integers(-3, 4, (c, 1, 3, 3)).astype(np.int8) if small else rand_s8(rng, (c, 1, 3, 3))
        zp = int(rng.integers(-2, 3)) if small else int(rng.integers(-128, 128))
        sd = 2.0 if small else 74.0
        acc_std = np.sqrt(9 * (sd * sd + zp * zp)) * sd
        n = c if per_channel else 1
        mul = np.clip(np.round((hi - lo) / 2 * 2.0 ** shift / acc_std * rng.uniform(0.7, 1.3, n)), 1, 2 ** 31 - 1)
        add = (((lo + hi) // 2 + rng.integers(-1, 2, n)) * (1 << shift)).astype(np.int64)
        names = [f"x{i}", f"w{i}", f"m{i}", f"a{i}"]
        feeds[names[0]] = x
        inputs.append(helper.make_tensor_value_info(names[0], onnx.TensorProto.INT8, x.shape))
        inits.extend(numpy_helper.from_array(np.asarray(v), nm)
                     for v, nm in zip((w, mul.astype(np.int32), add), names[1:]))
        nodes.append(helper.make_node("mt.QConv", names, [f"y{i}"], domain="microtrain", group=c, pads=pads,
                                      x_zero_point=zp, shift=shift, lo=lo, hi=hi))
        outputs.append(helper.make_tensor_value_info(f"y{i}", onnx.TensorProto.INT8, None))
    g = helper.make_graph(nodes, "dw_cases", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("microtrain", 1)])
    m.ir_version = 8
    return m, feeds


@pytest.mark.parametrize("target", ["host", "cortex-m4", "cortex-m7", "rv32imc"])
def test_dw3x3_bit_exact(target):
    model, feeds = _model()
    cm = microtrain.compile(model, target)
    assert (cm.project_dir / "network.c").read_text().count("mt_conv_s8_dw3x3(") == len(DW_CASES)
    got, want = cm.run(feeds), cm.reference(feeds)
    for i, (xs, pads, shift, lo, hi, _) in enumerate(DW_CASES):
        y = want[f"y{i}"]
        np.testing.assert_array_equal(got[f"y{i}"], y, err_msg=f"{target} case {i}")
        inner = ((y > lo) & (y < hi)).mean()
        assert inner > 0.25, f"case {i}: only {inner:.2f} of the outputs inside ({lo}, {hi})"
