"""Layer shapes of ResNet-18 and MobileNetV2 at 224x224 (ImageNet), as data.
Padding keeps 'same' spatial sizes, so input extents are clipped to the real image."""
from __future__ import annotations

from .layer import Layer, conv_layer, matmul_layer


def _conv(name: str, cin: int, cout: int, hin: int, f: int, s: int, groups: int = 1) -> Layer:
    pad = f // 2
    hout = (hin + 2 * pad - f) // s + 1
    if groups > 1:  # depthwise: one filter per channel
        return conv_layer(name, k=1, c=1, g=groups, oy=hout, ox=hout, fy=f, fx=f, stride=s, iy=hin, ix=hin)
    return conv_layer(name, k=cout, c=cin, oy=hout, ox=hout, fy=f, fx=f, stride=s, iy=hin, ix=hin)


def resnet18() -> list[Layer]:
    layers = [_conv("conv1", 3, 64, 224, 7, 2)]
    h, cin = 56, 64  # after the 3x3/2 max-pool
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            s = 2 if (block == 0 and stage > 1) else 1
            p = f"layer{stage}.{block}"
            layers.append(_conv(f"{p}.conv1", cin, cout, h, 3, s))
            hout = h // s
            layers.append(_conv(f"{p}.conv2", cout, cout, hout, 3, 1))
            if s == 2:
                layers.append(_conv(f"{p}.downsample", cin, cout, h, 1, 2))
            h, cin = hout, cout
    layers.append(matmul_layer("fc", m=1, n=1000, k=512))
    return layers


# (expansion t, output channels c, repeats n, first stride s), from the MobileNetV2 paper
_MBV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenet_v2() -> list[Layer]:
    layers = [_conv("conv_stem", 3, 32, 224, 3, 2)]
    h, cin, idx = 112, 32, 0
    for t, c, n, s in _MBV2:
        for r in range(n):
            stride = s if r == 0 else 1
            hidden = cin * t
            p = f"block{idx}"
            if t != 1:
                layers.append(_conv(f"{p}.expand", cin, hidden, h, 1, 1))
            layers.append(_conv(f"{p}.dw", hidden, hidden, h, 3, stride, groups=hidden))
            h = (h + 2 - 3) // stride + 1
            layers.append(_conv(f"{p}.project", hidden, c, h, 1, 1))
            cin, idx = c, idx + 1
    layers.append(_conv("conv_head", cin, 1280, h, 1, 1))
    layers.append(matmul_layer("classifier", m=1, n=1000, k=1280))
    return layers


MODELS = {"resnet18": resnet18, "mobilenet_v2": mobilenet_v2}
