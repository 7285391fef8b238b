"""int8 post-training quantization of a small CNN trained on scikit-learn's
8x8 digits (tests/digits_cnn.py): top-1 accuracy fp32 vs int8 (integer-only
C, bit-exact with the golden model) for each calibration method, argmax
agreement and logit error; then instructions of one inference on rv32imc
(QEMU counts, int8 vs fp32 soft-float) and flash bytes of the weights.
Numbers are quoted in docs/quantization.md.

    python bench/int8_digits.py [--seeds 3] [--no-target]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import microtrain  # noqa: E402
from digits_cnn import digits_split, export, train_digits_cnn  # noqa: E402
from microtrain.quantization import dequantize_outputs, quantize_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--no-target", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    xtr, ytr, xte, yte = digits_split()
    print(f"digits: {len(ytr)} train / {len(yte)} test samples")
    print(f"{'seed':>4} {'method':>10} {'fp32':>7} {'int8':>7} {'diff pp':>8} {'agree':>7} {'max|dlogit|':>12}")
    for seed in range(args.seeds):
        net = train_digits_cnn(xtr, ytr, seed=seed)
        fmodel = export(net, len(yte))
        with torch.no_grad():
            flogits = net(torch.from_numpy(xte)).numpy()
        fp32 = (flogits.argmax(1) == yte).mean()
        for method in ("minmax", "percentile", "mse"):
            q = microtrain.quantize(fmodel, xtr[:2 * len(yte)], method=method, progress=False)
            cm = microtrain.compile(q)
            xq = quantize_inputs(q, {"input": xte})
            out = cm.run(xq)["output"]
            assert np.array_equal(out, cm.reference(xq)["output"]), "C differs from the golden model"
            logits = dequantize_outputs(q, {"output": out})["output"]
            int8 = (out.argmax(1) == yte).mean()
            agree = (out.argmax(1) == flogits.argmax(1)).mean()
            print(f"{seed:>4} {method:>10} {100 * fp32:>6.2f}% {100 * int8:>6.2f}% {100 * (int8 - fp32):>+8.2f} "
                  f"{100 * agree:>6.2f}% {np.abs(logits - flogits).max():>12.4f}")
    if args.no_target:
        return
    net = train_digits_cnn(xtr, ytr, seed=0)
    f1 = export(net, 1)
    q1 = microtrain.quantize(f1, xtr[:1078], progress=False)
    x = xte[:1]
    for label, model, inputs in (("fp32", f1, {"input": x}), ("int8", q1, quantize_inputs(q1, {"input": x}))):
        cm = microtrain.compile(model, "rv32imc")
        prof = cm.profile(inputs)
        weights = sum(v.nbytes for v in cm.graph.constants.values())
        print(f"rv32imc {label}: {prof.instructions} instructions per inference, "
              f"{prof.macs} MACs ({prof.instructions / prof.macs:.1f} instr/MAC), "
              f"constants {weights} B, arena {cm.plan.arena_bytes} B")


if __name__ == "__main__":
    main()
