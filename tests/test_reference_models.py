"""The reference models (microtrain.models): parameter counts, ONNX export,
and microtrain's C versus onnxruntime (the oracle) for every model and norm
variant; the BatchNorm swap; torch stays optional."""
import subprocess
import sys

import numpy as np
import onnx
import pytest

import microtrain
from microtrain import MicrotrainError
from onnx_check import assert_close, check_model, ort_run

torch = pytest.importorskip("torch")
nn = torch.nn

from microtrain.models import count_parameters, export_module, get_model  # noqa: E402
from microtrain.models.norm_swap import swap_batchnorm  # noqa: E402

# Small sizes where the defaults are slow; EpiDeNet's default 2 x 1000 is cheap.
EEG_SMALL = dict(chans=8, samples=256)


# ---- helpers -------------------------------------------------------------------

def randomize_norms(module, seed: int) -> None:
    """Non-trivial norm parameters: fresh ones are the identity and would hide
    a norm that is dropped or mis-wired."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def build_case(name: str, kwargs: dict, seed: int = 0):
    """(torch module, ONNX proto, input array) with randomized norms."""
    model = get_model(name)
    module = model.build(seed=seed, **kwargs)
    randomize_norms(module, seed + 1)
    shape = model.input_shape(**kwargs)
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return module, export_module(module, shape), x


def torch_forward(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x)).numpy()


# ---- parameter counts ------------------------------------------------------------

# Expected counts, derived by hand from the layer lists in the module docstrings.
PARAM_COUNTS = [
    # CCT-2/3x2, 10 classes: convs 3*64*9 + 64*128*9 = 75,456; positional 64*128 = 8,192;
    # per layer 2 LN (512) + qkv 128*384 (49,152) + proj 16,512 + FFN 2*16,512 = 99,200, x2;
    # final LN 256, attention_pool 129, fc 1,290.
    ("cct", {}, 283_723),
    ("cct", {"qkv": "separate"}, 283_723),
    # EEGNet 8 x 1000: temporal 8*64 + BN 16; spatial 16*8 + BN 32; separable 16*16 + 16*16 + BN 32;
    # fc 16*15*4 + 4 = 964.
    ("eegnet", {}, 2_196),
    ("eegnet", {"norm": "group"}, 2_196),                 # per-channel affine, like BN
    ("eegnet", {"norm": "layer"}, 2_196),
    ("eegnet", {"norm": "none"}, 2_196 - 80 + 40),        # no norms, biases on 3 convs (8 + 16 + 16)
    ("eegnet", EEG_SMALL, 2_196 - 964 + 260),             # fc 16*4*4 + 4
    # MI-BMInet order: spatial 1->8 (8*8) + BN 16; temporal depthwise 16*64 + BN 32; then as above.
    ("eegnet", {"spatial_first": True}, 64 + 16 + 1_024 + 32 + 256 + 256 + 32 + 964),
    # EpiDeNet 2 x 1000, 11 classes: convs 16 + 1,024 + 2,048 + 512 + 256; 5 norms of 8 + 4*32; fc 187.
    ("epidenet", {}, 4_179),
    ("epidenet", {"norm": "layer"}, 4_179),
    ("epidenet", {"norm": "none"}, 4_179 - 136 + 68),     # norms out, conv biases 4 + 4*16 in
    # Tiny: positional 512; LN 64 x3; q/k/v 3*1,024; proj 1,056; FFN 2,112 + 2,080; fc 132.
    ("tiny_transformer", {}, 9_156),
]


@pytest.mark.parametrize("name, kwargs, expected", PARAM_COUNTS)
def test_parameter_counts(name, kwargs, expected):
    assert count_parameters(get_model(name).build(**kwargs)) == expected


# ---- C versus onnxruntime ------------------------------------------------------------

CASES = [
    ("eegnet", {**EEG_SMALL, "norm": "batch"}),
    ("eegnet", {**EEG_SMALL, "norm": "group"}),
    ("eegnet", {**EEG_SMALL, "norm": "layer"}),
    ("eegnet", {**EEG_SMALL, "norm": "none"}),
    ("eegnet", {**EEG_SMALL, "spatial_first": True, "norm": "layer"}),
    ("eegnet", {"chans": 4, "samples": 128, "classes": 3, "kernel": 31, "sep_kernel": 7, "pool1": 4}),
    ("epidenet", {"norm": "batch"}),
    ("epidenet", {"norm": "group", "groups": 2}),
    ("epidenet", {"norm": "layer"}),
    ("epidenet", {"norm": "none", "chans": 3, "samples": 600, "classes": 5}),
    ("epidenet", {"norm": "group", "chans": 6, "samples": 448, "classes": 2, "pools": (4, 4, 2)}),  # the EEG demo's
    ("epidenet", {"samples": 300, "pools": (2, 2, 3)}),
    ("cct", {"qkv": "separate", "img_size": 16, "classes": 4}),   # full size: test_cct_2_3x2
    ("tiny_transformer", {}),
    ("tiny_transformer", {"qkv": "fused", "layers": 2, "tokens": 8, "dim": 16, "heads": 4}),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                                                     for n, kw in CASES])
def test_compiled_model_matches_onnxruntime(name, kwargs):
    module, proto, x = build_case(name, kwargs)
    # The export is faithful to PyTorch ...
    assert_close(ort_run(proto, {"input": x})["output"], torch_forward(module, x), 1e-4, 1e-5,
                 "onnxruntime vs torch")
    # ... and microtrain's golden model and C match onnxruntime.
    cm, _ = check_model(proto, {"input": x})
    assert cm.report.macs > 0


def test_outputs_depend_on_weights_and_input():
    """The comparisons above are not vacuous: another seed gives other logits."""
    outs = [ort_run(proto, {"input": x})["output"] for _, proto, x in
            (build_case("eegnet", {**EEG_SMALL, "norm": "layer"}, seed) for seed in (0, 1))]
    assert not np.allclose(outs[0], outs[1])


def test_cct_2_3x2():
    """Full-size CCT (one compile for three checks): C and golden vs onnxruntime;
    ~35.3 M multiply-accumulates in convolutions and matrix products (REFERENCES.md);
    the attention projections are their own MatMuls, named for LoRA targeting."""
    module, proto, x = build_case("cct", {})
    assert_close(ort_run(proto, {"input": x})["output"], torch_forward(module, x), 1e-4, 1e-5,
                 "onnxruntime vs torch")
    cm, _ = check_model(proto, {"input": x})

    matmul_macs = sum(r.macs for r in cm.report.layers if r.op in ("Conv", "MatMul", "Gemm"))
    assert 35.2e6 < matmul_macs < 35.4e6
    assert cm.report.macs >= matmul_macs

    matmuls = {n.name for n in proto.graph.node if n.op_type == "MatMul"}
    for layer in (0, 1):
        assert {f"/blocks.{layer}/self_attn/qkv/MatMul", f"/blocks.{layer}/self_attn/proj/MatMul"} <= matmuls


# ---- exported graphs -------------------------------------------------------------------

def test_cct_separate_projections_are_named_matmuls():
    proto = get_model("cct").export(qkv="separate", img_size=8)
    matmuls = {n.name for n in proto.graph.node if n.op_type == "MatMul"}
    assert {f"/blocks.{i}/self_attn/{p}/MatMul" for i in (0, 1) for p in ("q", "k", "v", "proj")} <= matmuls


@pytest.mark.parametrize("name, kwargs, ops", [
    ("eegnet", EEG_SMALL, {"Pad", "Conv", "Elu", "AveragePool", "Gemm"}),
    ("epidenet", {}, {"Conv", "Relu", "MaxPool", "GlobalAveragePool", "Gemm"}),
    ("cct", {"img_size": 8}, {"Conv", "MaxPool", "LayerNormalization", "MatMul", "Softmax", "Erf"}),
    ("tiny_transformer", {}, {"LayerNormalization", "MatMul", "Softmax", "ReduceMean"}),
])
def test_exports_use_the_intended_ops(name, kwargs, ops):
    """Guards the coverage of the comparisons above against exporter changes."""
    assert ops <= {n.op_type for n in get_model(name).export(**kwargs).graph.node}


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_per_sample_norms_export_as_instance_norm_without_run_time_shapes(norm):
    proto = get_model("epidenet").export(norm=norm)
    ops = [n.op_type for n in proto.graph.node]
    assert "InstanceNormalization" in ops and "BatchNormalization" not in ops
    # the compiler folds the export's run-time Shape reads and fuses the GroupNorm pattern
    compiled = [n.op for n in microtrain.compile(proto).graph.nodes]
    assert "Shape" not in compiled and "InstanceNormalization" not in compiled
    assert compiled.count("GroupNormalization") == 5


def test_export_writes_the_file_with_the_declared_input_shape(tmp_path):
    model = get_model("epidenet")
    path = tmp_path / "epidenet.onnx"
    proto = model.export(path, batch=2, samples=500)
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved)
    assert saved.SerializeToString() == proto.SerializeToString()
    dims = [d.dim_value for d in saved.graph.input[0].type.tensor_type.shape.dim]
    assert tuple(dims) == model.input_shape(batch=2, samples=500) == (2, 1, 2, 500)


def test_input_shapes():
    assert get_model("eegnet").input_shape() == (1, 1, 8, 1000)
    assert get_model("epidenet").input_shape(batch=4) == (4, 1, 2, 1000)
    assert get_model("cct").input_shape() == (1, 3, 32, 32)
    assert get_model("tiny_transformer").input_shape() == (1, 16, 32)


def test_build_is_seeded():
    model = get_model("tiny_transformer")
    a, b, c = model.build(seed=3), model.build(seed=3), model.build(seed=4)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
    assert any(not torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_raw_from_torch_groupnorm_export_compiles():
    """nn.GroupNorm's export reads Shape of a run-time tensor: the compiler folds it."""
    module = get_model("epidenet").build(norm="layer")
    proto = microtrain.from_torch(module, torch.zeros(1, 1, 2, 1000))
    x = np.random.default_rng(0).standard_normal((1, 1, 2, 1000)).astype(np.float32)
    check_model(proto, {"x": x} if proto.graph.input[0].name == "x" else {proto.graph.input[0].name: x})


