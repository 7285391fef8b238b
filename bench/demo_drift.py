"""The `microtrain demo --full` real-drift protocol for chosen strategies, one JSON line per split.

    python bench/demo_drift.py out.jsonl                                  # none, renorm, full, renorm-full
    python bench/demo_drift.py out.jsonl --strategies last-layer,full --seeds 0,1
    python bench/demo_drift.py sel.jsonl --select --strategies full   # lr / epochs chosen on the slice
    python bench/demo_drift.py rp.jsonl --strategies full-replay      # full + 32-trial rehearsal buffer
    python bench/demo_drift.py epi.jsonl --model epidenet --strategies last-layer,bias-only,full,lora

Same groups, pretraining (FULL preset: 60 epochs), splits, C programs and
PyTorch twin as `microtrain demo --full`; each trained strategy's C run is
independent of the others, so a subset reproduces the demo's numbers for
those strategies exactly. Lines are appended as splits finish, so a run cut
short on a loaded host still leaves every finished split. `none` and
`renorm` are always evaluated (they need no training)."""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from microtrain.demo.config import FULL, MODELS
from microtrain.demo.pretraining import pretrain, to_onnx, torch_accuracy
from microtrain.demo.protocols import longitudinal_groups, model_input
from microtrain.demo.selection import selection_fields
from microtrain.demo.rehearsal import rehearsal_buffer
from microtrain.demo.strategies import OPTIONAL, TRAINED, adapt_in_c, input_stats, lora_targets, training_set
from microtrain.demo.torch_twin import max_relative_difference, replay


def split_row(net, c: dict, split, stats, trained, seed: int, rehearsal=None) -> dict:
    row = dict(protocol=split.protocol, run=split.run, n_adapt=len(split.y_adapt), n_test=len(split.y_test))
    for s in ("none", "renorm", *trained):
        used = input_stats(s, stats, split.x_adapt)
        x_test = model_input(split.x_test, used)
        if s in ("none", "renorm"):
            t_acc, diff = torch_accuracy(net, x_test, split.y_test), None
        else:
            twin, final = replay(net, c[s].program, c[s].init, *training_set(s, split, stats, rehearsal),
                                 c[s].epochs, seed)
            t_acc, diff = torch_accuracy(twin, x_test, split.y_test), max_relative_difference(c[s].final, final)
        row[s] = dict(c=c[s].accuracy, torch=t_acc, weight_rel_diff=diff, **selection_fields(c[s]))
    return row


def summarize(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        mine = [r for r in rows if r["protocol"] == protocol]
        print(f"{protocol}: {len(mine)} run(s)")
        for s in [k for k in mine[0] if isinstance(mine[0][k], dict)]:
            c = np.array([r[s]["c"] for r in mine])
            worst = max(abs(r[s]["c"] - r[s]["torch"]) for r in mine)
            diffs = [r[s]["weight_rel_diff"] for r in mine if r[s]["weight_rel_diff"] is not None]
            gain = 100 * (c.mean() - np.mean([r['none']['c'] for r in mine]))
            print(f"  {s:<12} {c.mean():.3f} ± {c.std():.3f}   gain over none {gain:+.1f} pp   "
                  f"max|C-torch| {100 * worst:.2f} pp   max weight rel. diff {max(diffs, default=0):.1e}")
            if "lr" in mine[0][s]:
                print("               chosen (lr, epochs) per run: "
                      + ", ".join(f"({r[s]['lr']:.2g}, {r[s]['epochs']})" for r in mine))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON-lines file (appended)")
    ap.add_argument("--strategies", default="full,renorm-full", help=f"trained strategies, of {','.join(TRAINED + OPTIONAL)}")
    ap.add_argument("--seeds", default=",".join(map(str, FULL.seeds)))
    ap.add_argument("--select", action="store_true",
                    help="choose each strategy's lr and epochs on the slice's inner validation split")
    ap.add_argument("--model", choices=sorted(MODELS), default="eegnet", help="the reference model")
    ap.add_argument("--summary", action="store_true", help="only print the summary of `out`")
    args = ap.parse_args()
    if not args.summary:
        import torch
        torch.set_num_threads(1)
        trained = tuple(args.strategies.split(","))
        unknown = [s for s in trained if s not in TRAINED + OPTIONAL]
        if unknown:
            raise SystemExit(f"--strategies: unknown {','.join(unknown)}; choose from {','.join(TRAINED + OPTIONAL)}")
        cfg = FULL.with_(select=args.select, model=args.model)
        with open(args.out, "a") as out:
            for g in longitudinal_groups(tuple(int(s) for s in args.seeds.split(",")), FULL.fractions):
                t0 = time.perf_counter()
                stats = g.stats
                net = pretrain(model_input(g.x_pre, stats), g.y_pre, g.seed, FULL.pretrain_epochs, cfg.model)
                proto, lora_on = to_onnx(net, cfg.model), lora_targets(net)
                buffer = rehearsal_buffer(g.x_pre, g.y_pre, g.seed)    # drawn before any adaptation
                for split in g.splits:
                    c = adapt_in_c(proto, split, stats, cfg, lora_on, g.seed, trained=trained, rehearsal=buffer)
                    row = split_row(net, c, split, stats, trained, g.seed, rehearsal=buffer)
                    row["select"], row["model"] = cfg.select, cfg.model
                    row["seconds"] = round(time.perf_counter() - t0)
                    out.write(json.dumps(row) + "\n")
                    out.flush()
    summarize(args.out)


if __name__ == "__main__":
    main()
