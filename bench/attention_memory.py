"""Peak RAM of attention, layer-by-layer vs depth-first (mt.Attention), and
the FWSA rewrite's MACs/parameters, on the EEG-transformer shape (S=81, E=32,
P=32, H=8; models/mhsa.py) and on CCT-2/3x2 (models/cct.py: the attention
block alone at its shape S=64, E=128, P=64, H=2, and the whole network).
Deterministic: the planner's arena (bytes; the caller's input/output buffers
added in the second column), MAC counts, float parameters. fp32 tensors.
Numbers are quoted in docs/quantization_transformer.md.

    python bench/attention_memory.py
"""
from __future__ import annotations

import warnings

from microtrain.compiler import lower_to_graph
from microtrain.models import cct, mhsa
from microtrain.passes.fwsa import fwsa as fwsa_pass, macs_and_params
from microtrain.planner import plan_memory

warnings.filterwarnings("ignore")

CASES = [
    ("EEG MHSA S=81 E=32 P=32 H=8", lambda: mhsa.export()),
    ("CCT attention block S=64 E=128 P=64 H=2", lambda: mhsa.export(tokens=64, dim=128, heads=2, head_dim=64)),
    ("CCT-2/3x2 whole network (fused qkv)", lambda: cct.export()),
]


def int8_model(proto, fwsa: bool):
    """PTQ (min/max, softmax="ita") from 8 seeded Gaussian samples."""
    import numpy as np
    import microtrain
    shape = lower_to_graph(proto).types["input"].shape
    calib = np.random.default_rng(0).standard_normal((8,) + shape[1:]).astype(np.float32)
    return microtrain.quantize(proto, calib, softmax="ita", progress=False, fwsa=fwsa)


def io_bytes(g) -> int:
    return sum(g.types[n].nbytes for n in g.inputs + g.outputs)


def main() -> None:
    print(f"{'model':<42} {'schedule':<22} {'arena B':>9} {'+ I/O B':>9} {'MACs':>11} {'params':>8}  "
          f"arena ratio (with I/O)")
    for label, make in CASES:
        proto = make()
        base = None
        for fwsa in (False, True):
            for depth_first in (False, True):
                g = lower_to_graph(proto, fwsa=fwsa, depth_first=depth_first)
                plan = plan_memory(g)
                macs, params = macs_and_params(g)
                total = plan.arena_bytes + io_bytes(g)
                sched = ("FWSA + " if fwsa else "") + ("depth-first" if depth_first else "layer-by-layer")
                base = base or (plan.arena_bytes, total)
                print(f"{label:<42} {sched:<22} {plan.arena_bytes:>9,} {total:>9,} {macs:>11,} {params:>8,}  "
                      f"{base[0] / plan.arena_bytes:5.2f}x ({base[1] / total:.2f}x)")
        forced = macs_and_params(fwsa_pass(lower_to_graph(proto), only_when_cheaper=False))
        print(f"{label:<42} {'FWSA forced (no gate)':<22} {'':>9} {'':>9} {forced[0]:>11,} {forced[1]:>8,}")
        for fwsa in (False, True):   # int8 (ITA softmax): depth-first = the fused integer core (mt.QAttention)
            qmodel = int8_model(proto, fwsa)
            base8 = None
            for depth_first in (False, True):
                g = lower_to_graph(qmodel, depth_first=depth_first)
                plan = plan_memory(g)
                base8 = base8 or plan.arena_bytes
                sched = "int8 " + ("FWSA + " if fwsa else "") + ("depth-first" if depth_first else "layer-by-layer")
                print(f"{label:<42} {sched:<22} {plan.arena_bytes:>9,} {plan.arena_bytes + io_bytes(g):>9,} "
                      f"{'':>11} {'':>8}  {base8 / plan.arena_bytes:5.2f}x vs int8 layer-by-layer")
        print()


if __name__ == "__main__":
    main()
