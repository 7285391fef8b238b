"""The C adaptation replayed in PyTorch: same initial weights (the pretrained
module, LoRA adapters with the C program's initial A and zero B), same
trainable tensors, same optimizer (torch.optim.Adam with the C's lr, betas,
eps), same data order (the permutations `CompiledTrainer.fit` draws from
`np.random.default_rng(seed)`, incomplete last batch dropped), loss = mean
cross-entropy over the batch of 8 (what the C's micro-batch accumulation sums to)."""
from __future__ import annotations

import copy

import numpy as np

from ..errors import MicrotrainError


def match_parameters(net, c_init: dict) -> dict:
    """{C tensor name: torch Parameter} for the C's trainable tensors (LoRA
    adapters excluded). The exporter renames some tensors (GroupNorm's affine
    becomes onnx::Mul_* / onnx::Add_*), so match on identical values, taking
    the first unused parameter in module order (the export keeps that order)."""
    params = list(net.parameters())
    used, out = set(), {}
    for name, arr in c_init.items():
        if ".lora_" in name:
            continue
        flat = arr.reshape(-1)
        hit = next((i for i, p in enumerate(params) if i not in used and p.numel() == flat.size
                    and np.array_equal(p.detach().numpy().reshape(-1), flat)), None)
        if hit is None:
            raise MicrotrainError(f"torch twin: no PyTorch parameter equals the C tensor '{name}'")
        used.add(hit)
        out[name] = params[hit]
    return out


def _attach_lora(net, plan, c_init: dict) -> dict:
    """Forward hooks y += scale * B(A(x)) on the adapted convs; returns {C name: Parameter}."""
    import torch
    F = torch.nn.functional
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    out = {}
    for ad in plan.adapters:
        if ad.op != "Conv":
            raise MicrotrainError(f"torch twin: LoRA on {ad.op} '{ad.layer}' is not replayed (convs only)")
        base = plan.base[ad.weight]
        conv = next(m for m in convs if m.weight.shape == base.shape
                    and np.array_equal(m.weight.detach().numpy(), base))
        a = torch.nn.Parameter(torch.from_numpy(c_init[ad.a].copy()))
        b = torch.nn.Parameter(torch.from_numpy(c_init[ad.b].copy()))

        # the module's own stride/padding act on its (already zero-padded) input, as the fused C conv does
        def hook(m, inputs, y, a=a, b=b, scale=ad.scale):
            return y + scale * F.conv2d(F.conv2d(inputs[0], a, None, m.stride, m.padding, m.dilation), b)
        conv.register_forward_hook(hook)
        out[ad.a], out[ad.b] = a, b
    return out


def replay(net, c_trainer_program, c_init: dict, x: np.ndarray, y: np.ndarray, epochs: int, seed: int):
    """(adapted module, {C name: final array}) for the C program's strategy."""
    spec = c_trainer_program.spec
    twin = copy.deepcopy(net).eval()      # eval: the deployed graph has no dropout
    for p in twin.parameters():
        p.requires_grad_(False)
    trained = match_parameters(twin, c_init)
    if getattr(c_trainer_program, "lora", None) is not None:
        trained.update(_attach_lora(twin, c_trainer_program.lora, c_init))
    for p in trained.values():
        p.requires_grad_(True)
    adam_like_the_c(twin, list(trained.values()), x, y, epochs, seed, spec.lr, spec.batch, tuple(spec.betas), spec.eps)
    final = {k: p.detach().numpy().reshape(c_init[k].shape).copy() for k, p in trained.items()}
    return twin, final


def adam_like_the_c(module, params, x, y, epochs: int, seed: int, lr: float, batch: int,
                    betas=(0.9, 0.999), eps: float = 1e-8, after_epoch=None) -> None:
    """Train `params` of `module` in place the way `CompiledTrainer.fit(shuffle=True, seed)` does:
    per epoch a permutation from np.random.default_rng(seed), batches of `batch` (the incomplete
    last one dropped), mean cross-entropy, torch.optim.Adam. `after_epoch(epoch)` after each epoch."""
    import torch
    opt = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps)
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    yt = torch.from_numpy(np.asarray(y, np.int64))
    rng = np.random.default_rng(seed)
    n = len(yt)
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        for s in range(0, n - batch + 1, batch):
            idx = torch.from_numpy(order[s:s + batch])
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[idx]), yt[idx]).backward()
            opt.step()
        if after_epoch is not None:
            after_epoch(epoch)


def max_relative_difference(a: dict, b: dict) -> float:
    """max over tensors of max|a - b| / max(max|a|, 1e-12)."""
    return max(float(np.abs(a[k] - b[k]).max() / max(float(np.abs(a[k]).max()), 1e-12)) for k in a)
