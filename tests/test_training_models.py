"""One SGD step of the generated C matches PyTorch on the reference models
(EEGNet-family, EpiDeNet-like, CCT-2/3x2, a tiny Transformer) for each
strategy, from the same initial weights and batch."""
import numpy as np
import pytest
import torch

import microtrain
from microtrain.models import get_model

# Models are sized down where the defaults only cost time (the structure is the same).
MODELS = {
    "eegnet": dict(norm="layer", chans=8, samples=256),
    "epidenet": dict(norm="layer", samples=512),
    "cct": dict(qkv="separate"),
    "tiny_transformer": dict(),
}
STRATEGIES = ["full", "last-layer", "bias-only", "layers", "lora"]
LAYERS = {"eegnet": "*separable*", "epidenet": "*features.4*", "cct": "*blocks.1*", "tiny_transformer": "*mlp*,*ffn*,*fc*"}
BATCH = 2
LR = 0.05


def _torch_name_map(module, trainer):
    """ONNX initializer -> (torch parameter name, layout) by the initial values:
    the exporter may rename a weight, store it transposed (Linear in MatMul) or
    reshaped (GroupNorm's affine as C x 1 x 1). Equal candidates (fresh norm
    weights are all ones) are taken in order: export and module share it."""
    params = [(n, p.detach().numpy()) for n, p in module.named_parameters()]
    used, mapping = set(), {}
    for name in trainer.program.trainable:
        init = trainer.program.state_init[name]
        cands = [(n, "same") for n, v in params if n == name and np.array_equal(v, init)]
        cands += [(n, "T") for n, v in params if v.ndim == 2 and v.T.shape == init.shape and np.array_equal(v.T, init)]
        cands += [(n, "reshape") for n, v in params if v.size == init.size and
                  np.array_equal(v.reshape(-1), init.reshape(-1))]
        cands = [c for c in cands if c[0] not in used]
        assert cands, f"{name}: no torch parameter has its initial value"
        # among equal values, prefer the parameter of the module the reading node belongs to
        reader = next(n.name for n in trainer.program.micro.nodes if name in n.inputs)
        cands.sort(key=lambda c: c[0].rsplit(".", 1)[0] not in reader.split("/"))
        used.add(cands[0][0])
        mapping[name] = cands[0]
    return mapping


def _as_onnx_layout(value, layout, shape):
    return value.T if layout == "T" else value.reshape(shape)


def _lora_torch(module, trainer):
    """Patch each adapted torch Linear: y = W x + b + scale * (x A) B, with A, B
    the trainer's initial adapters (trainable), W and b frozen."""
    extra = {}
    for ad in trainer.program.lora.adapters:
        path = ad.layer.strip("/").split("/")[:-1]
        sub = module.get_submodule(".".join(path))
        a = torch.nn.Parameter(torch.tensor(trainer.program.state_init[ad.a]))
        b = torch.nn.Parameter(torch.tensor(trainer.program.state_init[ad.b]))
        base = sub.forward
        sub.forward = (lambda base, a, b, s: lambda x: base(x) + s * (x @ a) @ b)(base, a, b, ad.scale)
        extra[ad.a], extra[ad.b] = a, b
    return extra


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", list(MODELS))
def test_one_sgd_step_matches_pytorch(name, strategy):
    mod = get_model(name)
    kw = MODELS[name]
    proto = mod.export(**kw)
    extra = dict(lora_rank=4, lora_alpha=16.0) if strategy == "lora" else {}
    if strategy == "layers":
        extra = dict(layers=LAYERS[name])
    tr = microtrain.compile_training(proto, strategy=strategy, optimizer="sgd", lr=LR, batch=BATCH, **extra)
    module = mod.build(**kw).eval()
    shape = (BATCH,) + tuple(mod.input_shape(**kw)[1:])
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    n_classes = tr.program.infer.type_of(tr.program.infer.outputs[0]).shape[1]
    y = rng.integers(0, n_classes, BATCH)

    for p in module.parameters():
        p.requires_grad_(False)
    if strategy == "lora":
        tparams = _lora_torch(module, tr)
        mapping = {k: (k, "same") for k in tparams}
    else:
        mapping = _torch_name_map(module, tr)
        named = dict(module.named_parameters())
        tparams = {k: named[n] for k, (n, _) in mapping.items()}
    for p in tparams.values():
        p.requires_grad_(True)
    opt = torch.optim.SGD(list(tparams.values()), lr=LR)
    loss = torch.nn.functional.cross_entropy(module(torch.tensor(x)), torch.tensor(y))
    loss.backward()
    opt.step()

    if strategy == "full":   # every PyTorch parameter trains, none merged with another
        assert tr.report.trainable_params == sum(p.numel() for p in module.parameters())
    c_loss = tr.step(x, y)
    np.testing.assert_allclose(c_loss, loss.item(), rtol=1e-4)
    got = tr.parameters()
    for k, p in tparams.items():
        want = _as_onnx_layout(p.detach().numpy(), mapping[k][1], got[k].shape)
        np.testing.assert_allclose(got[k], want, rtol=1e-4, atol=1e-6, err_msg=f"{name}/{strategy}: {k}")
