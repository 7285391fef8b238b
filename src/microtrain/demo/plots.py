"""PNG plots of the demo (matplotlib, Agg backend, imported only here)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .hardware import ARENA_CATEGORIES
from .strategies import LABELS, present



def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def write_plots(result, out: Path) -> list:
    plt = _pyplot()
    files = [_accuracy(plt, result, out / "accuracy.png"), _ram(plt, result, out / "ram_breakdown.png"),
             _timeline(plt, result, out / "memory_timeline.png")]
    return files


def _accuracy(plt, result, path):
    from .report import aggregate, protocols_of
    agg, protocols = aggregate(result.runs), protocols_of(result.runs)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    strategies = present(s for _, s in agg)
    width = 0.8 / len(strategies)
    xs = np.arange(len(protocols))
    for k, s in enumerate(strategies):
        m = [agg[(p, s)]["c_mean"] for p in protocols]
        e = [agg[(p, s)]["c_std"] for p in protocols]
        t = [agg[(p, s)]["torch_mean"] for p in protocols]
        pos = xs + (k - (len(strategies) - 1) / 2) * width
        ax.bar(pos, m, width, yerr=e, capsize=3, label=LABELS[s])
        ax.plot(pos, t, "k_", markersize=10, label="PyTorch twin" if k == 0 else None)
    ax.set_xticks(xs, [p.replace(" (", "\n(") for p in protocols])
    lo = min(agg[k]["c_mean"] - agg[k]["c_std"] for k in agg)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("test accuracy (generated C)")
    ax.set_title("Accuracy per strategy (mean ± std over runs)")
    ax.legend(ncol=len(strategies), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    return _save(plt, fig, path)


def _ram(plt, result, path):
    strategies = list(result.ram)
    cats = [c for c in next(iter(result.ram.values())).breakdown
            if any(r.breakdown.get(c, 0) for r in result.ram.values())]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    left = np.zeros(len(strategies))
    for c in cats:
        v = np.array([result.ram[s].breakdown.get(c, 0) for s in strategies]) / 1024
        ax.barh([LABELS[s] for s in strategies], v, left=left, label=c)
        left += v
    ax.plot([result.ram[s].peak_bytes / 1024 for s in strategies], [LABELS[s] for s in strategies], "k|",
            markersize=22, label="planned peak (arena incl. fragmentation)")
    ax.set_xlabel("KiB alive at the busiest step of the training step (static arrays + arena buffers)")
    ax.set_title("Training RAM breakdown (micro-batch 1, batch 8)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(plt, fig, path)


def _timeline(plt, result, path):
    strategies = list(result.timelines)
    fig, axes = plt.subplots(len(strategies), 1, figsize=(12, 2.2 * len(strategies)), sharey=True)
    for ax, s in zip(np.atleast_1d(axes), strategies):
        tl = result.timelines[s]
        state = sum(tl.state.values()) + tl.io_bytes
        steps = np.arange(len(next(iter(tl.arena.values()))))
        layers = [np.full(len(steps), state / 1024)] + [tl.arena[c] / 1024 for c in ARENA_CATEGORIES]
        ax.stackplot(steps, *layers, labels=["static (weights, optimizer, accumulators, I/O)", *ARENA_CATEGORIES], step="mid")
        ax.axhline((tl.arena_bytes + state) / 1024, color="k", lw=0.8, ls="--", label="planned peak")
        ax.axvline(tl.backward_start, color="r", lw=0.8, label="loss (backward after)")
        ax.set_title(f"{LABELS[s]}: bytes alive per node of the micro-batch step", fontsize=9)
        ax.set_ylabel("KiB")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    np.atleast_1d(axes)[-1].set_xlabel("node (execution order)")
    return _save(plt, fig, path)
