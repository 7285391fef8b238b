"""The adaptation strategies, run in microtrain's generated C.

* none        the pretrained model as deployed (inputs z-scored with the pretraining statistics)
* renorm      input re-normalization only: the z-score statistics re-fitted on
              the adaptation slice, no weight changes
* last-layer  the classifier (Linear) trains
* bias-only   every bias / norm shift trains (GroupNorm betas, the classifier's bias)
* full        every parameter trains
* renorm-full both, in that order: the z-score statistics re-fitted on the
              adaptation slice, then every parameter trains on the slice so
              normalized (the full program, lr and epochs unchanged). Fixed a
              priori, not selected on any test data: SCP1's class lives in the
              signal offset and its session drift is mostly an offset change
              (TRAIN mean ~26 uV, TEST ~8 uV), which re-normalization removes
              without training; the device has the slice anyway.
* full-replay the full program (lr, epochs unchanged) on the slice plus a
              rehearsal buffer of 32 class-balanced pretraining trials kept on
              the device (demo/rehearsal.py), shuffled together; fixed a priori
              as the fourth remedy for the small N = 30 % slice. Not in the
              demo's default run (bench/demo_drift.py --strategies full-replay).
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
from ..errors import MicrotrainError
from .config import BATCH, LORA_ALPHA, LORA_RANK, MICRO_BATCH, DemoConfig
from .protocols import Split, model_input
from .rehearsal import Rehearsal, with_rehearsal
from .selection import select

STRATEGIES = ("none", "renorm", "last-layer", "bias-only", "full", "renorm-full", "lora")
TRAINED = ("last-layer", "bias-only", "full", "renorm-full", "lora")
# trained strategies run only when asked for (bench/demo_drift.py --strategies); not in the demo's report
OPTIONAL = ("full-replay",)
ALL = STRATEGIES + OPTIONAL
LABELS = {"none": "none", "renorm": "input re-norm", "last-layer": "last-layer", "bias-only": "bias-only",
          "full": "full", "renorm-full": "re-norm + full", "full-replay": "full + replay", "lora": f"LoRA r={LORA_RANK}"}
# strategies that are another one's training program on re-normalized inputs
PROGRAM = {"renorm-full": "full", "full-replay": "full"}
# strategies that train on the slice plus the rehearsal buffer
REHEARSED = frozenset({"full-replay"})
RENORMALIZED = frozenset({"renorm", "renorm-full"})


def demo_strategies(cfg: DemoConfig) -> tuple:
    """(every strategy, the trained ones) a demo run with `cfg` evaluates, in report order."""
    extra = ("full-replay",) if cfg.replay else ()
    return STRATEGIES + extra, TRAINED + extra


def present(keys) -> list:
    """The strategies among `keys` (strategy names), in report order."""
    keys = set(keys)
    return [s for s in ALL if s in keys]


def renormalized_stats(x_adapt: np.ndarray):
    """The re-normalization strategy's statistics: per-channel mean/std of the
    adaptation slice (over its trials and time), replacing the pretraining ones."""
    return fit_zscore(x_adapt)


def input_stats(strategy: str, pretrain_stats, x_adapt: np.ndarray):
    """The z-score statistics `strategy` feeds the model with, on the slice and on the test part."""
    return renormalized_stats(x_adapt) if strategy in RENORMALIZED else pretrain_stats


def training_set(strategy: str, split: Split, stats, rehearsal: Rehearsal | None = None):
    """(x model input, y int32) `strategy` trains on: the slice, plus the rehearsal
    buffer for REHEARSED strategies, normalized with the strategy's input stats."""
    x, y = split.x_adapt, split.y_adapt
    if strategy in REHEARSED:
        if rehearsal is None:
            raise ValueError(f"strategy {strategy!r} needs the rehearsal buffer (rehearsal=...)")
        x, y = with_rehearsal(x, y, rehearsal)
    return model_input(x, input_stats(strategy, stats, split.x_adapt)), np.asarray(y).astype(np.int32)


