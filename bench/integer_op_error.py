"""Error of the integer-only Transformer ops (ITA / I-BERT softmax, I-BERT GELU
and LayerNorm) against float on the activations of the float reference
Transformers (models/tiny_transformer.py, models/cct.py), captured from the
golden model: microtrain.integer_op_error. Two settings: the reference
Transformers with seeded weights and seeded Gaussian inputs (no trained
checkpoints ship with the repo), and the digits Transformer of the int8
accuracy test (tests/digits_transformer.py) trained on scikit-learn's 8x8
digits and fed 64 real held-out digit images. Numbers are quoted in
docs/quantization_transformer.md.

    python bench/integer_op_error.py
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from microtrain.integer_op_error import format_errors, integer_op_errors
from microtrain.models import cct, tiny_transformer

warnings.filterwarnings("ignore")


def main() -> None:
    rng = np.random.default_rng(0)
    for label, mod in (("tiny_transformer (16 tokens x 32, 2 heads)", tiny_transformer),
                       ("CCT-2/3x2 (32x32x3)", cct)):
        x = rng.standard_normal(mod.input_shape()).astype(np.float32)
        print(label)
        print(format_errors(integer_op_errors(mod.export(), {"input": x})))
        print()
    trained_digits_transformer()


def trained_digits_transformer(n_images: int = 64) -> None:
    """Real activations: the trained digits model on held-out images."""
    import torch
    import microtrain
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from digits_cnn import digits_split
    from digits_transformer import train_digits_transformer
    xtr, ytr, xte, _ = digits_split()
    net = train_digits_transformer(xtr, ytr)
    x = xte[:n_images]
    model = microtrain.from_torch(net, torch.from_numpy(x))
    print(f"digits Transformer (trained; {n_images} real held-out digit images)")
    print(format_errors(integer_op_errors(model, {"input": x})))


if __name__ == "__main__":
    main()
