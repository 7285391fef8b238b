"""Models quantized by onnxruntime.quantization.quantize_static (QDQ and
operator form, per tensor / per channel, uint8 activations, int8 weights with
reduce_range) compiled by microtrain: output difference to onnxruntime's own
execution (graph optimizations off) in output LSBs. Quoted in
docs/quantization.md.

    python bench/int8_qdq_vs_ort.py
"""
import sys; sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "tests"))
import numpy as np, torch, pathlib
from torch import nn
import test_qdq_import as T
import tempfile
p = pathlib.Path(tempfile.mkdtemp(prefix="mt-qdq-"))
for label, mk, shape in (("conv", lambda: nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU()), (1,2,6,6)),
                         ("cnn", lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(4, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6, 3)), (1,1,6,6)),
                         ("add", lambda: T._AddNet(), (1,2,5,5))):
  for fmt in ("QDQ","QOperator"):
    for pc in (False, True):
        torch.manual_seed(0)
        q=T._ort_quantize(p, mk(), shape, fmt, pc, label)
        d=T._lsb_diffs(q, shape, runs=40)
        print(label, fmt, "per_channel" if pc else "per_tensor", "max", d.max(), "frac>0 %.4f" % np.mean(d>0), "n", d.size)
