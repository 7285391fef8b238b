"""Instructions per MAC of the int8 conv and matmul kernels (mt.QConv,
mt.QMatMul) on single-layer models: default kernels (mt_conv_s8_gemm /
mt_matmul_s8_gemm, register-blocked, __smlad on Cortex-M4/M7, the 4x5
assembly GEMM and the 3-wide sliding window on rv32; depthwise
mt_conv_s8_fast) vs MICROTRAIN_KERNELS=reference, on rv32imc, rv32imfc,
cortex-m4, cortex-m7 (QEMU instruction counts, not cycles). Quoted in
docs/targets.md ("Fast int8 kernels") and docs/quantization.md.

    python bench/int8_conv_kernels.py                  # default kernels
    MICROTRAIN_KERNELS=reference python bench/int8_conv_kernels.py
    python bench/int8_conv_kernels.py rv32imc          # one target
"""
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import microtrain  # noqa: E402
from int8_check import q_model, rand_requant, rand_s8  # noqa: E402

LAYERS = [
    ("conv3x3 64->64 16x16", (1, 64, 16, 16), (64, 64, 3, 3), dict(pads=[1, 1, 1, 1])),
    ("dw3x3 64 16x16", (1, 64, 16, 16), (64, 1, 3, 3), dict(pads=[1, 1, 1, 1], group=64)),
    ("pw 64->64 16x16", (1, 64, 16, 16), (64, 64, 1, 1), {}),
    ("matmul 128x128 @ 128x128", (128, 128), (128, 128), {}),
]
TARGETS = ("rv32imc", "rv32imfc", "cortex-m4", "cortex-m7")


def layer_model(rng, label, xs, ws, attrs):
    x, w = rand_s8(rng, xs), rand_s8(rng, ws)
    if label.startswith("matmul"):
        mul, add, shift = rand_requant(rng, ws[1], taps=ws[0])
        return x, q_model("mt.QMatMul", {"x": x}, {"w": w, "mul": mul, "add": add}, a_zero_point=3,
                          b_zero_point=-2, shift=shift)
    mul, add, shift = rand_requant(rng, ws[0], taps=int(np.prod(ws[1:])))
    return x, q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add}, x_zero_point=3,
                      shift=shift, **attrs)


def main(targets=TARGETS):
    rng = np.random.default_rng(0)
    kernels = os.environ.get("MICROTRAIN_KERNELS", "default")
    for label, xs, ws, attrs in LAYERS:
        x, model = layer_model(rng, label, xs, ws, attrs)
        for target in targets:
            cm = microtrain.compile(model, target)
            prof = cm.profile({"x": x})
            print(f"{label:<26} {target:<10} {kernels:<9} {prof.instructions:>10,} instr "
                  f"{prof.macs:>10,} MACs {prof.instructions / prof.macs:6.2f} instr/MAC", flush=True)


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or TARGETS)
