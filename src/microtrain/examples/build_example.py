"""Builds the bundled example model, `example_cnn.onnx`, with PyTorch.

    python -m microtrain.examples.build_example [OUT.onnx]

Needs `pip install torch==2.13.0`. The weights come from a fixed seed, so a
rebuild with the same torch version gives the same numbers."""
from __future__ import annotations

import sys
from pathlib import Path

from . import EXAMPLE_INPUT_SHAPE, example_model_path

SEED = 20261123


def small_cnn(num_classes: int = 10, channels: tuple[int, int] = (8, 16), in_hw: int = 28):
    """conv3x3-bn-relu-maxpool2 twice, flatten, linear — for 1-channel images.
    (PyTorch folds each BN into its conv at export.)"""
    from torch import nn

    c1, c2 = channels
    feat = c2 * (in_hw // 4) ** 2
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(feat, num_classes))


def randomize_batchnorm(module, generator) -> None:
    """Give BatchNorm layers non-trivial running statistics and affine
    parameters (fresh ones are the identity, which would hide folding bugs)."""
    import torch
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(0.2 * torch.randn(n, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(n, generator=generator))
                m.weight.copy_(1.0 + 0.2 * torch.randn(n, generator=generator))
                m.bias.copy_(0.1 * torch.randn(n, generator=generator))


def build_example_cnn(path=None):
    """Export the example CNN; returns the ModelProto (and writes `path`)."""
    import torch
    from ..torch_export import from_torch

    torch.manual_seed(SEED)
    model = small_cnn()
    randomize_batchnorm(model, torch.Generator().manual_seed(SEED))
    example = torch.zeros(EXAMPLE_INPUT_SHAPE)
    return from_torch(model, example, path)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else example_model_path()
    build_example_cnn(out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
