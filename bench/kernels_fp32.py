"""Instructions per MAC of the fp32 conv/matmul kernels, plain reference vs
fast (MICROTRAIN_KERNELS=reference vs the default), on emulated targets
(QEMU instruction counts, not cycles). Each layer is a one-node model; the
fast output is also checked against the reference one and the golden model.
Numbers are quoted in docs/targets.md ("Fast fp32 kernels").

    python bench/kernels_fp32.py                       # cortex-m4 and rv32imfc
    python bench/kernels_fp32.py -t cortex-m7 -t host
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

import microtrain
from microtrain.ops.gemm import KERNELS_ENV


def one_node_model(node, x, weights):
    graph = helper.make_graph(
        [node], "bench", [helper.make_tensor_value_info("x", 1, x.shape)],
        [helper.make_tensor_value_info("y", 1, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def cases(rng):
    """(label, model, inputs): the layers issue #5 item 5 asks about."""
    x = rng.standard_normal((1, 64, 16, 16)).astype(np.float32)
    yield ("conv 3x3 64->64, 1x64x16x16, pad 1",
           one_node_model(helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", pads=[1, 1, 1, 1]),
                          x, {"w": rng.standard_normal((64, 64, 3, 3)) * 0.05, "b": rng.standard_normal(64)}),
           {"x": x})
    yield ("depthwise 3x3, 1x64x16x16, pad 1",
           one_node_model(helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dwconv", pads=[1, 1, 1, 1],
                                           group=64),
                          x, {"w": rng.standard_normal((64, 1, 3, 3)) * 0.3, "b": rng.standard_normal(64)}),
           {"x": x})
    yield ("pointwise 1x1 64->64, 1x64x16x16",
           one_node_model(helper.make_node("Conv", ["x", "w", "b"], ["y"], name="pwconv"),
                          x, {"w": rng.standard_normal((64, 64, 1, 1)) * 0.1, "b": rng.standard_normal(64)}),
           {"x": x})
    a = rng.standard_normal((128, 128)).astype(np.float32)
    yield ("matmul 128x128 @ 128x128",
           one_node_model(helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul"),
                          a, {"w": rng.standard_normal((128, 128)) * 0.1}),
           {"x": a})
    yield ("gemm 128x128, transB, bias",
           one_node_model(helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="gemm", transB=1),
                          a, {"w": rng.standard_normal((128, 128)) * 0.1, "b": rng.standard_normal(128)}),
           {"x": a})


def measure(model, inputs, target, kernels):
    """(instructions of the layer, MACs, output) with the given kernel set."""
    os.environ[KERNELS_ENV] = kernels
    try:
        cm = microtrain.compile(model, target)
        layer = cm.profile(inputs).layers[0]
        out = cm.run(inputs)["y"]
        ref = cm.reference(inputs)["y"]
    finally:
        del os.environ[KERNELS_ENV]
    return layer.instructions, layer.macs, out, ref


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-t", "--target", action="append", help="target name (repeatable; default: cortex-m4, rv32imfc)")
    args = ap.parse_args()
    targets = args.target or ["cortex-m4", "rv32imfc"]
    print(f"{'target':<10} {'layer':<36} {'MACs':>10} {'ref instr/MAC':>13} {'fast instr/MAC':>14} "
          f"{'speedup':>7} {'max|fast-ref|':>13} {'max|fast-gold|':>14}")
    worst = 0.0
    for target in targets:
        for label, model, inputs in cases(np.random.default_rng(0)):
            ref_i, macs, ref_out, _ = measure(model, inputs, target, "reference")
            fast_i, _, fast_out, gold = measure(model, inputs, target, "fast")
            d_ref = float(np.max(np.abs(fast_out - ref_out)))
            d_gold = float(np.max(np.abs(fast_out - gold)))
            worst = max(worst, d_gold / max(1.0, float(np.max(np.abs(gold)))))
            print(f"{target:<10} {label:<36} {macs:>10,} {ref_i / macs:>13.2f} {fast_i / macs:>14.2f} "
                  f"{ref_i / fast_i:>6.2f}x {d_ref:>13.1e} {d_gold:>14.1e}")
    print("Counts are executed instructions of the layer (QEMU TCG plugin; valgrind on host), not cycles.")
    if worst > 1e-4:
        sys.exit(f"fast kernels differ from the golden model by {worst:.1e} (scaled)")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