def lora_targets(net) -> list[str]:
    """Weight names of the convolutions a LoRA adapter can attach to (groups == 1)."""
    import torch
    return [f"{name}.weight" for name, m in net.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.groups == 1]


def compile_strategy(proto, strategy: str, cfg: DemoConfig, lora_on, target: str = "host",
                     batch: int = BATCH, micro_batch: int = MICRO_BATCH, lr: float | None = None):
    """The strategy's training program in C (at `lr`, default its configured lr)."""
    import microtrain
    extra = {}
    program = PROGRAM.get(strategy, strategy)
    if program == "lora":
        extra = dict(lora_rank=LORA_RANK, lora_alpha=LORA_ALPHA, lora_targets=",".join(lora_on))
    return microtrain.compile_training(proto, strategy=program, optimizer="adam", lr=cfg.lr[program] if lr is None else lr,
                                       batch=batch, micro_batch=micro_batch, target=target, **extra)


@dataclass
class CResult:
    accuracy: float
    init: dict = field(default_factory=dict)      # trainable tensors before adaptation
    final: dict = field(default_factory=dict)     # ... and after
    program: object = None                        # the training program (strategy, spec, LoRA plan)
    trainer: object = None
    epochs: int = 0                               # epochs of the final run (what the twin replays)
    selection: object = None                      # selection.Selection when lr / epochs were chosen


def _trainer_factory(proto, strategy: str, cfg: DemoConfig, lora_on):
    """build(lr) -> the strategy's trainer at lr, back at its initial state (compiled once per lr)."""
    compiled = {}

    def build(lr: float):
        if lr not in compiled:
            compiled[lr] = compile_strategy(proto, strategy, cfg, lora_on, lr=lr)
        compiled[lr].reset()
        return compiled[lr]
    return build


def adapt_in_c(proto, split: Split, stats, cfg: DemoConfig, lora_on, seed: int, keep_trainers=False,
               trained: tuple = TRAINED, rehearsal: Rehearsal | None = None) -> dict:
    """{strategy: CResult} for none, renorm and the `trained` strategies on one split;
    every accuracy computed by the generated C. With `cfg.select`, each trained
    strategy's lr and epochs are chosen on the slice alone (demo/selection.py)
    and the final run retrains on the whole slice with them. `rehearsal`: the
    buffer REHEARSED strategies add to the slice (demo/rehearsal.py)."""
    if cfg.select and REHEARSED & set(trained):
        raise MicrotrainError("--select with full + replay: the inner validation part (the last 25 % of slice + "
                              "buffer) would be rehearsal trials; run --select and --replay separately")
    out = {}
    for strategy in trained:
        build = _trainer_factory(proto, strategy, cfg, lora_on)
        base_lr = cfg.lr[PROGRAM.get(strategy, strategy)]
        tr = build(base_lr)
        if strategy == trained[0]:   # the untrained step's inference is the deployed model
            for untrained in ("none", "renorm"):
                x_eval = model_input(split.x_test, input_stats(untrained, stats, split.x_adapt))
                out[untrained] = CResult(tr.evaluate(x_eval, split.y_test)["accuracy"])
        used = input_stats(strategy, stats, split.x_adapt)
        (x_adapt, y_adapt), x_test = training_set(strategy, split, stats, rehearsal), model_input(split.x_test, used)
        chosen, epochs = None, cfg.adapt_epochs
        if cfg.select:
            chosen = select(build, base_lr, x_adapt, y_adapt, cfg.adapt_epochs, seed)
            tr, epochs = build(chosen.chosen.lr), chosen.chosen.epochs
        init = tr.parameters()
        tr.fit(x_adapt, y_adapt, epochs=epochs, shuffle=True, seed=seed)
        out[strategy] = CResult(tr.evaluate(x_test, split.y_test)["accuracy"], init, tr.parameters(), tr.program,
                                tr if keep_trainers else None, epochs, chosen)
    return out
