"""N-core estimate on rv32imfc (GAP9-class cluster): the EEGNet-family model
and the small CNN of bench/instructions.py compiled with cores=1, 2, 4, 8;
int8: the bench conv 3x3 64->64 16x16 of bench/int8_conv_kernels.py and the
int8 digits CNN of bench/int8_digits.py (rv32imfc runs the same rv32 int8
kernels as rv32imc, which is a single-core target).
QEMU runs one core, so each core's share of a layer runs in turn with a
marker after it; the estimate is sum over layers of (slowest core's share +
the target's assumed barrier cost). Executed instructions, not cycles.
Outputs are checked bit-identical to the 1-core build. Quoted in docs/targets.md.

    python bench/multicore.py [--cores 1,2,4,8] [--layers]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import microtrain
from microtrain.models import get_model

from instructions import small_cnn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def eegnet(**kwargs):
    proto = get_model("eegnet").export(**kwargs)
    x = np.random.default_rng(0).standard_normal(get_model("eegnet").input_shape(**kwargs)).astype(np.float32)
    return proto, {"input": x}


def int8_conv3x3():
    from int8_conv_kernels import LAYERS, layer_model
    x, model = layer_model(np.random.default_rng(0), *LAYERS[0])
    return model, {"x": x}


def int8_digits():
    import torch
    from digits_cnn import digits_split, export, train_digits_cnn
    from microtrain.quantization import quantize_inputs
    torch.set_num_threads(1)
    xtr, ytr, xte, _ = digits_split()
    q = microtrain.quantize(export(train_digits_cnn(xtr, ytr, seed=0), 1), xtr[:1078], progress=False)
    return q, quantize_inputs(q, {"input": xte[:1]})


MODELS = {
    "eegnet 8x1000 (norm=layer)": lambda: eegnet(norm="layer"),
    "eegnet 4x256 (bench config)": lambda: eegnet(chans=4, samples=256, norm="layer"),
    "small CNN 1x16x16": small_cnn,
    "int8 conv3x3 64->64 16x16": int8_conv3x3,
    "int8 digits CNN 1x8x8": int8_digits,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", default="1,2,4,8")
    ap.add_argument("--target", default="rv32imfc")
    ap.add_argument("--layers", action="store_true", help="per-layer shares of the largest core count")
    ap.add_argument("--models", default="", help="only the models whose label contains this text")
    args = ap.parse_args()
    cores = [int(c) for c in args.cores.split(",")]
    print("| model | cores | all cores' work | N-core estimate | speedup vs 1 core | work left on core 0 |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, make in MODELS.items():
        if args.models not in label:
            continue
        model, inputs = make()
        base = None
        for n in cores:
            cm = microtrain.compile(model, args.target, cores=n)
            prof = cm.profile(inputs)
            outs = cm.run(inputs)
            if base is None:
                base, base_outs = prof, outs
            for k in outs:
                assert np.array_equal(outs[k], base_outs[k]), f"{label}: {n} cores differ from 1 core on {k}"
            work = sum(r.instructions for r in prof.layers)
            # layers without a parallel kernel: the other cores only pass their marker
            serial = sum(r.core_instructions[0] for r in prof.layers
                         if r.core_instructions and sum(r.core_instructions[1:]) < 0.05 * r.core_instructions[0])
            share = serial / work if n > 1 else float("nan")
            print(f"| {label} | {n} | {work:,} | {prof.estimate_instructions:,} | "
                  f"{base.estimate_instructions / prof.estimate_instructions:.2f}x | "
                  f"{'–' if n == 1 else f'{share:.1%}'} |")
        if args.layers:
            print(prof.table())
            for r in prof.layers:
                if r.core_instructions:
                    print(f"  {r.name[:40]:<40} {r.op:<12} " + " ".join(f"{c:>9,}" for c in r.core_instructions))


if __name__ == "__main__":
    main()
