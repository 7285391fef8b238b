"""A tiny Transformer classifier for tests: 16 tokens x 32 dims, 2 heads, 1 layer.

Input (N, tokens, dim): already-embedded tokens (no embedding layer).

    + learnable positional embedding (1, tokens, dim)
    layers x pre-norm block:  x = x + proj(Attn(norm1(x)));  x = x + linear2(GELU(linear1(norm2(x))))
    mean over tokens, LayerNorm, Linear(dim -> classes)

It uses the standard pre-norm block (CCT uses another order) so the two
reference Transformers cover both; attention is CCT's `Attention` with
separate `q`, `k`, `v` projections by default, and `proj`."""
from __future__ import annotations

import os
from typing import Union

from . import check_positive, export_module, seed_everything
from ..torch_export import _import_torch
from .cct import Attention

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(tokens=16, dim=32, classes=4)


class PreNormBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int, qkv: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, qkv)
        self.norm2 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)

    def forward(self, x):
        x = x + self.self_attn(self.norm1(x))
        return x + self.linear2(nn.functional.gelu(self.linear1(self.norm2(x))))


class TinyTransformer(nn.Module):
    def __init__(self, tokens: int = 16, dim: int = 32, classes: int = 4, *, heads: int = 2, layers: int = 1,
                 mlp_ratio: float = 2.0, qkv: str = "separate"):
        super().__init__()
        check_positive(tokens=tokens, dim=dim, classes=classes, heads=heads, layers=layers)
        self.positional_emb = nn.Parameter(0.2 * torch.randn(1, tokens, dim))
        ffn = int(dim * mlp_ratio)
        self.blocks = nn.ModuleList(PreNormBlock(dim, heads, ffn, qkv) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, classes)

    def forward(self, x):
        x = x + self.positional_emb
        for block in self.blocks:
            x = block(x)
        return self.fc(self.norm(x.mean(dim=1)))


def build(seed: int = 0, **kwargs) -> nn.Module:
    """A TinyTransformer with seeded PyTorch default init; kwargs as `TinyTransformer`."""
    seed_everything(seed)
    return TinyTransformer(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int]:
    """(batch, tokens, dim)."""
    args = {**DEFAULTS, **kwargs}
    return (batch, args["tokens"], args["dim"])


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, **kwargs):
    """ONNX ModelProto of `build(seed, **kwargs)` at `input_shape(batch, **kwargs)`."""
    return export_module(build(seed, **kwargs), input_shape(batch, **kwargs), path)
