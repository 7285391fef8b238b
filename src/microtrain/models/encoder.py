"""An 8-bit-deployable BERT-style encoder in the MobileBERT spirit, sized for
an MCU SoC with an attention accelerator (docs/ita.md):

    tokens = the 8x8 image's 64 pixels cut into `tokens` runs of 64/tokens
    x      = Linear(64/tokens -> dim)(tokens) + learned positional embedding
    layers x post-norm BERT block:
        x = LN(x + MHSA(x))            (models/mhsa.py: q/k/v Linears, scale Mul, out Linear;
                                        `heads` heads of dim/heads)
        x = LN(x + Linear(GELU(Linear(x))))   (FFN of `ffn`, narrow as in MobileBERT)
    logits = Linear(tokens*dim -> 10)(flatten(x))

Task: scikit-learn's digits (real data shipped with scikit-learn), 10 classes.
Full size (the bench): tokens 64, dim 128, 4 layers, 4 heads, ffn 256. The
tests use SMALL. Same three functions as the other model modules, plus
`train` (Adam, seeded)."""
from __future__ import annotations

import os
from typing import Union

from . import check_positive, export_module, seed_everything
from ..errors import MicrotrainError
from ..torch_export import _import_torch
from .mhsa import MHSA

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(tokens=64, dim=128, layers=4, heads=4, ffn=256)
SMALL = dict(tokens=16, dim=32, layers=2, heads=2, ffn=64)


class EncoderLayer(nn.Module):
    def __init__(self, tokens: int, dim: int, heads: int, ffn: int):
        super().__init__()
        self.attn = MHSA(tokens=tokens, dim=dim, heads=heads, head_dim=dim // heads)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.up, self.down = nn.Linear(dim, ffn), nn.Linear(ffn, dim)

    def forward(self, x):
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.down(nn.functional.gelu(self.up(x))))


class DigitsEncoder(nn.Module):
    def __init__(self, tokens: int = 64, dim: int = 128, layers: int = 4, heads: int = 4, ffn: int = 256):
        super().__init__()
        check_positive(tokens=tokens, dim=dim, layers=layers, heads=heads, ffn=ffn)
        if 64 % tokens or dim % heads:
            raise MicrotrainError(f"encoder: tokens={tokens} must divide 64 and heads={heads} divide dim={dim}")
        self.tokens = tokens
        self.embed = nn.Linear(64 // tokens, dim)
        self.pos = nn.Parameter(0.1 * torch.randn(1, tokens, dim))
        self.layers = nn.ModuleList(EncoderLayer(tokens, dim, heads, ffn) for _ in range(layers))
        self.fc = nn.Linear(tokens * dim, 10)

    def forward(self, img):
        x = self.embed(img.reshape(img.shape[0], self.tokens, 64 // self.tokens)) + self.pos
        for layer in self.layers:
            x = layer(x)
        return self.fc(x.flatten(1))


def build(seed: int = 0, **kwargs) -> nn.Module:
    seed_everything(seed)
    return DigitsEncoder(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int, int]:
    return (batch, 1, 8, 8)


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, model=None, **kwargs):
    return export_module(model if model is not None else build(seed, **kwargs), input_shape(batch), path)


def train(x, y, epochs: int = 10, seed: int = 0, lr: float = 0.002, **kwargs) -> nn.Module:
    """Adam on images x (N, 1, 8, 8) float32 in [0, 1], labels y (N,)."""
    from . import fit_classifier
    return fit_classifier(build(seed, **kwargs), x, y, epochs=epochs, lr=lr, batch=32, seed=seed)
