"""The adaptation strategies, run in microtrain's generated C.

* none        the pretrained model as deployed (inputs z-scored with the pretraining statistics)
* renorm      input re-normalization only: the z-score statistics re-fitted on
              the adaptation slice, no weight changes
* last-layer  the classifier (Linear) trains
* bias-only   every bias / norm shift trains (GroupNorm betas, the classifier's bias)
* full        every parameter trains
* lora        low-rank adapters beside the frozen convolutions that LoRA can
              attach to (groups = 1: the temporal and the pointwise conv; the
              depthwise convs cannot take one, and an adapter on the 224 -> 2
              classifier would have more parameters than the classifier itself)

Every trained strategy: Adam, batch 8 as 8 micro-batches of 1 (gradient
accumulation), the data order of `CompiledTrainer.fit(shuffle=True, seed)`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data import fit_zscore
from .config import BATCH, LORA_ALPHA, LORA_RANK, MICRO_BATCH, DemoConfig
from .protocols import Split, model_input

STRATEGIES = ("none", "renorm", "last-layer", "bias-only", "full", "lora")
TRAINED = ("last-layer", "bias-only", "full", "lora")
LABELS = {"none": "none", "renorm": "input re-norm", "last-layer": "last-layer", "bias-only": "bias-only",
          "full": "full", "lora": f"LoRA r={LORA_RANK}"}


def renormalized_stats(x_adapt: np.ndarray):
    """The re-normalization strategy's statistics: per-channel mean/std of the
    adaptation slice (over its trials and time), replacing the pretraining ones."""
    return fit_zscore(x_adapt)


def lora_targets(net) -> list[str]:
    """Weight names of the convolutions a LoRA adapter can attach to (groups == 1)."""
    import torch
    return [f"{name}.weight" for name, m in net.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups == 1]


def compile_strategy(proto, strategy: str, cfg: DemoConfig, lora_on, target: str = "host",
                     batch: int = BATCH, micro_batch: int = MICRO_BATCH):
    import microtrain
    extra = {}
    if strategy == "lora":
        extra = dict(lora_rank=LORA_RANK, lora_alpha=LORA_ALPHA, lora_targets=",".join(lora_on))
    return microtrain.compile_training(proto, strategy=strategy, optimizer="adam", lr=cfg.lr[strategy],
                                       batch=batch, micro_batch=micro_batch, target=target, **extra)


@dataclass
class CResult:
    accuracy: float
    init: dict = field(default_factory=dict)      # trainable tensors before adaptation
    final: dict = field(default_factory=dict)     # ... and after
    program: object = None                        # the training program (strategy, spec, LoRA plan)
    trainer: object = None


def adapt_in_c(proto, split: Split, stats, cfg: DemoConfig, lora_on, seed: int, keep_trainers=False) -> dict:
    """{strategy: CResult} on one split; every accuracy computed by the generated C."""
    x_adapt, x_test = model_input(split.x_adapt, stats), model_input(split.x_test, stats)
    y_adapt = split.y_adapt.astype(np.int32)
    out = {}
    for strategy in TRAINED:
        tr = compile_strategy(proto, strategy, cfg, lora_on)
        if strategy == TRAINED[0]:   # the untrained step's inference is the deployed model
            out["none"] = CResult(tr.evaluate(x_test, split.y_test)["accuracy"])
            renorm_x = model_input(split.x_test, renormalized_stats(split.x_adapt))
            out["renorm"] = CResult(tr.evaluate(renorm_x, split.y_test)["accuracy"])
        init = tr.parameters()
        tr.fit(x_adapt, y_adapt, epochs=cfg.adapt_epochs, shuffle=True, seed=seed)
        out[strategy] = CResult(tr.evaluate(x_test, split.y_test)["accuracy"], init, tr.parameters(), tr.program,
                                tr if keep_trainers else None)
    return out
