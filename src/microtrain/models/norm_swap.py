"""Normalization layers for micro-batch-1 training.

BatchNorm normalizes with statistics across the batch. On a microcontroller
training runs with micro-batch 1 plus gradient accumulation (one sample's
activations alive at a time), where batch statistics are meaningless; the
BioTrain work therefore replaces BatchNorm by per-sample norms (LayerNorm in
the EEG model, GroupNorm with one group in the EOG model).

* `make_norm(kind, channels)` builds the norm layer the reference models use.
* `swap_batchnorm(module, kind)` replaces every BatchNorm of an existing model.

**Caveat:** a per-sample norm computes a different function from BatchNorm
(it normalizes each sample with its own statistics instead of the running
ones). A swapped model must be (re)trained in PyTorch before it is deployed;
the swap keeps BatchNorm's affine parameters only as a starting point."""
from __future__ import annotations

import copy

from ..errors import MicrotrainError
from ..torch_export import _import_torch

NORM_KINDS = ("batch", "group", "layer", "none")
SWAP_KINDS = ("group", "layer")
DEFAULT_GROUPS = 4


def _check_groups(channels: int, groups: int, where: str) -> None:
    if not isinstance(groups, int) or groups < 1 or channels % groups:
        raise MicrotrainError(f"{where}: GroupNorm groups={groups!r} must be a positive divisor of its "
                              f"{channels} channels; pass another `groups`")


def make_norm(kind: str, channels: int, *, groups: int = DEFAULT_GROUPS, dims: int = 2):
    """The normalization layer for `channels` feature maps of a (N, C, ...) tensor.

    * "batch": BatchNorm1d/2d (by `dims`), the conventional layer; batch statistics.
    * "group": GroupNorm(groups, C): per sample, statistics over each group of
      C/groups channels and all positions; per-channel affine.
    * "layer": GroupNorm(1, C): per sample, statistics over all channels and
      positions (LayerNorm over (C, H, W)) with a per-channel affine (nn.LayerNorm
      would have an element-wise affine of C*H*W parameters instead).
    * "none": Identity.
    """
    torch = _import_torch()
    nn = torch.nn
    if kind == "batch":
        return nn.BatchNorm1d(channels) if dims == 1 else nn.BatchNorm2d(channels)
    if kind == "group":
        _check_groups(channels, groups, f"norm='group' with {channels} channels")
        return nn.GroupNorm(groups, channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise MicrotrainError(f"norm must be one of {', '.join(map(repr, NORM_KINDS))}, got {kind!r}")


def _per_sample_norm(bn, kind: str, groups: int, where: str):
    torch = _import_torch()
    channels = bn.num_features
    n_groups = 1 if kind == "layer" else groups
    _check_groups(channels, n_groups, f"swap_batchnorm at '{where}'")
    norm = torch.nn.GroupNorm(n_groups, channels, eps=bn.eps, affine=bn.affine)
    if bn.affine:
        with torch.no_grad():  # keep gamma/beta as the starting point of retraining
            norm.weight.copy_(bn.weight)
            norm.bias.copy_(bn.bias)
    return norm


def swap_batchnorm(module, kind: str = "layer", groups: int = DEFAULT_GROUPS):
    """A copy of `module` with every BatchNorm1d/2d/3d replaced by a per-sample norm.

    * kind="group": GroupNorm(groups, C) (groups must divide every swapped C);
    * kind="layer": GroupNorm(1, C), LayerNorm-like over (C, ...) per sample.

    The new norms take BatchNorm's eps and affine weight/bias; the running
    statistics are dropped. The input module is left unchanged.

    The swapped model computes a different function: (re)train it in PyTorch
    before deploying it. For a BatchNorm1d on (N, C) inputs, GroupNorm(1, C)
    normalizes over the C features of each sample (LayerNorm); "group" with
    groups == C would normalize single values to zero, so avoid it there.
    """
    torch = _import_torch()
    if kind not in SWAP_KINDS:
        raise MicrotrainError(f"swap_batchnorm: kind must be one of {', '.join(map(repr, SWAP_KINDS))}, "
                              f"got {kind!r}")
    batchnorms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    if isinstance(module, batchnorms):
        return _per_sample_norm(module, kind, groups, "<root>")
    swapped = copy.deepcopy(module)
    # Collect first: replacing children while iterating named_modules() is unsafe.
    targets = [(name, m) for name, m in swapped.named_modules() if isinstance(m, batchnorms)]
    for name, bn in targets:
        parent_name, _, child = name.rpartition(".")
        parent = swapped.get_submodule(parent_name) if parent_name else swapped
        setattr(parent, child, _per_sample_norm(bn, kind, groups, name))
    return swapped
