"""Instructions per MAC of the int8 conv and matmul kernels (mt.QConv,
mt.QMatMul; default kernels or MICROTRAIN_KERNELS=reference) on single-layer
models, rv32imc and Cortex-M4 (QEMU counts, not cycles). Quoted in
docs/quantization.md.

    python bench/int8_conv_kernels.py
    MICROTRAIN_KERNELS=reference python bench/int8_conv_kernels.py
"""
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import microtrain  # noqa: E402
from int8_check import q_model, rand_requant, rand_s8  # noqa: E402

LAYERS = [
    ("conv3x3 32->32 16x16", (1, 32, 16, 16), (32, 32, 3, 3), dict(pads=[1, 1, 1, 1])),
    ("dw3x3 32 16x16", (1, 32, 16, 16), (32, 1, 3, 3), dict(pads=[1, 1, 1, 1], group=32)),
    ("pw 32->32 16x16", (1, 32, 16, 16), (32, 32, 1, 1), {}),
    ("matmul 16x64 @ 64x32", (16, 64), (64, 32), {}),
]


def main():
    rng = np.random.default_rng(0)
    kernels = os.environ.get("MICROTRAIN_KERNELS", "fast")
    for label, xs, ws, attrs in LAYERS:
        x, w = rand_s8(rng, xs), rand_s8(rng, ws)
        if label.startswith("matmul"):
            mul, add, shift = rand_requant(rng, ws[1], taps=ws[0])
            model = q_model("mt.QMatMul", {"x": x}, {"w": w, "mul": mul, "add": add}, a_zero_point=3, shift=shift)
        else:
            mul, add, shift = rand_requant(rng, ws[0], taps=int(np.prod(ws[1:])))
            model = q_model("mt.QConv", {"x": x}, {"w": w, "mul": mul, "add": add}, x_zero_point=3,
                            shift=shift, **attrs)
        for target in ("rv32imc", "cortex-m4"):
            cm = microtrain.compile(model, target)
            prof = cm.profile({"x": x})
            print(f"{label:<24} {target:<10} {kernels:<9} {prof.instructions / prof.macs:6.2f} instr/MAC")


if __name__ == "__main__":
    main()
