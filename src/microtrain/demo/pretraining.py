"""The PyTorch side: seeded CPU pretraining of the model (EEGNet or EpiDeNet-like), export to ONNX, evaluation."""
from __future__ import annotations

import numpy as np

from ..models import export_module, get_model
from .config import MODELS, PRETRAIN_BATCH, PRETRAIN_LR


def pretrain(x: np.ndarray, y: np.ndarray, seed: int, epochs: int, model: str = "eegnet"):
    """A seeded `model` (a key of MODELS) trained in PyTorch (CPU, Adam) on x[n, 1, ch, t]; in eval mode."""
    import torch
    net = get_model(model).build(seed, **MODELS[model])
    opt = torch.optim.Adam(net.parameters(), lr=PRETRAIN_LR)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(np.asarray(y, np.int64))
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(PRETRAIN_BATCH):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def to_onnx(net, model: str = "eegnet"):
    """The deployable model: ONNX at batch 1 (what the device receives)."""
    args = MODELS[model]
    return export_module(net, (1, 1, args["chans"], args["samples"]))


def torch_predict(net, x: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x, np.float32))).argmax(1).numpy()


def torch_accuracy(net, x, y) -> float:
    return float((torch_predict(net, x) == np.asarray(y)).mean())
