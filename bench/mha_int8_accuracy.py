"""Int8 accuracy of torch.nn.MultiheadAttention as microtrain quantizes it
(docs/ita.md): S=16, E=32, 2 heads, batch_first, random weights (seed 0),
calibrated on 8 N(0,1) samples, measured on 4 others against torch, for the
ITA and the I-BERT softmax. Prints mean and max |error| and the output peak.

    python bench/mha_int8_accuracy.py"""
from __future__ import annotations

import warnings

import numpy as np
import torch

import microtrain
from microtrain.quantization import dequantize_outputs, quantize_inputs

warnings.filterwarnings("ignore", category=UserWarning)


class SelfAttention(torch.nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def main() -> None:
    torch.manual_seed(0)
    net = SelfAttention(32, 2).eval()
    fmodel = microtrain.from_torch(net, torch.zeros(1, 16, 32))
    calib = np.random.default_rng(0).standard_normal((8, 16, 32)).astype(np.float32)
    print(f"{'softmax':8} {'sample':>6} {'mean|err|':>10} {'max|err|':>10} {'peak':>8}")
    for softmax in ("ita", "ibert"):
        qmodel = microtrain.quantize(fmodel, calib, softmax=softmax, progress=False)
        for seed in range(4):
            x = np.random.default_rng(seed + 10).standard_normal((1, 16, 32)).astype(np.float32)
            want = net(torch.from_numpy(x)).detach().numpy()
            q = microtrain.reference(qmodel, quantize_inputs(qmodel, {"input": x}))
            err = np.abs(dequantize_outputs(qmodel, q)["output"] - want)
            print(f"{softmax:8} {seed:6d} {err.mean():10.4f} {err.max():10.4f} {np.abs(want).max():8.4f}")


if __name__ == "__main__":
    main()
