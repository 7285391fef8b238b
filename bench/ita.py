"""ITA offload numbers for the BERT-style encoder (docs/ita.md).

Trains models/encoder.py on scikit-learn's digits, quantizes it with
microtrain (softmax="ita"), compiles it for rv32imc+ita (attention on the ITA
model, Unicorn co-simulation) and rv32imc (CPU only, QEMU), checks both
bit-exact with the integer golden model on one test image, and prints:
instructions, estimated cycles (CPU instructions x CPI + ITA cycles; an
estimate), inferences/s at the clock, energy estimate, ITA utilization, the
attention part's speed-up and where the rest of the time goes.

    python bench/ita.py                 # full size: tokens 64, dim 128, 4 layers, 4 heads
    python bench/ita.py --small         # the tests' size"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

CPI = 1.0                 # assumed cycles per instruction of the rv32imc core
CLOCK_HZ = 500e6          # one SoC clock for core and ITA (accel/ita/cost.py)
CPU_J_PER_INSTR = 10e-12  # assumed energy of one rv32imc instruction (small 22 nm-class core)


def attention_layer(name: str) -> bool:
    return "/attn/" in name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--calib", type=int, default=None, help="calibration images (default 512 small, 64 full)")
    ap.add_argument("--accuracy-images", type=int, default=None, help="default 539 (small), 0 (full)")
    args = ap.parse_args()
    import torch
    import microtrain
    from digits_cnn import digits_split
    from microtrain.accel.ita import ITA_CONFIG
    from microtrain.compiler import lower_to_graph
    from microtrain.golden import interpret
    from microtrain.models import encoder
    from microtrain.quantization import quantize_inputs
    torch.set_num_threads(2)
    size = encoder.SMALL if args.small else encoder.DEFAULTS
    # Training the full size on this 2-core machine takes too long (~100x the
    # small model's MACs): by default the full-size bench uses seeded, untrained
    # weights (calibrated on real digits); cycle counts do not depend on them.
    epochs = args.epochs if args.epochs is not None else (8 if args.small else 0)
    xtr, ytr, xte, yte = digits_split()
    t0 = time.time()
    net = encoder.train(xtr, ytr, epochs=epochs, **size) if epochs else encoder.build(0, **size).eval()
    with torch.no_grad():
        fp32 = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    print(f"encoder {size}, {epochs} epochs of Adam on 1258 digits: fp32 top-1 {100 * fp32:.2f} % "
          f"on 539 ({time.time() - t0:.0f} s)")
    calib = args.calib if args.calib is not None else (512 if args.small else 64)
    t0 = time.time()
    qmodel = microtrain.quantize(encoder.export(model=net), xtr[:calib], softmax="ita", progress=False)
    print(f"quantized (min/max calibration on {calib} training images, softmax='ita') in {time.time() - t0:.0f} s")
    graph = lower_to_graph(qmodel)
    n = min(args.accuracy_images if args.accuracy_images is not None else (0 if epochs == 0 else 539), len(yte))
    hits = 0
    for i in range(n):
        xq = quantize_inputs(qmodel, {"input": xte[i:i + 1]})
        hits += int(np.argmax(interpret(graph, xq)["output"]) == yte[i])
    if n:
        print(f"int8 (integer golden model) top-1 {100 * hits / n:.2f} % on {n} test images")

    x = quantize_inputs(qmodel, {"input": xte[:1]})
    want = microtrain.reference(qmodel, x)["output"]
    profiles = {}
    for target in ("rv32imc+ita", "rv32imc"):
        t = time.time()
        cm = microtrain.compile(qmodel, target)
        prof = cm.profile(x)
        got = cm.run(x)["output"]
        assert np.array_equal(got, want), f"{target}: not bit-exact with the integer golden model"
        profiles[target] = prof
        print(f"{target}: bit-exact with the integer golden model; profiled in {time.time() - t:.0f} s")

    rows = []
    for target, prof in profiles.items():
        cycles = prof.estimated_cycles(CPI)
        ita = prof.accel_cycles
        ita_macs = sum(r.macs for r in prof.layers if r.ran_on == "ita")
        util = ita_macs / (ita * ITA_CONFIG.macs_per_cycle) if ita else 0.0
        ita_energy = 2 * ita_macs * ITA_CONFIG.joules_per_op
        energy = prof.instructions * CPU_J_PER_INSTR + ita_energy
        att = sum(r.instructions * CPI + r.accel_cycles for r in prof.layers if attention_layer(r.name))
        rows.append((target, prof.instructions, ita, cycles, CLOCK_HZ / cycles, energy, util, att))
    print()
    print(f"estimate: CPU instructions x CPI {CPI:g} + ITA cycles, {CLOCK_HZ / 1e6:g} MHz, "
          f"{CPU_J_PER_INSTR * 1e12:g} pJ/instruction + ITA at {ITA_CONFIG.tops_per_watt} TOPS/W")
    print("| target | CPU instructions | ITA cycles | est. cycles | inferences/s | energy/inference | "
          "ITA utilization | attention cycles |")
    print("|---|---|---|---|---|---|---|---|")
    for t, ins, ita, cyc, ips, e, util, att in rows:
        print(f"| {t} | {ins:,} | {ita:,} | {cyc:,.0f} | {ips:,.1f} | {e * 1e6:,.1f} uJ | "
              f"{100 * util:.1f} % | {att:,.0f} |")
    att_ita, att_cpu = rows[0][7], rows[1][7]
    print(f"\nattention blocks: {att_cpu:,.0f} cycles CPU-only vs {att_ita:,.0f} with ITA: "
          f"{att_cpu / att_ita:.1f}x faster; whole network {rows[1][3] / rows[0][3]:.2f}x")
    by_op = defaultdict(float)
    for r in profiles["rv32imc+ita"].layers:
        by_op[r.op + (" (ITA)" if r.ran_on == "ita" else "")] += r.instructions * CPI + r.accel_cycles
    total = rows[0][3]
    print("\nwhere the time goes on rv32imc+ita (est. cycles by op):")
    for op, c in sorted(by_op.items(), key=lambda kv: -kv[1]):
        if c:
            print(f"  {op:<24} {c:>14,.0f}  {100 * c / total:5.1f} %")
    ita_rows = [r for r in profiles["rv32imc+ita"].layers if r.ran_on == "ita"]
    print(f"\nITA blocks: {sum(r.instructions for r in ita_rows):,} CPU instructions (programming registers, "
          f"zeroing the accumulator, output requant) + {sum(r.accel_cycles for r in ita_rows):,} ITA cycles")


if __name__ == "__main__":
    main()