# ---- argument errors ---------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs, words", [
    ("eegnet", {"norm": "instance"}, "norm must be one of"),
    ("eegnet", {"samples": 32}, "shorter than the pooling"),
    ("eegnet", {"norm": "group", "groups": 3}, "groups=3"),
    ("epidenet", {"samples": 300}, "at least 475"),
    ("epidenet", {"samples": 448}, "at least 475; smaller pools"),
    ("epidenet", {"samples": 100, "pools": (4, 4, 2)}, r"pools \(4, 4, 2\) \(needs at least 207"),
    ("epidenet", {"pools": (8, 4)}, "must be 3 positive integers"),
    ("epidenet", {"pools": (8, 0, 4)}, "must be 3 positive integers"),
    ("epidenet", {"chans": 0}, "chans must be a positive integer"),
    ("cct", {"qkv": "merged"}, "qkv must be one of"),
    ("tiny_transformer", {"dim": 30, "heads": 4}, "not divisible"),
])
def test_bad_arguments_raise_clear_errors(name, kwargs, words):
    with pytest.raises(MicrotrainError, match=words):
        get_model(name).build(**kwargs)


def test_unknown_model_name():
    with pytest.raises(MicrotrainError, match="unknown reference model"):
        get_model("resnet")


# ---- norm swap ------------------------------------------------------------------------

