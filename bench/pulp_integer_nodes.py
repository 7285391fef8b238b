"""Instructions of the PULP-convention integer nodes (mt.PulpITAMax,
mt.PulpISoftmax, mt.PulpIGelu, mt.PulpILayerNorm) per output element, from
the hand-built blocks of tests/test_pulp_integer_nodes.py compiled for
rv32imc and Cortex-M4 (QEMU instruction counts, not cycles). Quoted in
docs/quantization.md.

    python bench/pulp_integer_nodes.py
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import microtrain  # noqa: E402
from test_pulp_integer_nodes import ISOFTMAX, attention_model, block_model  # noqa: E402

MODELS = [
    ("attention S=32, ITAMax", lambda: attention_model("ITAMax", 32, dict(n_levels=256)), (32, 8)),
    ("attention S=32, ITAPartialMax G=16",
     lambda: attention_model("ITAPartialMax", 32, dict(n_levels=256, group_width=16)), (32, 8)),
    ("attention S=32, iSoftmax", lambda: attention_model("iSoftmax", 32, ISOFTMAX), (32, 8)),
    ("block 2x6x16 (iLayerNorm, iGELU)", block_model, (2, 6, 16)),
]


def main():
    for label, build, shape in MODELS:
        model = build()
        x = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
        for target in ("rv32imc", "cortex-m4"):
            cm = microtrain.compile(model, target)
            prof = cm.profile({"x": x})
            outs = {n.name: int(np.prod(cm.graph.types[n.outputs[0]].shape)) for n in cm.graph.nodes}
            rows = [f"{r.op} {r.instructions / outs[r.name]:.1f}" for r in prof.layers if r.op.startswith("mt.Pulp")]
            print(f"{label:<36} {target:<10} total {prof.instructions:>8}  instr/output: {', '.join(rows)}")


if __name__ == "__main__":
    main()
