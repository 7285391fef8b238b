"""Summaries of the CSVs written by compare_zigzag.py (complete or partial runs).

    python bench/scheduler/summarize.py bench/scheduler/results/*.csv"""
from __future__ import annotations

import csv
import sys

import numpy as np


def _num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def summarize(path: str) -> str:
    rows = list(csv.DictReader(open(path)))
    if not rows:
        return f"{path}: no rows yet"
    out = [f"## {rows[0]['model']} on {rows[0]['hw']}: {len(rows)} layers ({len({(r['space'], r['ours_model']) for r in rows})} distinct results)"]
    ok = [r for r in rows if _num(r["ours_zz"]) is not None]
    if len(ok) < len(rows):
        out.append(f"- ZigZag could not score our mapping on {len(rows) - len(ok)} layers")
    agree = np.array([_num(r["ours_model"]) / _num(r["ours_zz"]) for r in ok])
    out.append(f"- our cost model vs ZigZag's on our mappings: max |ratio - 1| = {np.max(np.abs(agree - 1)):.1e}")
    for eng in ("loma", "salsa"):
        good = [r for r in ok if _num(r.get(f"{eng}_zz")) is not None]
        if not good:
            continue
        ours = np.array([_num(r["ours_zz"]) for r in good])
        theirs = np.array([_num(r[f"{eng}_zz"]) for r in good])
        t_o = np.array([_num(r["ours_s"]) for r in good])
        t_t = np.array([_num(r[f"{eng}_s"]) for r in good])
        ratio = ours / theirs
        worse = [r["layer"] for r, x in zip(good, ratio) if x > 1 + 1e-9]
        out.append(f"- vs ZigZag {eng.upper()} ({len(good)} layers, energies in ZigZag's model): ours/{eng} mean {ratio.mean():.4f}, "
                   f"min {ratio.min():.4f}, max {ratio.max():.4f}; total {ours.sum() / theirs.sum():.4f}; "
                   f"ours worse on {len(worse)} layers{': ' + ', '.join(worse) if worse else ''}")
        out.append(f"  - search time per layer: ours mean {t_o.mean():.2f} s (max {t_o.max():.2f}), {eng} mean {t_t.mean():.1f} s; "
                   f"speed-up per layer min {np.min(t_t / t_o):.1f}x, median {np.median(t_t / t_o):.1f}x")
        om = [(_num(r[f"{eng}_ours_model"]), _num(r[f"{eng}_zz"])) for r in good]
        om = [(a, b) for a, b in om if a is not None]
        if om:
            out.append(f"  - our model on {eng.upper()}'s mappings vs ZigZag: max |ratio - 1| = "
                       f"{max(abs(a / b - 1) for a, b in om):.1e} over {len(om)} layers")
    ex = [r for r in rows if _num(r.get("exh_opt")) is not None]
    if ex:
        out.append(f"- layers small enough for the exhaustive check: {len(ex)}; auto found the exhaustive optimum on "
                   f"{sum(r['auto_is_opt'] == 'True' for r in ex)}, annealing alone on {sum(r['anneal_is_opt'] == 'True' for r in ex)}")
    return "\n".join(out)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(summarize(p))
