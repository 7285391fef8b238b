"""Executed instructions (not cycles) and FLOP/instruction of one fp32
training step of the EEGNet-family model on an emulated core (QEMU counts).

    python bench/training_instructions.py                      # rv32imfc, 8 x 1000, 4 classes
    python bench/training_instructions.py -t cortex-m7     # cortex-m4's 256 KB SRAM is too small
    MICROTRAIN_KERNELS=reference python bench/training_instructions.py   # the plain kernels

Model: `microtrain.models.eegnet` (temporal conv first, per-sample norm
GroupNorm(1) = norm="layer", the training setup of docs/training.md), full
strategy, SGD, batch 1. One step is profiled: one row per node of the
training graph (forward, loss, backward, update).

FLOPs. A node's FLOPs are 2 x its MACs (a multiply-add is 2 FLOP) for the
nodes that multiply-accumulate: Conv, ConvTranspose (the input gradient of a
conv), mt.ConvGradW (its weight gradient), Gemm, MatMul. Their MACs come from
each op's `macs` rule (the report's). Every other node (norms, ELU, pooling,
softmax loss, reductions, SGD updates) is counted as 0 FLOP: its instructions
count, its arithmetic does not. The headline FLOP/instruction is therefore a
lower bound on any per-element FLOP convention; the line "with element-wise"
adds 1 FLOP per `macs` unit those other ops report, for comparison."""
from __future__ import annotations

import argparse
import collections

import numpy as np

import microtrain
from microtrain.models import eegnet
from microtrain.ops.registry import Value, get_op

MAC_OPS = ("Conv", "ConvTranspose", "mt.ConvGradW", "Gemm", "MatMul")


def node_macs(graph) -> dict[str, int]:
    out = {}
    for node in graph.nodes:
        op = get_op(node)
        ins = [Value(graph.type_of(i), graph.constants.get(i)) if i else Value(None) for i in node.inputs]
        outs = [graph.type_of(o) for o in node.outputs if o]
        out[node.name] = int(op.macs(node, ins, outs)) if op.macs else 0
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-t", "--target", default="rv32imfc")
    ap.add_argument("--chans", type=int, default=8)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=4)
    ap.add_argument("--rows", action="store_true", help="print every node, not only those >= 0.5%% of the step")
    args = ap.parse_args()
    shape = dict(chans=args.chans, samples=args.samples, classes=args.classes)
    proto = eegnet.export(norm="layer", **shape)
    try:
        tr = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=1e-3, batch=1,
                                         target=args.target)
    except microtrain.MicrotrainError as exc:     # e.g. does not fit cortex-m4's 256 KB SRAM
        raise SystemExit(f"bench: {exc}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(eegnet.input_shape(1, **shape)).astype(np.float32)
    y = np.array([1])
    prof = tr.profile(x, y)
    macs = node_macs(tr.program.micro)
    if tr.program.apply is not None:
        macs.update(node_macs(tr.program.apply))

    total_flop = total_flop_all = 0
    by_kind = collections.OrderedDict()
    print(f"EEGNet-family {args.chans} ch x {args.samples} samples, {args.classes} classes; full SGD step, "
          f"batch 1, {args.target}; instructions (not cycles)")
    print(f"{'node':<40} {'op':<22} {'MACs':>11} {'FLOP':>12} {'instructions':>13} {'FLOP/instr':>10}")
    for r in prof.layers:
        m = macs.get(r.name, 0)
        flop = 2 * m if r.op in MAC_OPS else 0
        total_flop += flop
        total_flop_all += flop if r.op in MAC_OPS else m
        k = by_kind.setdefault(r.op, [0, 0, 0])   # op kinds: backward nodes have their own ops
        k[0] += m
        k[1] += flop
        k[2] += r.instructions
        if args.rows or r.instructions >= 0.005 * prof.instructions:
            fpi = f"{flop / r.instructions:.3f}" if flop and r.instructions else "-"
            print(f"{r.name[:40]:<40} {r.op[:22]:<22} {m:>11,} {flop:>12,} {r.instructions:>13,} {fpi:>10}")
    print("\nper op kind")
    print(f"{'op':<22} {'MACs':>11} {'FLOP':>12} {'instructions':>13} {'share':>6} {'FLOP/instr':>10}")
    for op, (m, flop, ins) in sorted(by_kind.items(), key=lambda kv: -kv[1][2]):
        fpi = f"{flop / ins:.3f}" if flop and ins else "-"
        print(f"{op[:22]:<22} {m:>11,} {flop:>12,} {ins:>13,} {ins / prof.instructions:>6.1%} {fpi:>10}")
    print(f"\nstep: {total_flop:,} FLOP (MAC ops only) in {prof.instructions:,} instructions = "
          f"{total_flop / prof.instructions:.3f} FLOP/instruction")
    print(f"with element-wise ops at 1 FLOP per reported op: {total_flop_all / prof.instructions:.3f} FLOP/instruction")


if __name__ == "__main__":
    main()
