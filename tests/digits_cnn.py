"""A small CNN trained on scikit-learn's 8x8 digits (real data shipped with
the package), exported to ONNX: the accuracy check of int8 quantization."""
from __future__ import annotations

import numpy as np


def digits_split(test_fraction=0.3, seed=0):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]          # (N, 1, 8, 8) in [0, 1]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(len(y) * test_fraction)
    te, tr = order[:n_test], order[n_test:]
    return x[tr], y[tr], x[te], y[te]


def train_digits_cnn(x, y, epochs=30, seed=0):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.ReLU(),            # 4x4
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU6(),         # depthwise
        nn.MaxPool2d(2),                                                 # 2x2
        nn.Conv2d(16, 32, 1), nn.ReLU(),                                 # pointwise
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))
    from microtrain.models import fit_classifier
    return fit_classifier(model, x, y, epochs=epochs, lr=0.01, batch=64, seed=seed)


def export(model, batch):
    import torch
    import microtrain
    return microtrain.from_torch(model, torch.zeros(batch, 1, 8, 8))
