"""EpiDeNet-like EOG classifier: five conv blocks, then a linear layer.

Input (N, 1, chans, samples): EOG, channels along H, time along W; defaults
2 channels x 1000 samples (2 s at 500 Hz), 11 classes. All convolutions are
unpadded ('valid'), as in the public EpiDeNet EOG code.

    block1  Conv(1 -> 4,   1 x 4)     norm, ReLU, MaxPool 1 x p1
    block2  Conv(4 -> 16,  1 x 16)    norm, ReLU, MaxPool 1 x p2
    block3  Conv(16 -> 16, 1 x 8)     norm, ReLU, MaxPool 1 x p3
    block4  Conv(16 -> 16, chans x 1) norm, ReLU            (spatial)
    block5  Conv(16 -> 16, 1 x 1)     norm, ReLU, global average pool over time
    classify Flatten, Dropout, Linear(16 -> classes)

`pools` = (p1, p2, p3), default (8, 4, 4) as published for 500 Hz EOG;
shorter or slower inputs take smaller pools (the EEG demo's 448 samples at
128 Hz use (4, 4, 2)). `norm` as in eegnet: "batch", "group" (GroupNorm(groups, C)), "layer"
(GroupNorm(1, C): what the public BioTrain EOG code uses) or "none"."""
from __future__ import annotations

import os
from typing import Union

from . import check_choice, check_positive, export_module, seed_everything
from ..errors import MicrotrainError
from ..torch_export import _import_torch
from .norm_swap import DEFAULT_GROUPS, NORM_KINDS, make_norm

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(chans=2, samples=1000, classes=11)
# (out channels, temporal kernel) of the three temporal blocks, and their default max-pools.
TEMPORAL_BLOCKS = ((4, 4), (16, 16), (16, 8))
POOLS = (8, 4, 4)
WIDTH = 16


def time_after_temporal_blocks(samples: int, pools=POOLS) -> int:
    """Time steps left after blocks 1-3 (valid conv, then floor pooling)."""
    t = samples
    for (_, kernel), pool in zip(TEMPORAL_BLOCKS, pools):
        t = (t - kernel + 1) // pool if t >= kernel else 0
    return t


def min_samples(pools=POOLS) -> int:
    """The shortest input that leaves one time step for block 5."""
    t = 1
    while time_after_temporal_blocks(t, pools) < 1:
        t += 1
    return t


class EpiDeNet(nn.Module):
    def __init__(self, chans: int = 2, samples: int = 1000, classes: int = 11, *, norm: str = "batch",
                 groups: int = DEFAULT_GROUPS, dropout: float = 0.0, pools=POOLS):
        super().__init__()
        check_positive(chans=chans, samples=samples, classes=classes)
        check_choice("norm", norm, NORM_KINDS)
        pools = tuple(pools)
        if len(pools) != len(TEMPORAL_BLOCKS) or any(not isinstance(p, int) or p < 1 for p in pools):
            raise MicrotrainError(f"EpiDeNet: pools={pools} must be {len(TEMPORAL_BLOCKS)} positive integers "
                                  f"(the max-pools of the temporal blocks, default {POOLS})")
        if time_after_temporal_blocks(samples, pools) < 1:
            raise MicrotrainError(f"EpiDeNet: samples={samples} is too short for its three temporal blocks "
                                  f"with pools {pools} (needs at least {min_samples(pools)}; smaller pools "
                                  f"accept shorter inputs)")
        bias = norm == "none"

        def block(cin, cout, kernel, pool=None):
            layers = [nn.Conv2d(cin, cout, kernel, bias=bias), make_norm(norm, cout, groups=groups), nn.ReLU()]
            return nn.Sequential(*layers, *([nn.MaxPool2d((1, pool))] if pool else []))

        blocks, cin = [], 1
        for (cout, kernel), pool in zip(TEMPORAL_BLOCKS, pools):
            blocks.append(block(cin, cout, (1, kernel), pool if pool > 1 else None))
            cin = cout
        blocks.append(block(cin, WIDTH, (chans, 1)))                        # spatial
        blocks.append(nn.Sequential(*block(WIDTH, WIDTH, (1, 1)), nn.AdaptiveAvgPool2d(1)))
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classify = nn.Linear(WIDTH, classes)

    def forward(self, x):
        return self.classify(self.dropout(torch.flatten(self.features(x), 1)))


def build(seed: int = 0, **kwargs) -> nn.Module:
    """An EpiDeNet with seeded PyTorch default init; kwargs as `EpiDeNet`."""
    seed_everything(seed)
    return EpiDeNet(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int, int]:
    """(batch, 1, chans, samples)."""
    args = {**DEFAULTS, **kwargs}
    return (batch, 1, args["chans"], args["samples"])


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, **kwargs):
    """ONNX ModelProto of `build(seed, **kwargs)` at `input_shape(batch, **kwargs)`."""
    return export_module(build(seed, **kwargs), input_shape(batch, **kwargs), path)
