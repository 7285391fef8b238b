"""Reference models of microtrain's on-device-training work, as PyTorch
definitions with ONNX export helpers.

* `eegnet`           — EEGNet-family motor-imagery net (MI-BMInet-like), 8 x 1000 EEG.
* `epidenet`         — EpiDeNet-like EOG net, five conv/pool blocks, 2 x 1000 EOG.
* `cct`              — CCT-2/3x2 Compact Convolutional Transformer, 32 x 32 RGB.
* `tiny_transformer` — a one-layer pre-norm Transformer classifier for tests.
* `encoder`          — BERT-style int8 encoder on digits (rv32imc+ita, docs/ita.md).
* `norm_swap`        — replace BatchNorm by per-sample norms (GroupNorm / LayerNorm-like).

Every model module exposes the same three functions:

    build(seed=0, **kwargs)            -> torch.nn.Module (seeded init)
    input_shape(batch=1, **kwargs)     -> tuple of ints
    export(path=None, batch=1, **kwargs) -> onnx.ModelProto (via microtrain.from_torch)

PyTorch is optional: this package imports without it, and each model module
imports torch when it is itself imported (`get_model` gives the clear error
when torch is missing). See docs/models.md for sizes and MACs."""
from __future__ import annotations

import importlib
import os
from typing import Optional, Sequence, Union

from ..errors import MicrotrainError

MODEL_NAMES = ("eegnet", "epidenet", "cct", "tiny_transformer", "encoder")


def get_model(name: str):
    """The model module called `name` (one of MODEL_NAMES)."""
    if name not in MODEL_NAMES:
        raise MicrotrainError(f"unknown reference model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    from ..torch_export import _import_torch
    _import_torch()   # the clear 'PyTorch is not installed' error, before any model code runs
    return importlib.import_module(f"{__name__}.{name}")


def seed_everything(seed: int) -> None:
    """Seed PyTorch's global generator (parameter init uses it)."""
    import torch
    torch.manual_seed(int(seed))


def count_parameters(module) -> int:
    """Number of trainable parameters (learnable tensors' elements)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def fit_classifier(model, x, y, *, epochs: int, lr: float, batch: int, seed: int = 0):
    """Adam + cross-entropy on numpy arrays (x float32, y int64 labels), in
    shuffled mini-batches drawn from a generator seeded with `seed`; returns
    the model in eval mode. The one training loop of the digits models."""
    import torch
    from torch import nn
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(yt), generator=gen)
        for i in range(0, len(yt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def export_module(module, shape: Sequence[int], path: Union[str, os.PathLike, None] = None):
    """Export `module` at the fixed input `shape` with `microtrain.from_torch`
    (eval mode, input `input`, output `output`, `for_training=True`)."""
    import onnx
    import torch
    from ..torch_export import from_torch
    # exported for training experiments: BatchNorm kept, equal parameters not merged
    model = from_torch(module, torch.zeros(tuple(shape)), for_training=True)
    if path is not None:
        onnx.save(model, os.fspath(path))
    return model


def check_choice(what: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise MicrotrainError(f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def check_positive(**values: Optional[int]) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise MicrotrainError(f"{name} must be a positive integer, got {value!r}")
