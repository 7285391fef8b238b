"""Executed instructions per MAC of a small CNN on every target (QEMU counts;
instructions, not cycles), with flash/RAM use and a check against the golden
model. Numbers are quoted in docs/targets.md.

    python bench/instructions.py                     # all targets
    python bench/instructions.py -t cortex-m4 -t rv32imc --layers
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from onnx import helper, numpy_helper

import microtrain
from microtrain.targets import TARGETS


def small_cnn(seed: int = 0):
    """1x16x16 input: Conv3x3(1->8)+ReLU, MaxPool2, Conv3x3(8->16)+ReLU,
    GlobalAveragePool, Gemm(16->10). ~0.1 M MACs, fp32."""
    rng = np.random.default_rng(seed)
    w = {"w1": rng.standard_normal((8, 1, 3, 3)) * 0.3, "b1": rng.standard_normal(8) * 0.1,
         "w2": rng.standard_normal((16, 8, 3, 3)) * 0.1, "b2": rng.standard_normal(16) * 0.1,
         "w3": rng.standard_normal((10, 16)) * 0.2, "b3": rng.standard_normal(10) * 0.1}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], name="fc", transB=1),
    ]
    x = rng.standard_normal((1, 1, 16, 16)).astype(np.float32)
    graph = helper.make_graph(
        nodes, "small_cnn", [helper.make_tensor_value_info("x", 1, x.shape)],
        [helper.make_tensor_value_info("y", 1, None)],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model, {"x": x}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-t", "--target", action="append", help="target name (repeatable; default: all)")
    ap.add_argument("--layers", action="store_true", help="print the per-layer table of each target")
    args = ap.parse_args()
    targets = args.target or [t for t in TARGETS if t != "host"] + ["host"]
    model, inputs = small_cnn()
    print(f"{'target':<10} {'MACs':>9} {'instructions':>13} {'instr/MAC':>9} {'conv2 i/MAC':>11} "
          f"{'flash B':>9} {'RAM B':>9} {'stack B':>8} {'max|err|':>9} {'s':>5}")
    for name in targets:
        t0 = time.time()
        cm = microtrain.compile(model, name)
        try:
            prof = cm.profile(inputs)
        except microtrain.MicrotrainError as e:     # host without valgrind
            print(f"{name:<10} {e}")
            continue
        err = float(np.max(np.abs(cm.run(inputs)["y"] - cm.reference(inputs)["y"])))
        conv2 = next(r for r in prof.layers if r.name == "conv2")
        fp = cm.footprint
        flash, ram, stack = ((f"{fp.flash_bytes:,}", f"{fp.ram_bytes:,}", f"{fp.stack_measured:,}")
                             if fp else ("-", "-", "-"))
        print(f"{name:<10} {prof.macs:>9,} {prof.instructions:>13,} {prof.instructions_per_mac:>9.2f} "
              f"{conv2.instructions_per_mac:>11.2f} {flash:>9} {ram:>9} {stack:>8} {err:>9.1e} "
              f"{time.time() - t0:>5.1f}")
        if args.layers:
            print(prof.table())
    print("Counts are executed instructions (QEMU TCG plugin; valgrind on host), not cycles.")


if __name__ == "__main__":
    main()