def _count(module, kind):
    return sum(isinstance(m, kind) for m in module.modules())


@pytest.mark.parametrize("kind, groups, expected_groups", [("layer", 4, 1), ("group", 4, 4), ("group", 2, 2)])
def test_swap_batchnorm_replaces_every_batchnorm(kind, groups, expected_groups):
    original = get_model("eegnet").build(**EEG_SMALL)
    randomize_norms(original, 7)
    n_bn = _count(original, nn.BatchNorm2d)
    swapped = swap_batchnorm(original, kind, groups=groups)

    assert n_bn == 3 and _count(swapped, nn.modules.batchnorm._BatchNorm) == 0
    norms = [m for m in swapped.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == n_bn and all(m.num_groups == expected_groups for m in norms)
    # gamma/beta carried over; the original is untouched
    for bn, gn in zip((m for m in original.modules() if isinstance(m, nn.BatchNorm2d)), norms):
        assert torch.equal(bn.weight, gn.weight) and torch.equal(bn.bias, gn.bias)
    assert _count(original, nn.BatchNorm2d) == n_bn

    x = np.random.default_rng(0).standard_normal((2, 1, 8, 256)).astype(np.float32)
    y = torch_forward(swapped, x)
    assert y.shape == (2, 4) and np.all(np.isfinite(y))
    # a different function: the documented reason to retrain
    assert not np.allclose(y, torch_forward(original, x), atol=1e-3)


def test_swapped_model_compiles_and_matches_onnxruntime():
    swapped = swap_batchnorm(get_model("epidenet").build(), "layer")
    randomize_norms(swapped, 2)
    x = np.random.default_rng(1).standard_normal((1, 1, 2, 1000)).astype(np.float32)
    check_model(export_module(swapped, x.shape), {"input": x})


def test_swap_batchnorm1d_and_root():
    mlp = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    swapped = swap_batchnorm(mlp, "layer")
    assert isinstance(swapped[1], nn.GroupNorm) and swapped[1].num_groups == 1
    out = swapped.eval()(torch.randn(5, 6))
    assert out.shape == (5, 3)
    root = swap_batchnorm(nn.BatchNorm2d(6, eps=1e-3), "group", groups=3)
    assert isinstance(root, nn.GroupNorm) and root.num_groups == 3 and root.eps == 1e-3


def test_swap_batchnorm_errors_name_the_module():
    model = get_model("epidenet").build()
    with pytest.raises(MicrotrainError, match=r"features\.0\.1.*groups=3.*4 channels"):
        swap_batchnorm(model, "group", groups=3)
    with pytest.raises(MicrotrainError, match="kind must be one of"):
        swap_batchnorm(model, "batch")


# ---- torch stays optional ---------------------------------------------------------------

def test_importing_microtrain_and_models_does_not_import_torch():
    code = ("import sys, microtrain, microtrain.models, microtrain.models.norm_swap as _\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    # norm_swap imports only torch_export at module level; it must not pull torch in either.
    subprocess.run([sys.executable, "-c", code], check=True)
