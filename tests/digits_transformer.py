"""A tiny Transformer trained on scikit-learn's 8x8 digits (real data shipped
with the package): each image row is a token (8 tokens x 8 pixels). The
accuracy check of the integer-only Transformer path.

    embed Linear(8 -> 16) + positional embedding
    pre-norm block: x + Attn(LN(x)) (2 heads of 8, CCT's Attention: q/k/v/proj Linears, scale Mul)
                    x + Linear(GELU(Linear(LN(x))))   (FFN 32)
    LN, flatten (8 * 16), Linear(128 -> 10)"""
from __future__ import annotations



def build_digits_transformer(seed=0, attention="cct"):
    """attention="cct": CCT's Attention (2 heads of 8); "mhsa": models/mhsa.py
    with 2 heads of 16 (P = E, where FWSA pays off: E(E+S) = 384 < P(2E+S) = 640)."""
    import torch
    from torch import nn
    from microtrain.models.cct import Attention
    from microtrain.models.mhsa import MHSA

    class DigitsTransformer(nn.Module):
        def __init__(self, dim=16, heads=2, ffn=32):
            super().__init__()
            self.embed = nn.Linear(8, dim)
            self.pos = nn.Parameter(0.1 * torch.randn(1, 8, dim))
            self.norm1, self.norm2, self.norm = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = Attention(dim, heads, qkv="separate") if attention == "cct" else \
                MHSA(tokens=8, dim=dim, heads=heads, head_dim=dim)
            self.linear1, self.linear2 = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
            self.fc = nn.Linear(8 * dim, 10)

        def forward(self, img):
            x = self.embed(img.reshape(img.shape[0], 8, 8)) + self.pos
            x = x + self.attn(self.norm1(x))
            x = x + self.linear2(nn.functional.gelu(self.linear1(self.norm2(x))))
            return self.fc(self.norm(x).flatten(1))

    torch.manual_seed(seed)
    return DigitsTransformer()


def train_digits_transformer(x, y, epochs=40, seed=0, attention="cct"):
    from microtrain.models import fit_classifier
    return fit_classifier(build_digits_transformer(seed, attention), x, y, epochs=epochs, lr=0.005,
                          batch=64, seed=seed)
