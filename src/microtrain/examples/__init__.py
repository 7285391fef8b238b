"""Example models shipped with microtrain.

`example_model_path()` is a small CNN classifier (input `input`: float32
1x1x28x28, output `output`: float32 1x10 logits; conv-bn-relu-maxpool twice,
then a linear layer; seeded random weights), ready for `microtrain compile`.
`build_example.py` regenerates it with PyTorch."""
from __future__ import annotations

from pathlib import Path

EXAMPLE_CNN = "example_cnn.onnx"
EXAMPLE_INPUT_SHAPE = (1, 1, 28, 28)


def example_model_path() -> Path:
    """Path of the bundled example CNN (.onnx)."""
    return Path(__file__).resolve().parent / EXAMPLE_CNN
