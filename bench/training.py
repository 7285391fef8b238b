"""Training memory and step time for the reference models x strategies.

    python bench/training.py [--models eegnet,epidenet,cct,tiny_transformer] [--steps 3] [--markdown]

Prints, per model and strategy: trainable parameters, planned peak RAM, the
naive plan (every tensor its own buffer) and the lower bound, the breakdown at
the peak, and the host wall time of one training step of the generated C
(measured over --steps steps; machines are noisy — RAM numbers are exact,
times are indicative). Then the two headline comparisons:
  * EEGNet: conventional (BatchNorm in train mode, batch 8, naive buffers) vs
    microtrain (per-sample norm, micro-batch 1 + accumulation to 8, planned)
  * CCT-2/3x2: LoRA (r=4, alpha=16 on the attention projections) vs full backprop."""
from __future__ import annotations

import argparse
import time

import numpy as np

import microtrain
from microtrain.models import get_model

STRATEGIES = ["full", "last-layer", "bias-only", "lora"]
CONFIG = {
    "eegnet": dict(kwargs=dict(norm="layer"), classes=4),
    "epidenet": dict(kwargs=dict(norm="layer"), classes=11),
    "cct": dict(kwargs=dict(qkv="separate"), classes=10),
    "tiny_transformer": dict(kwargs={}, classes=None),
}


def kib(n: int) -> str:
    return f"{n / 1024:,.1f} KiB"


def trainer_for(name, strategy, batch=8, micro_batch=1, **extra):
    mod = get_model(name)
    cfg = CONFIG[name]
    proto = mod.export(**cfg["kwargs"])
    lora = dict(lora_rank=4, lora_alpha=16.0) if strategy == "lora" else {}
    if strategy == "lora" and name == "cct":
        lora["lora_targets"] = "*self_attn*"
    return microtrain.compile_training(proto, strategy=strategy, optimizer="sgd", lr=1e-3, batch=batch,
                                       micro_batch=micro_batch, **lora, **extra), mod, cfg


def step_time(tr, mod, cfg, steps: int) -> float:
    rng = np.random.default_rng(0)
    shape = (tr.batch,) + tuple(mod.input_shape(**cfg["kwargs"])[1:])
    X = rng.standard_normal((tr.batch * steps,) + shape[1:]).astype(np.float32)
    n_classes = tr.program.infer.type_of(tr.program.infer.outputs[0]).shape[1]
    Y = rng.integers(0, n_classes, len(X))
    t0 = time.perf_counter()
    tr.fit(X, Y, epochs=1, shuffle=False)
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default=",".join(CONFIG))
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    print(f"{'model':<17} {'strategy':<11} {'params':>9} {'peak':>12} {'naive':>12} {'lower bnd':>12} "
          f"{'peak/lb':>7} {'step ms':>8}")
    for name in args.models.split(","):
        for strategy in STRATEGIES:
            try:
                tr, mod, cfg = trainer_for(name, strategy)
            except microtrain.MicrotrainError as exc:
                print(f"{name:<17} {strategy:<11} not available: {exc}")
                continue
            r = tr.report
            ms = step_time(tr, mod, cfg, args.steps) * 1e3
            print(f"{name:<17} {strategy:<11} {r.trainable_params:>9,} {kib(r.peak_bytes):>12} {kib(r.naive_bytes):>12} "
                  f"{kib(r.lower_bound_bytes):>12} {r.peak_bytes / r.lower_bound_bytes:>7.3f} {ms:>8.1f}")
    headline()


def headline():
    for spatial_first, label in ((True, "spatial conv first, as MI-BMInet"), (False, "temporal conv first, as EEGNet")):
        print(f"\nEEGNet-family (8 ch x 1000 samples, 4 classes, {label}), full fine-tuning, SGD:")
        conv, _, _ = trainer_for_norm("batch", batchnorm="train", micro_batch=8, spatial_first=spatial_first)
        ours, _, _ = trainer_for_norm("layer", batchnorm="frozen", micro_batch=1, spatial_first=spatial_first)
        print(f"  conventional: BatchNorm (train mode), batch 8, naive buffers: {kib(conv.report.naive_bytes)}")
        print(f"  microtrain:   per-sample norm, micro-batch 1 x 8 accumulated, planned: "
              f"{kib(ours.report.peak_bytes)} (lower bound {kib(ours.report.lower_bound_bytes)})")
        print(f"  reduction: {conv.report.naive_bytes / ours.report.peak_bytes:.1f}x")
        print(ours.report.table())
    print("\nCCT-2/3x2, LoRA r=4 alpha=16 on the attention projections vs full backprop (batch 1):")
    full, _, _ = trainer_for("cct", "full", batch=1)
    lora, _, _ = trainer_for("cct", "lora", batch=1)
    print(f"  trainable parameters: full {full.report.trainable_params:,}, LoRA {lora.report.trainable_params:,} "
          f"({full.report.trainable_params / lora.report.trainable_params:.1f}x fewer)")
    print(f"  dynamic RAM (peak): full {kib(full.report.peak_bytes)}, LoRA {kib(lora.report.peak_bytes)} "
          f"({100 * (1 - lora.report.peak_bytes / full.report.peak_bytes):.0f}% less)")


def trainer_for_norm(norm, batchnorm, micro_batch, spatial_first=False):
    mod = get_model("eegnet")
    proto = mod.export(norm=norm, spatial_first=spatial_first)
    tr = microtrain.compile_training(proto, strategy="full", optimizer="sgd", lr=1e-3, batch=8,
                                     micro_batch=micro_batch, batchnorm=batchnorm)
    return tr, mod, None


if __name__ == "__main__":
    main()
