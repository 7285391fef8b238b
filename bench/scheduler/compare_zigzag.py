"""Benchmark: our scheduler vs ZigZag's LOMA and SALSA engines, every layer
scored in ZigZag's own cost model; plus cost-model agreement and the
exhaustive-optimum check. ZigZag is a benchmark-only dependency:

    pip install zigzag-dse==3.9.1 six
    PYTHONPATH=src python bench/scheduler/compare_zigzag.py --models resnet18 --hw eyeriss_like

Identical layer shapes are searched once (same inputs, same result) and the
row is repeated for each layer name. Writes CSV + markdown to --out."""
from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from zz_runner import run_zigzag  # noqa: E402

from microtrain.scheduler.annealing import anneal  # noqa: E402
from microtrain.scheduler.api import describe, schedule_layer  # noqa: E402
from microtrain.scheduler.exhaustive import exhaustive  # noqa: E402
from microtrain.scheduler.hardware import load_hardware  # noqa: E402
from microtrain.scheduler.problem import build_problem, space_size  # noqa: E402
from microtrain.scheduler.zoo import MODELS  # noqa: E402

FIELDS = ["model", "hw", "layer", "space", "engine", "ours_model", "ours_zz", "agree_ours", "ours_s",
          "loma_zz", "loma_s", "loma_ours_model", "salsa_zz", "salsa_s", "salsa_ours_model",
          "exh_opt", "anneal_only", "auto_is_opt", "anneal_is_opt"]


def shape_key(layer):
    return (tuple(layer.sizes.items()), tuple((k, v) for k, v in layer.partial.items()), layer.op_type)


def zz_ordering(tm: dict) -> list[tuple[str, int]]:
    """ZigZag's per-operand levels concatenated = the loop order, innermost first."""
    levels = tm["O"]
    return [(d, int(round(s))) for lvl in levels for d, s in lvl if round(s) > 1]


def ours_on(layer, hw, loops) -> float:
    """Our model's energy for another tool's loop order, loops kept as given (composite sizes too)."""
    pb = build_problem(layer, hw, loops=loops)
    return describe(pb, pb.ordering_from_loops(loops)).energy


def bench_layer(layer, hw, exh_limit: int, engines: list[str]) -> dict:
    pb = build_problem(layer, hw)
    row: dict = {"layer": layer.name, "space": space_size(pb.type_count)}
    m = schedule_layer(layer, hw)
    row.update(engine=m.engine, ours_model=m.energy, ours_s=round(m.seconds, 3))
    try:
        row["ours_zz"] = run_zigzag(layer, hw, loop_order=m.loop_order)["energy"]
        row["agree_ours"] = round(m.energy / row["ours_zz"], 6)
    except Exception as exc:  # keep going; the row records the failure
        row["ours_zz"] = row["agree_ours"] = f"error ({type(exc).__name__})"
    for eng in engines:
        random.seed(0)
        np.random.seed(0)
        try:
            r = run_zigzag(layer, hw, engine=eng)
        except Exception as exc:
            row[f"{eng}_zz"] = row[f"{eng}_s"] = f"error ({type(exc).__name__})"
            continue
        row[f"{eng}_zz"], row[f"{eng}_s"] = r["energy"], round(r["seconds"], 2)
        try:
            row[f"{eng}_ours_model"] = ours_on(layer, hw, zz_ordering(r["temporal_mapping"]))
        except Exception as exc:  # report, don't hide: the row says why
            row[f"{eng}_ours_model"] = f"n/a ({type(exc).__name__})"
    if row["space"] <= exh_limit:
        ex = exhaustive(pb)
        an = anneal(pb)
        row.update(exh_opt=ex.objective, anneal_only=an.objective,
                   auto_is_opt=bool(np.isclose(m.energy, ex.objective, rtol=1e-9)),
                   anneal_is_opt=bool(np.isclose(an.objective, ex.objective, rtol=1e-9)))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--hw", default="eyeriss_like,edge_tpu_like")
    ap.add_argument("--engines", default="loma,salsa")
    ap.add_argument("--exh-limit", type=int, default=300_000)
    ap.add_argument("--out", default="bench/scheduler/results")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    engines = [e for e in args.engines.split(",") if e]
    for model in args.models.split(","):
        for hw_name in args.hw.split(","):
            hw = load_hardware(hw_name)
            rows, cache = [], {}
            path = out / f"{model}_{hw_name}.csv"
            with path.open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=FIELDS)
                w.writeheader()
                for layer in MODELS[model]():
                    key = shape_key(layer)
                    if key not in cache:
                        cache[key] = bench_layer(layer, hw, args.exh_limit, engines)
                    row = dict(cache[key], layer=layer.name, model=model, hw=hw_name)
                    rows.append(row)
                    w.writerow(row)
                    fh.flush()
                    print(" ".join(f"{k}={row.get(k)}" for k in FIELDS if k in row), flush=True)
            print(summary(rows, engines), flush=True)


def summary(rows: list[dict], engines: list[str]) -> str:
    lines = [f"## {rows[0]['model']} on {rows[0]['hw']} ({len(rows)} layers)"]
    ours = np.array([r["ours_zz"] for r in rows])
    agree = np.array([r["agree_ours"] for r in rows])
    lines.append(f"- cost-model agreement on our mappings: max |ours/zigzag - 1| = {np.max(np.abs(agree - 1)):.2e}")
    uniq = {}
    for r in rows:
        uniq.setdefault(r["ours_s"], r)
    t_ours = np.array([r["ours_s"] for r in rows])
    for eng in engines:
        e = np.array([r[f"{eng}_zz"] for r in rows])
        t = np.array([r[f"{eng}_s"] for r in rows])
        worse = int(np.sum(ours > e * (1 + 1e-9)))
        lines.append(f"- vs ZigZag {eng.upper()}: ours/{eng} energy mean {np.mean(ours / e):.4f}, min {np.min(ours / e):.4f}, "
                     f"max {np.max(ours / e):.4f}; layers where ours is worse: {worse}; total energy ratio "
                     f"{ours.sum() / e.sum():.4f}; search time per layer mean ours {t_ours.mean():.2f}s vs {eng} "
                     f"{t.mean():.1f}s (speed-up per layer min {np.min(t / t_ours):.1f}x, median {np.median(t / t_ours):.1f}x)")
        om = [r[f"{eng}_ours_model"] for r in rows]
        ok = [(a, r[f"{eng}_zz"]) for a, r in zip(om, rows) if isinstance(a, float)]
        if ok:
            dev = max(abs(a / b - 1) for a, b in ok)
            lines.append(f"  - agreement on {eng.upper()}'s mappings: max |ours/zigzag - 1| = {dev:.2e} over {len(ok)} layers")
    ex = [r for r in rows if r.get("exh_opt") not in (None, "")]
    if ex:
        lines.append(f"- exhaustive-feasible layers: {len(ex)}; auto found the optimum on "
                     f"{sum(bool(r['auto_is_opt']) for r in ex)}, annealing alone on {sum(bool(r['anneal_is_opt']) for r in ex)}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
