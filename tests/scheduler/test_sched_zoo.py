"""Model zoo shapes against published totals (ResNet-18 ~1.8 GMAC, MobileNetV2 ~300 MMAC at 224x224)."""
import pytest

from microtrain.scheduler.zoo import mobilenet_v2, resnet18


@pytest.mark.parametrize("make,n_layers,lo,hi", [
    (resnet18, 21, 1.80e9, 1.83e9),       # 20 convs (3 downsample) + fc
    (mobilenet_v2, 53, 295e6, 305e6),     # stem + 17 blocks (16 with expansion) x (dw, project) + head + classifier
])
def test_zoo_totals(make, n_layers, lo, hi):
    layers = make()
    assert len(layers) == n_layers
    assert lo < sum(l.macs for l in layers) < hi
    assert len({l.name for l in layers}) == n_layers


def test_zoo_depthwise_layers_are_grouped():
    dws = [l for l in mobilenet_v2() if l.name.endswith(".dw")]
    assert len(dws) == 17
    assert all(l.sizes["K"] == 1 and l.sizes["C"] == 1 and l.sizes["G"] > 1 for l in dws)
