"""Whole models authored in PyTorch, exported with `from_torch`, compiled to C
and compared with onnxruntime (the oracle); plus the memory plan's quality
(arena within 10 % of the lower bound) and its independent verification."""
import numpy as np
import onnx
import pytest

import microtrain
from microtrain.planner import check_plan
from onnx_check import assert_close, ort_run

torch = pytest.importorskip("torch")
nn = torch.nn

from microtrain.examples import EXAMPLE_INPUT_SHAPE, example_model_path  # noqa: E402
from microtrain.examples.build_example import build_example_cnn, randomize_batchnorm, small_cnn  # noqa: E402

# Whole networks accumulate float32 rounding over many layers; still tight.
MODEL_RTOL, MODEL_ATOL = 1e-4, 1e-4
ARENA_SLACK = 1.10


# ---- models ------------------------------------------------------------------

class DepthwiseSeparable(nn.Module):
    """MobileNet-style: stem conv, then depthwise 3x3 + pointwise 1x1 blocks
    with BN and ReLU6 / HardSwish, global average pool, linear."""
    def __init__(self, num_classes=5):
        super().__init__()

        def block(cin, cout, stride, act):
            return nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), act(),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), act())
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(block(8, 16, 1, nn.ReLU6), block(16, 24, 2, nn.Hardswish),
                                    block(24, 24, 1, nn.Hardswish))
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TemporalCNN(nn.Module):
    """EEGNet-like network for an 8-channel x 256-sample biosignal window:
    input BN, temporal conv, depthwise spatial conv, separable conv, avg pools,
    linear classifier."""
    def __init__(self, chans=8, samples=256, f1=8, d=2, f2=16, num_classes=4):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(1)
        self.temporal = nn.Sequential(nn.Conv2d(1, f1, (1, 33), padding=(0, 16), bias=False), nn.BatchNorm2d(f1))
        self.spatial = nn.Sequential(nn.Conv2d(f1, f1 * d, (chans, 1), groups=f1, bias=False),
                                     nn.BatchNorm2d(f1 * d), nn.ELU(), nn.AvgPool2d((1, 4)), nn.Dropout(0.25))
        self.separable = nn.Sequential(
            nn.Conv2d(f1 * d, f1 * d, (1, 15), padding=(0, 7), groups=f1 * d, bias=False),
            nn.Conv2d(f1 * d, f2, 1, bias=False), nn.BatchNorm2d(f2), nn.ELU(),
            nn.AvgPool2d((1, 8)), nn.Dropout(0.25))
        self.classify = nn.Linear(f2 * (samples // 32), num_classes)

    def forward(self, x):
        x = self.separable(self.spatial(self.temporal(self.input_norm(x))))
        return self.classify(x.flatten(1))


class ManualAttentionBlock(nn.Module):
    """Pre-norm Transformer encoder block with the attention written out:
    Linear q/k/v/out, scaled dot product, softmax; then a GELU MLP."""
    def __init__(self, dim=32, heads=4, hidden=64):
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def attention(self, x):
        b, t, c = x.shape

        def split(y):
            return y.reshape(b, t, self.heads, self.dh).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        weights = torch.softmax(q @ k.transpose(-2, -1) / self.dh ** 0.5, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TorchEncoder(nn.Module):
    """nn.TransformerEncoderLayer (nn.MultiheadAttention inside) + final LayerNorm."""
    def __init__(self, norm_first, dim=32, heads=4, hidden=64):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(dim, heads, hidden, dropout=0.1, activation="gelu",
                                                batch_first=True, norm_first=norm_first)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.layer(x))


def _make(name):
    if name == "small_cnn":
        return small_cnn(), (1, 1, 28, 28)
    if name == "depthwise_separable":
        return DepthwiseSeparable(), (1, 3, 32, 32)
    if name == "temporal_cnn":
        return TemporalCNN(), (1, 1, 8, 256)
    if name == "attention_manual":
        return ManualAttentionBlock(), (1, 16, 32)
    if name == "encoder_post_norm":
        return TorchEncoder(norm_first=False), (1, 16, 32)
    if name == "encoder_pre_norm":
        return TorchEncoder(norm_first=True), (1, 16, 32)
    raise KeyError(name)


MODELS = ["small_cnn", "depthwise_separable", "temporal_cnn", "attention_manual",
          "encoder_post_norm", "encoder_pre_norm"]


def _randomize_layernorm(module, gen):
    for m in module.modules():
        if isinstance(m, nn.LayerNorm):
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def build(name, seed=0):
    """(torch module, exported ModelProto, input array) with seeded weights."""
    torch.manual_seed(seed)
    module, shape = _make(name)
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_batchnorm(module, gen)
    _randomize_layernorm(module, gen)
    x = torch.randn(shape, generator=gen)
    return module, microtrain.from_torch(module, x), x.numpy()


def compile_and_compare(proto, x):
    """Compile, run the C and onnxruntime; returns (compiled model, max abs error)."""
    cm = microtrain.compile(proto)
    got = cm.run({"input": x})["output"]
    want = ort_run(proto, {"input": x})["output"]
    assert_close(got, want, MODEL_RTOL, MODEL_ATOL, "C vs onnxruntime")
    return cm, float(np.max(np.abs(got.astype(np.float64) - want)))


# ---- tests -------------------------------------------------------------------

@pytest.mark.parametrize("name", MODELS)
def test_model_matches_onnxruntime_and_plan_is_tight(name):
    module, proto, x = build(name)
    with torch.no_grad():
        torch_out = module.eval()(torch.from_numpy(x)).numpy()
    assert_close(ort_run(proto, {"input": x})["output"], torch_out, 1e-4, 1e-4, "export vs torch")

    cm, err = compile_and_compare(proto, x)
    check_plan(cm.plan)
    r = cm.report
    print(f"{name}: max abs err {err:.3g}; arena {r.arena_bytes} B, lower bound "
          f"{r.lower_bound_bytes} B ({r.arena_over_lower_bound:.3f}); MACs {r.macs:,}")
    assert r.arena_bytes <= ARENA_SLACK * r.lower_bound_bytes, \
        f"arena {r.arena_bytes} B exceeds 1.10 x lower bound {r.lower_bound_bytes} B"


@pytest.mark.parametrize("name, ops", [
    ("small_cnn", {"Conv", "Relu", "MaxPool", "Flatten", "Gemm"}),
    ("depthwise_separable", {"Conv", "Clip", "HardSwish", "GlobalAveragePool", "Gemm"}),
    ("temporal_cnn", {"BatchNormalization", "Conv", "Elu", "AveragePool", "Gemm"}),
    ("attention_manual", {"LayerNormalization", "MatMul", "Softmax", "Transpose", "Erf"}),
    ("encoder_post_norm", {"LayerNormalization", "MatMul", "Softmax", "Erf"}),
])
def test_models_exercise_the_intended_ops(name, ops):
    """Guards the model tests' coverage against exporter changes."""
    _, proto, _ = build(name)
    assert ops <= {n.op_type for n in proto.graph.node}


def test_different_seeds_give_different_outputs():
    """The comparison is not vacuous: outputs depend on the weights and input."""
    outs = [ort_run(p, {"input": x})["output"] for _, p, x in (build("small_cnn", s) for s in (0, 1))]
    assert not np.allclose(outs[0], outs[1])


def test_bundled_example_compiles_and_matches_onnxruntime():
    path = example_model_path()
    assert path.exists() and path.stat().st_size < 200_000
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    x = np.random.default_rng(0).standard_normal(EXAMPLE_INPUT_SHAPE).astype(np.float32)
    cm, _ = compile_and_compare(proto, x)
    check_plan(cm.plan)
    assert cm.output_names == ["output"] and cm.input_names == ["input"]


def test_bundled_example_is_what_the_builder_makes(tmp_path):
    rebuilt = build_example_cnn(tmp_path / "cnn.onnx")
    bundled = onnx.load(str(example_model_path()))
    assert [n.op_type for n in rebuilt.graph.node] == [n.op_type for n in bundled.graph.node]
    for a, b in zip(rebuilt.graph.initializer, bundled.graph.initializer):
        np.testing.assert_allclose(onnx.numpy_helper.to_array(a), onnx.numpy_helper.to_array(b),
                                   rtol=1e-6, atol=1e-7, err_msg=a.name)
