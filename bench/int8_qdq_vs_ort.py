"""Models quantized by onnxruntime.quantization.quantize_static (QDQ and
operator form, per tensor / per channel, uint8 activations, int8 weights with
reduce_range) compiled by microtrain: output difference to onnxruntime's own
execution (graph optimizations off) in output LSBs, over 40 random inputs.
Quoted in docs/quantization.md.

    python bench/int8_qdq_vs_ort.py
"""
import pathlib
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
import test_qdq_import as qdq  # noqa: E402

MODELS = [
    ("conv", lambda: nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU()), (1, 2, 6, 6)),
    ("cnn", lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 3)),
     (1, 1, 6, 6)),
    ("add", qdq._AddNet, (1, 2, 5, 5)),
]


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="mt-qdq-"))
    for label, make, shape in MODELS:
        for fmt in ("QDQ", "QOperator"):
            for per_channel in (False, True):
                torch.manual_seed(0)
                q = qdq._ort_quantize(tmp, make(), shape, fmt, per_channel, label)
                d = qdq._lsb_diffs(q, shape, runs=40)
                print(f"{label:<5} {fmt:<10} {'per channel' if per_channel else 'per tensor':<12} "
                      f"max {d.max():.0f} LSB, {100 * np.mean(d > 0):.2f}% of {d.size} elements differ")


if __name__ == "__main__":
    main()
