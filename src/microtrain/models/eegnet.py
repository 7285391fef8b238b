"""EEGNet-family motor-imagery classifier (MI-BMInet-like).

Input (N, 1, chans, samples): raw EEG, electrodes along H, time along W.

    temporal   ZeroPad + Conv(1 -> F1, 1 x K)                 norm
    spatial    depthwise Conv(F1 -> F1*D, chans x 1, groups F1) norm, ELU, AvgPool 1 x P1, Dropout
    separable  ZeroPad + depthwise Conv(1 x K2) + pointwise Conv(-> F2) norm, ELU, AvgPool 1 x P2, Dropout
    classify   Flatten, Linear(F2 * (samples // P1 // P2) -> classes)

Defaults follow the public MI-BMInet code: F1=8, D=2, F2=16, K=64, K2=16,
pools 8 and 8, ELU. `spatial_first=True` puts the spatial convolution first,
as MI-BMInet itself does (a full Conv(1 -> F1, chans x 1), then the temporal
convolution depthwise with multiplier D); the default is EEGNet's order
(temporal, then depthwise spatial). BioTrain's EEG setup uses 2000 samples;
pass samples=2000 for it.

`norm` picks the normalization (see norm_swap.make_norm): "batch" (the
conventional model), "group" (GroupNorm(groups, C)), "layer" (GroupNorm(1, C),
LayerNorm-like per sample) or "none" (then the convolutions get biases)."""
from __future__ import annotations

import os
from typing import Union

from . import check_choice, check_positive, export_module, seed_everything
from ..errors import MicrotrainError
from ..torch_export import _import_torch
from .norm_swap import DEFAULT_GROUPS, NORM_KINDS, make_norm

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(chans=8, samples=1000, classes=4)


def same_padding(kernel: int) -> nn.ZeroPad2d:
    """Zero padding along time that keeps the length ('same'; extra zero on the right for even kernels)."""
    left = (kernel - 1) // 2
    return nn.ZeroPad2d((left, kernel - 1 - left, 0, 0))


class EEGNet(nn.Module):
    def __init__(self, chans: int = 8, samples: int = 1000, classes: int = 4, *, f1: int = 8, d: int = 2,
                 f2: int = 16, kernel: int = 64, sep_kernel: int = 16, pool1: int = 8, pool2: int = 8,
                 dropout: float = 0.5, norm: str = "batch", groups: int = DEFAULT_GROUPS,
                 spatial_first: bool = False):
        super().__init__()
        check_positive(chans=chans, samples=samples, classes=classes, f1=f1, d=d, f2=f2, kernel=kernel,
                       sep_kernel=sep_kernel, pool1=pool1, pool2=pool2)
        check_choice("norm", norm, NORM_KINDS)
        time_out = samples // pool1 // pool2
        if time_out < 1:
            raise MicrotrainError(f"EEGNet: samples={samples} is shorter than the pooling ({pool1} x {pool2}); "
                                  "use more samples or smaller pools")
        bias = norm == "none"   # a norm layer carries the shift otherwise
        f1d = f1 * d

        def norm_of(channels):
            return make_norm(norm, channels, groups=groups)

        if spatial_first:
            self.spatial = nn.Sequential(nn.Conv2d(1, f1, (chans, 1), bias=bias), norm_of(f1))
            self.temporal = nn.Sequential(same_padding(kernel),
                                          nn.Conv2d(f1, f1d, (1, kernel), groups=f1, bias=bias), norm_of(f1d),
                                          nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(dropout))
        else:
            self.temporal = nn.Sequential(same_padding(kernel), nn.Conv2d(1, f1, (1, kernel), bias=bias),
                                          norm_of(f1))
            self.spatial = nn.Sequential(nn.Conv2d(f1, f1d, (chans, 1), groups=f1, bias=bias), norm_of(f1d),
                                         nn.ELU(), nn.AvgPool2d((1, pool1)), nn.Dropout(dropout))
        self.spatial_first = spatial_first
        self.separable = nn.Sequential(
            same_padding(sep_kernel), nn.Conv2d(f1d, f1d, (1, sep_kernel), groups=f1d, bias=False),
            nn.Conv2d(f1d, f2, 1, bias=bias), norm_of(f2), nn.ELU(), nn.AvgPool2d((1, pool2)),
            nn.Dropout(dropout))
        self.classify = nn.Linear(f2 * time_out, classes)

    def forward(self, x):
        if self.spatial_first:
            x = self.temporal(self.spatial(x))
        else:
            x = self.spatial(self.temporal(x))
        return self.classify(torch.flatten(self.separable(x), 1))


def build(seed: int = 0, **kwargs) -> nn.Module:
    """An EEGNet with seeded PyTorch default init; kwargs as `EEGNet` (chans, samples, classes, norm, ...)."""
    seed_everything(seed)
    return EEGNet(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int, int]:
    """(batch, 1, chans, samples)."""
    args = {**DEFAULTS, **kwargs}
    return (batch, 1, args["chans"], args["samples"])


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, **kwargs):
    """ONNX ModelProto of `build(seed, **kwargs)` at `input_shape(batch, **kwargs)`."""
    return export_module(build(seed, **kwargs), input_shape(batch, **kwargs), path)
