"""CCT-2/3x2: the Compact Convolutional Transformer for 32 x 32 images.

    tokenizer  2 x [Conv 3x3 s1 p1 no bias -> ReLU -> MaxPool 3/2/1], 3 -> 64 -> 128 channels;
               (N, 128, 8, 8) -> 64 tokens x 128
    + learnable positional embedding (1, 64, 128)
    2 x encoder layer (2 heads of 64, FFN 128 = MLP ratio 1, GELU):
               x = x + proj(Attn(pre_norm(x)));  x = norm1(x);  x = x + linear2(GELU(linear1(x)))
    norm       final LayerNorm
    seq pool   softmax over tokens of attention_pool(x) (Linear 128 -> 1), weighted sum of tokens
    fc         Linear(128 -> classes)

The block order and the position of the final LayerNorm (before sequence
pooling) follow the published CCT code (SHI-Labs/Compact-Transformers,
src/utils/transformers.py). 283,723 parameters for 10 classes; qkv has no
bias, proj does. Dropout and stochastic depth of the training recipe are
left out (they are the identity at inference).

Attention is written out (Linear, MatMul, Softmax) so each projection is its
own MatMul in ONNX, named for LoRA targeting: with `qkv="fused"` (the
published layout) one `qkv` Linear(128 -> 384), with `qkv="separate"` three
Linears `q`, `k`, `v`; the output projection is `proj` either way. Node names
look like `/blocks.0/self_attn/qkv/MatMul`."""
from __future__ import annotations

import os
from typing import Union

from . import check_choice, check_positive, export_module, seed_everything
from ..errors import MicrotrainError
from ..torch_export import _import_torch

torch = _import_torch()
nn = torch.nn

DEFAULTS = dict(classes=10, img_size=32, in_channels=3)
QKV_LAYOUTS = ("fused", "separate")


class Attention(nn.Module):
    """Multi-head self-attention with explicit projections (no bias on q/k/v, bias on proj)."""

    def __init__(self, dim: int, heads: int, qkv: str = "fused"):
        super().__init__()
        check_choice("qkv", qkv, QKV_LAYOUTS)
        if dim % heads:
            raise MicrotrainError(f"Attention: dim {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim ** -0.5
        self.fused = qkv == "fused"
        if self.fused:
            self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        else:
            self.q, self.k, self.v = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        # Shapes as Python ints from x.shape: the exporter then emits constant
        # Reshape targets (Tensor.chunk/unflatten would emit run-time shape arithmetic).
        b, n, c = x.shape
        if self.fused:
            # qkv's output columns are [q | k | v], each [head][head_dim] (the published layout).
            qkv = self.qkv(x)
            q, k, v = (qkv[:, :, i * c:(i + 1) * c] for i in range(3))
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        q, k, v = (t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        weights = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)   # (b, heads, n, n)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class EncoderLayer(nn.Module):
    """CCT's block: x + Attn(LN(x)), then LN, then x + FFN(x) (post-norm FFN, no norm inside it)."""

    def __init__(self, dim: int, heads: int, ffn: int, qkv: str = "fused"):
        super().__init__()
        self.pre_norm = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads, qkv)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn)
        self.linear2 = nn.Linear(ffn, dim)

    def forward(self, x):
        x = x + self.self_attn(self.pre_norm(x))
        x = self.norm1(x)
        return x + self.linear2(nn.functional.gelu(self.linear1(x)))


class Tokenizer(nn.Module):
    """Convolutions to tokens: (N, C, H, W) -> (N, H' * W', embed)."""

    def __init__(self, in_channels: int, channels: tuple[int, ...], kernel: int = 3):
        super().__init__()
        layers, cin = [], in_channels
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, kernel, stride=1, padding=kernel // 2, bias=False), nn.ReLU(),
                       nn.MaxPool2d(3, stride=2, padding=1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.n_pools = len(channels)

    def tokens(self, img_size: int) -> int:
        side = img_size
        for _ in range(self.n_pools):
            side = (side - 1) // 2 + 1   # MaxPool 3/2/1
        return side * side

    def forward(self, x):
        x = self.layers(x)
        b, c, h, w = x.shape
        return x.reshape(b, c, h * w).transpose(1, 2)


class CCT(nn.Module):
    def __init__(self, classes: int = 10, img_size: int = 32, in_channels: int = 3, *, embed_dim: int = 128,
                 tokenizer_channels: tuple[int, ...] = (64, 128), layers: int = 2, heads: int = 2,
                 mlp_ratio: float = 1.0, qkv: str = "fused"):
        super().__init__()
        check_positive(classes=classes, img_size=img_size, in_channels=in_channels, embed_dim=embed_dim,
                       layers=layers, heads=heads)
        if tuple(tokenizer_channels)[-1] != embed_dim:
            raise MicrotrainError(f"CCT: the tokenizer's last width {tokenizer_channels[-1]} must equal "
                                  f"embed_dim {embed_dim}")
        self.tokenizer = Tokenizer(in_channels, tuple(tokenizer_channels))
        self.positional_emb = nn.Parameter(torch.zeros(1, self.tokenizer.tokens(img_size), embed_dim))
        ffn = int(embed_dim * mlp_ratio)
        self.blocks = nn.ModuleList(EncoderLayer(embed_dim, heads, ffn, qkv) for _ in range(layers))
        self.norm = nn.LayerNorm(embed_dim)
        self.attention_pool = nn.Linear(embed_dim, 1)
        self.fc = nn.Linear(embed_dim, classes)
        self._init_weights()

    def _init_weights(self):
        """CCT's init: truncated-normal Linear weights (std 0.02), zero biases,
        Kaiming-normal convolutions, positional embedding std 0.2."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
        nn.init.trunc_normal_(self.positional_emb, std=0.2)

    def forward(self, x):
        x = self.tokenizer(x) + self.positional_emb
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        weights = torch.softmax(self.attention_pool(x), dim=1)        # (N, tokens, 1)
        pooled = (weights.transpose(-1, -2) @ x).squeeze(-2)           # (N, embed)
        return self.fc(pooled)


def build(seed: int = 0, **kwargs) -> nn.Module:
    """CCT-2/3x2 with CCT's seeded init; kwargs as `CCT` (classes, img_size, qkv, ...)."""
    seed_everything(seed)
    return CCT(**{**DEFAULTS, **kwargs})


def input_shape(batch: int = 1, **kwargs) -> tuple[int, int, int, int]:
    """(batch, in_channels, img_size, img_size)."""
    args = {**DEFAULTS, **kwargs}
    return (batch, args["in_channels"], args["img_size"], args["img_size"])


def export(path: Union[str, os.PathLike, None] = None, batch: int = 1, seed: int = 0, **kwargs):
    """ONNX ModelProto of `build(seed, **kwargs)` at `input_shape(batch, **kwargs)`."""
    return export_module(build(seed, **kwargs), input_shape(batch, **kwargs), path)
