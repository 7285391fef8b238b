"""One multi-head self-attention block with a free head dimension, the shape
of the Tiny-Transformers-on-MCUs EEG transformer (S=81 tokens, E=32, P=32 per
head, H=8 heads: inner width H*P = 256 != E):

    q, k, v = Linear(E -> H*P)(x)   (with bias)
    out     = Linear(H*P -> E)(concat_h softmax(q_h k_h^T / sqrt P) v_h)

Input (N, S, E). Used by the FWSA / depth-first attention benches and tests;
same three functions as the other model modules."""
from __future__ import annotations

import os
from typing import Union

from . import check_positive, export_module, seed_everything
from ..torch_export import _import_torch

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(tokens=81, dim=32, heads=8, head_dim=32)


class MHSA(nn.Module):
    def __init__(self, tokens: int = 81, dim: int = 32, heads: int = 8, head_dim: int = 32):
        super().__init__()
        check_positive(tokens=tokens, dim=dim, heads=heads, head_dim=head_dim)
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q, self.k, self.v = (nn.Linear(dim, inner) for _ in range(3))
        self.out = nn.Linear(inner, dim)

    def forward(self, x):
        b, s, _ = x.shape
        q, k, v = (t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)
                   for t in (self.q(x), self.k(x), self.v(x)))
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.head_dim ** -0.5, dim=-1)   # a Mul: quantizable
        return self.out((weights @ v).transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


def build(seed: int = 0, **kwargs) -> nn.Module:
    seed_everything(seed)
    return MHSA(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int]:
    args = {**DEFAULTS, **kwargs}
    return (batch, args["tokens"], args["dim"])


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, **kwargs):
    return export_module(build(seed, **kwargs), input_shape(batch, **kwargs), path)
