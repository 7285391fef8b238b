"""Error of the integer-only Transformer ops (ITA / I-BERT softmax, I-BERT GELU
and LayerNorm) against float on the activations of the float reference
Transformers (models/tiny_transformer.py, models/cct.py), captured from the
golden model: microtrain.integer_op_error. Seeded weights and seeded
Gaussian inputs (no trained checkpoints ship with the repo). Numbers are
quoted in docs/quantization_transformer.md.

    python bench/integer_op_error.py
"""
from __future__ import annotations

import warnings

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


if __name__ == "__main__":
    main()
