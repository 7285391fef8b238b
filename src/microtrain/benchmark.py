"""`microtrain bench`: reference models x targets x (inference fp32, inference
int8, one training step per strategy) -> executed instructions (not cycles),
MACs, instructions/MAC, flash and RAM, as a markdown and a CSV table.

Counts come from `CompiledModel.profile` / `CompiledTrainer.profile` (QEMU's
counting plugin on MCU targets, callgrind on host for inference); memory from
the linked firmware (`footprint`). A model that does not fit a target is a
row saying so, with the numbers from the TargetFitError."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from .errors import BuildError, MicrotrainError

# Small configurations, so the whole table runs in minutes under emulation.
# int8_kwargs: the export for the int8 row when it differs (BatchNorm folds
# into the conv; GroupNorm/LayerNorm-over-channels has no integer form).
BENCH_MODELS: dict[str, dict] = {
    "eegnet": dict(kwargs=dict(chans=4, samples=256, norm="layer"), classes=4,
                   int8_kwargs=dict(chans=4, samples=256, norm="batch")),
    "epidenet": dict(kwargs=dict(samples=500, norm="layer"), classes=11,
                     int8_kwargs=dict(samples=500, norm="batch")),
    "cct": dict(kwargs=dict(img_size=16, embed_dim=32, tokenizer_channels=(16, 32), layers=1, heads=2,
                            qkv="separate"), classes=10, lora_targets="*self_attn*"),
}
BENCH_TARGETS = ("host", "cortex-m4", "cortex-m7", "rv32imc", "rv32imfc")
STRATEGIES = ("full", "last-layer", "bias-only", "lora")
MODES = ("inference fp32", "inference int8", *(f"train {s}" for s in STRATEGIES))
COLUMNS = ("model", "target", "mode", "status", "instructions", "macs", "instructions_per_mac",
           "flash_bytes", "ram_bytes", "note")


@dataclass
class BenchRow:
    model: str
    target: str
    mode: str
    status: str = "ok"
    instructions: Optional[int] = None
    macs: Optional[int] = None
    flash_bytes: Optional[int] = None
    ram_bytes: Optional[int] = None
    note: str = ""

    @property
    def instructions_per_mac(self) -> Optional[float]:
        if self.instructions is None or not self.macs:
            return None
        return self.instructions / self.macs

    def values(self) -> list:
        ipm = self.instructions_per_mac
        return [self.model, self.target, self.mode, self.status, self.instructions, self.macs,
                None if ipm is None else round(ipm, 3), self.flash_bytes, self.ram_bytes, self.note]


@dataclass
class BenchResult:
    rows: list[BenchRow] = field(default_factory=list)
    timelines: list[Path] = field(default_factory=list)

    def markdown(self) -> str:
        head = ["model", "target", "mode", "instructions", "MACs", "instr/MAC", "flash B", "RAM B", "note"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 3 + "---:|" * 5 + "---|"]
        for r in self.rows:
            if r.status != "ok":
                cells = [r.model, r.target, r.mode, r.status, "", "", "", "", r.note]
            else:
                ipm = r.instructions_per_mac
                cells = [r.model, r.target, r.mode, _num(r.instructions), _num(r.macs),
                         "–" if ipm is None else f"{ipm:.2f}", _num(r.flash_bytes), _num(r.ram_bytes), r.note]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def summary_markdown(self) -> str:
        """One row per (model, mode), one column per target: instructions
        and instructions/MAC (or why there is no number), then MACs and the
        flash/RAM of the first MCU target with numbers."""
        targets = list(dict.fromkeys(r.target for r in self.rows))
        keys = list(dict.fromkeys((r.model, r.mode) for r in self.rows))
        cell = {(r.model, r.mode, r.target): r for r in self.rows}
        head = ["model", "mode", "MACs", *targets, "flash / RAM B"]
        lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(targets) + 2)]
        for model, mode in keys:
            rows = [cell.get((model, mode, t)) for t in targets]
            ok = [r for r in rows if r is not None and r.status == "ok"]
            macs = next((r.macs for r in ok if r.macs), None)
            mem = next((r for r in ok if r.flash_bytes is not None), None)
            cells = []
            for r in rows:
                if r is None:
                    cells.append("")
                elif r.status != "ok":
                    cells.append(r.status)
                else:
                    ipm = r.instructions_per_mac
                    cells.append(_num(r.instructions) + ("" if ipm is None else f" ({ipm:.2f}/MAC)"))
            memtxt = f"{mem.flash_bytes:,} / {mem.ram_bytes:,} ({mem.target})" if mem else "–"
            lines.append("| " + " | ".join([model, mode, _num(macs), *cells, memtxt]) + " |")
        return "\n".join(lines) + "\n"

    def write(self, out_dir) -> tuple[Path, Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md, cs = out / "bench.md", out / "bench.csv"
        md.write_text("Executed instructions (not cycles), MACs and memory per model x target x mode.\n\n"
                      "## Summary\n\n" + self.summary_markdown() + "\n## All rows\n\n" + self.markdown())
        with cs.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            for r in self.rows:
                w.writerow(["" if v is None else v for v in r.values()])
        return md, cs


def _num(v) -> str:
    return "–" if v is None else f"{v:,}"


def _fit_numbers(exc: Exception) -> str:
    """'does not fit: <what needs how much>' from a TargetFitError message
    (the advice part is the same for every row and left out)."""
    msg = str(exc).split("; to make it fit")[0]
    if ": " in msg:
        msg = msg.split(": ", 1)[1]
    return "does not fit: " + msg.replace("|", "/")


def _model_proto(name: str, cfg: dict):
    from .models import get_model
    return get_model(name).export(**cfg["kwargs"])


def _int8_proto(name: str, cfg: dict, proto):
    if "int8_kwargs" not in cfg:
        return proto
    from .models import get_model
    return get_model(name).export(**cfg["int8_kwargs"])


def _int8_note(cfg: dict) -> str:
    diff = {k: v for k, v in cfg["int8_kwargs"].items() if cfg["kwargs"].get(k) != v}
    return "int8 export: " + ", ".join(f"{k}={v}" for k, v in diff.items())


def _inputs(graph_inputs: dict, rng) -> dict:
    return {n: rng.standard_normal(t.shape).astype(t.dtype) for n, t in graph_inputs.items()}


def graph_macs(graph) -> int:
    """MACs of every node of `graph` (each op's `macs` rule, as the report)."""
    from .ops.registry import Value, get_op
    total = 0
    for node in graph.nodes:
        op = get_op(node)
        if not op.macs:
            continue
        ins = [Value(graph.type_of(i), graph.constants.get(i)) if i else Value(None) for i in node.inputs]
        total += int(op.macs(node, ins, [graph.type_of(o) for o in node.outputs if o]))
    return total


def _training_macs(trainer) -> int:
    """MACs of one optimizer step: the forward+backward graph per micro-batch
    times the micro-batches, plus the update graph."""
    prog = trainer.program
    macs = graph_macs(prog.micro) * (prog.spec.batch // prog.spec.micro_batch)
    return macs + (graph_macs(prog.apply) if prog.apply is not None else 0)


CALIBRATION_SAMPLES = 8


def quantize_for_bench(proto, seed: int = 0):
    """The model quantized (microtrain.quantize, minmax, per channel) from
    CALIBRATION_SAMPLES seeded standard-normal inputs, and float inputs for
    the measured run (the reference models' inputs are normalized signals or
    images, so N(0, 1) is their scale)."""
    from .compiler import lower_to_graph
    from .quantization import quantize
    graph = lower_to_graph(proto)
    types = {n: graph.types[n] for n in graph.inputs}
    rng = np.random.default_rng(seed)
    calib = [_inputs(types, rng) for _ in range(CALIBRATION_SAMPLES)]
    return quantize(proto, calib, progress=False), _inputs(types, rng)


def bench_inference(name: str, proto, target: str, seed: int = 0,
                    timeline_dir: Optional[Path] = None, int8: bool = False) -> tuple[BenchRow, Optional[Path]]:
    """One inference of the fp32 model, or with `int8` of the quantized one
    (quantize_for_bench; int8 inputs from the same float inputs)."""
    from .compiler import compile as mt_compile
    from .targets import TargetFitError, get_target
    row = BenchRow(name, get_target(target).name, "inference int8" if int8 else "inference fp32")
    if int8:
        from .quantization import quantize_inputs
        try:
            proto, float_inputs = quantize_for_bench(proto, seed)
        except BuildError:
            raise
        except MicrotrainError as exc:      # an op the quantizer has no rule for
            row.status = f"n/a: {str(exc)[:140]}".replace("|", "/")
            return row, None
    try:
        cm = mt_compile(proto, target)
    except TargetFitError as exc:
        row.status = _fit_numbers(exc)
        return row, None
    rng = np.random.default_rng(seed)
    if int8:
        inputs = quantize_inputs(proto, float_inputs)
    else:
        inputs = _inputs({n: cm.graph.types[n] for n in cm.input_names}, rng)
    row.macs = cm.report.macs
    timeline = None
    if timeline_dir is not None:
        from .timeline import plot_memory_timeline
        timeline = plot_memory_timeline(cm, Path(timeline_dir) / f"timeline-{name}-{target}.png",
                                        title=f"{name}: arena occupancy (inference, {target})")
    try:
        prof = cm.profile(inputs)
        row.instructions = prof.instructions
    except BuildError as exc:
        if not get_target(target).is_host:
            raise
        row.note = f"not counted: {exc}"[:120]
    fp = cm.footprint
    if fp is not None:
        row.flash_bytes, row.ram_bytes = fp.flash_bytes, fp.ram_bytes
    else:
        row.note = (row.note + "; " if row.note else "") + "x86-64 instructions (callgrind); no memory limits"
    return row, timeline


def bench_training(name: str, proto, cfg: dict, target: str, strategy: str, seed: int = 0) -> BenchRow:
    from .targets import TargetFitError, get_target
    from .training import compile_training
    row = BenchRow(name, get_target(target).name, f"train {strategy}")
    if get_target(target).is_host:
        row.status = "n/a (training counted on emulated targets only)"
        return row
    extra = {}
    if strategy == "lora":
        extra = dict(lora_rank=4, lora_alpha=16.0)
        if cfg.get("lora_targets"):
            extra["lora_targets"] = cfg["lora_targets"]
    try:
        tr = compile_training(proto, strategy=strategy, optimizer="sgd", lr=1e-3, batch=1, micro_batch=1,
                              target=target, **extra)
        row.macs = _training_macs(tr)
        fp = tr.footprint      # builds the firmware: a fit error comes here at the latest
        rng = np.random.default_rng(seed)
        xs = {n: rng.standard_normal(tr.program.micro.types[n].shape).astype(np.float32)
              for n in tr.program.input_names}
        y = rng.integers(0, cfg["classes"], tr.batch)
        prof = tr.profile(xs, y)
        row.instructions = prof.instructions
        row.flash_bytes, row.ram_bytes = fp.flash_bytes, fp.ram_bytes
    except TargetFitError as exc:
        row.status = _fit_numbers(exc)
    except BuildError:
        raise
    except MicrotrainError as exc:     # e.g. bias-only on a model without biases
        row.status = f"n/a: {str(exc)[:140]}".replace("|", "/")
    return row


def run_bench(models: Sequence[str] = tuple(BENCH_MODELS), targets: Sequence[str] = BENCH_TARGETS,
              modes: Sequence[str] = MODES, *, timeline_dir=None, progress: bool = True,
              seed: int = 0, configs: Optional[dict] = None,
              on_row: Optional[Callable[[BenchRow], None]] = None) -> BenchResult:
    """Run every (model, target, mode); `configs` overrides BENCH_MODELS
    (model name -> dict(kwargs=..., classes=..., lora_targets=...))."""
    from .targets import get_target
    configs = {**BENCH_MODELS, **(configs or {})}
    for m in models:
        if m not in configs:
            raise MicrotrainError(f"bench: unknown model {m!r}; choose from {', '.join(configs)}")
    for t in targets:
        get_target(t)
    for mode in modes:
        if mode not in MODES:
            raise MicrotrainError(f"bench: unknown mode {mode!r}; choose from {', '.join(MODES)}")
    from tqdm import tqdm
    result = BenchResult()
    total = len(models) * len(targets) * len(modes)
    bar = tqdm(total=total, disable=not progress, desc="microtrain bench", unit="run")
    for name in models:
        cfg = configs[name]
        proto = _model_proto(name, cfg)
        for target in targets:
            for mode in modes:
                bar.set_postfix_str(f"{name} {target} {mode}")
                try:
                    if mode == "inference int8":
                        row, _ = bench_inference(name, _int8_proto(name, cfg, proto), target, seed, int8=True)
                        if "int8_kwargs" in cfg and row.status == "ok":
                            row.note = "; ".join(x for x in (row.note, _int8_note(cfg)) if x)
                    elif mode == "inference fp32":
                        row, tl = bench_inference(name, proto, target, seed,
                                                  Path(timeline_dir) if timeline_dir else None)
                        if tl is not None:
                            result.timelines.append(tl)
                    else:
                        row = bench_training(name, proto, cfg, target, mode.split(" ", 1)[1], seed)
                except BuildError as exc:   # a failed build or emulator run: say so, go on
                    row = BenchRow(name, get_target(target).name, mode, status=f"error: {str(exc)[:160]}".replace("|", "/"))
                result.rows.append(row)
                if on_row is not None:
                    on_row(row)
                bar.update(1)
    bar.close()
    return result

