"""How sensitive is the demo's fine-tuning to float32 rounding? PyTorch against itself.

    python bench/rounding_sensitivity.py                      # both models, short preset, seeds 0-2, N = 50 %
    python bench/rounding_sensitivity.py --models epidenet --seeds 0,1,2,3,4

The C and its PyTorch twin do the same arithmetic in a different order, so
their weights differ by rounding after every step. Whether that stays at
rounding level or grows depends on the model: smooth ops (ELU, average
pooling) keep trajectories together, kinks and argmaxes (ReLU, max pooling)
let a last-bit difference flip a pooling window and send the two runs apart.
This script measures that without the C: the demo's `full` fine-tuning in
PyTorch (same pretraining, split, Adam lr, epochs, batch and data order as
the short preset), once from the pretrained weights and once from the same
weights moved by one float32 ulp each (random direction), and prints the
largest relative weight difference after adaptation (the metric the demo
reports for C vs PyTorch) and the two test accuracies."""
from __future__ import annotations

import argparse
import copy

import numpy as np

from microtrain.demo import SHORT
from microtrain.demo.config import BATCH, MODELS
from microtrain.demo.pretraining import pretrain, torch_accuracy
from microtrain.demo.protocols import longitudinal_groups, model_input
from microtrain.demo.torch_twin import adam_like_the_c, max_relative_difference


def fine_tune(net, x, y, epochs: int, lr: float, seed: int):
    """`full` in PyTorch as the twin runs it: eval graph, Adam, batch 8 from rng permutations."""
    net = copy.deepcopy(net).eval()
    adam_like_the_c(net, list(net.parameters()), x, y, epochs, seed, lr, BATCH)
    return net


def one_ulp_away(net, seed: int):
    """A copy of `net` with every weight moved to its float32 neighbour, up or down at random."""
    import torch
    out = copy.deepcopy(net)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in out.parameters():
            w = p.detach().numpy()
            toward = np.where(rng.random(w.shape) < 0.5, np.inf, -np.inf).astype(np.float32)
            p.copy_(torch.from_numpy(np.nextafter(w, toward)))
    return out


def weights(net) -> dict:
    """{parameter name: array}, the form torch_twin.max_relative_difference compares."""
    return {k: p.detach().numpy() for k, p in net.named_parameters()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--fraction", type=float, default=0.5, help="share of TEST adapted on")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    for model in args.models.split(","):
        cfg = SHORT.with_(model=model)
        for g in longitudinal_groups(tuple(int(s) for s in args.seeds.split(",")), (args.fraction,)):
            net = pretrain(model_input(g.x_pre, g.stats), g.y_pre, g.seed, cfg.pretrain_epochs, model)
            split = g.splits[0]
            x, x_test = model_input(split.x_adapt, g.stats), model_input(split.x_test, g.stats)
            a = fine_tune(net, x, split.y_adapt, cfg.adapt_epochs, cfg.lr["full"], g.seed)
            b = fine_tune(one_ulp_away(net, 7), x, split.y_adapt, cfg.adapt_epochs, cfg.lr["full"], g.seed)
            print(f"{model:<9} seed {g.seed} {split.protocol}: max rel. weight difference "
                  f"{max_relative_difference(weights(a), weights(b)):.1e}, test accuracy {torch_accuracy(a, x_test, split.y_test):.3f} "
                  f"vs {torch_accuracy(b, x_test, split.y_test):.3f}", flush=True)


if __name__ == "__main__":
    main()
