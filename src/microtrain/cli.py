"""The `microtrain` command line. Every user-caused error ends as one line on
stderr and exit code 2 — never a traceback."""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from .errors import MicrotrainError

EXIT_USER_ERROR = 2
EXIT_MISMATCH = 1


def _parse_input_shapes(values: tuple[str, ...]) -> dict[str, str]:
    shapes = {}
    for v in values:
        if "=" not in v:
            raise MicrotrainError(f"--input-shape '{v}': write it as NAME=1x3x32x32")
        name, shape = v.rsplit("=", 1)
        shapes[name] = shape
    return shapes


input_shape_option = click.option(
    "--input-shape", "input_shapes", multiple=True, metavar="NAME=DIMS",
    help="Fix an input's shape, e.g. --input-shape input=1x3x32x32 (repeatable).")


cores_option = click.option(
    "--cores", default=1, show_default=True, type=int,
    help="Split Conv/Gemm/MatMul/pooling/norm work over N cores (host: pthreads; rv32imfc: up to 8, "
         "counted per core with an N-core estimate).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="microtrain")
def cli():
    """microtrain: compile small neural networks into static, verified C for microcontrollers."""


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@input_shape_option
@click.option("--timeline", "timeline_png", default=None, type=click.Path(dir_okay=False),
              help="Also plot the arena occupancy over the schedule to this PNG (needs matplotlib).")
def inspect(model, input_shapes, timeline_png):
    """Layers, shapes, parameters, MACs and the arena plan of MODEL."""
    from .compiler import lower_to_graph
    from .planner import plan_memory
    from .report import make_report
    graph = lower_to_graph(model, _parse_input_shapes(input_shapes))
    plan = plan_memory(graph)
    report = make_report(graph, plan)
    click.echo(f"model {model}: {len(graph.nodes)} layers, inputs "
               + ", ".join(f"{i}: {graph.types[i]}" for i in graph.inputs))
    click.echo(report.table())
    click.echo("\narena plan (offset, bytes, live steps, tensors):")
    for b in sorted(plan.buffers, key=lambda b: (b.offset, b.start)):
        click.echo(f"  @{b.offset:>8}  {b.size:>8} B  steps {b.start:>3}-{b.end:<3} {', '.join(b.tensors)[:70]}")
    if timeline_png:
        from .timeline import plot_memory_timeline, timeline_of_plan
        tl = timeline_of_plan(graph, plan, Path(model).name)
        click.echo(f"wrote {plot_memory_timeline(tl, timeline_png)} (peak {max(tl.live_bytes, default=0):,} B "
                   f"live at step {tl.peak_step})")


@cli.command("compile")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--target", default="host", show_default=True, help="Target description name.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for the generated C project (builds with `make`).")
@input_shape_option
@cores_option
def compile_cmd(model, target, out_dir, input_shapes, cores):
    """Write MODEL as a self-contained C project."""
    from .compiler import compile as mt_compile
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / "network.c").exists():
        raise MicrotrainError(f"{out}: directory exists and is not a microtrain project; "
                              "choose an empty or new directory (nothing was written)")
    cm = mt_compile(model, target, out_dir=out, input_shapes=_parse_input_shapes(input_shapes), cores=cores)
    click.echo(cm.report.table())
    if target == "host":
        click.echo(f"wrote {out}/ (network.c network.h weights.c main.c Makefile runtime/): "
                   f"`make -C {out}` builds ./network; run it as ./network inputs.bin outputs.bin")
    else:
        click.echo(f"wrote {out}/ and built {out}/build-{target}/firmware.elf; "
                   f"{out}/build-{target}/run.sh runs it under "
                   + ("the Unicorn co-simulation with the accelerator model" if cm.target_info.accelerator
                      else "QEMU"))


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False),
              help=".npz with one array per model input (random inputs if omitted).")
@click.option("--example", is_flag=True, help="Use the bundled example model.")
@click.option("--seed", default=0, show_default=True, help="Seed for random inputs.")
@click.option("--target", default="host", show_default=True,
              help="host, or an emulated MCU: cortex-m4, cortex-m7, rv32imc, rv32imfc, rv32imc+ita (int8 attention on the ITA model).")
@click.option("--profile", is_flag=True, help="Also print instruction counts per layer (instructions, not cycles).")
@click.option("--float-model", type=click.Path(dir_okay=False),
              help="For a quantized MODEL: the fp32 model to compare the int8 outputs with.")
@input_shape_option
@cores_option
def run(model, inputs_path, example, seed, target, profile, float_model, input_shapes, cores):
    """Compile MODEL, run the C (host or emulated MCU) and compare with onnxruntime
    (a quantized MODEL: with the integer golden model and, given --float-model, the fp32 model;
    float --inputs are quantized with the model's input scales, an array 'y' in them is labels)."""
    from .compiler import compile as mt_compile
    from .golden import check_inputs
    if example:
        from .examples import example_model_path
        model = str(example_model_path())
    if not model:
        raise MicrotrainError("give a MODEL path (or --example for the bundled model)")
    cm = mt_compile(model, target, input_shapes=_parse_input_shapes(input_shapes), cores=cores)
    if _is_quantized(model):
        _run_quantized(cm, model, inputs_path, seed, float_model, profile)
        return
    if float_model:
        raise MicrotrainError(f"--float-model is for quantized models; {model} is not one "
                              "(make one with `microtrain quantize`)")
    inputs = _load_inputs(inputs_path, cm, seed)
    inputs = check_inputs(cm.graph, inputs)
    got = cm.run(inputs)
    want, oracle = _oracle(model, inputs, cm)
    layer_err = {name: err for name, _, err in cm.compare_layers(inputs)}
    click.echo(_table_with_errors(cm.report, layer_err))
    click.echo(f"\ncomparison with {oracle} (float tolerance: rtol 1e-4, atol 1e-5 x max|ref|):")
    ok = True
    for name in cm.output_names:
        g, w = got[name], np.asarray(want[name])
        err = float(np.max(np.abs(g.astype(np.float64) - w))) if g.size else 0.0
        scale = max(1.0, float(np.max(np.abs(w)))) if w.size else 1.0
        good = g.shape == w.shape and bool(np.allclose(g, w, rtol=1e-4, atol=1e-5 * scale))
        ok &= good
        click.echo(f"  {name:<24} shape {str(tuple(g.shape)):<16} max abs error {err:.3g}  "
                   + ("OK" if good else "MISMATCH"))
    click.echo(f"arena {cm.report.arena_bytes:,} B (lower bound {cm.report.lower_bound_bytes:,} B), "
               f"weights {cm.report.weight_bytes:,} B")
    if profile:
        click.echo(cm.profile(inputs).table())
    if not ok:
        sys.exit(EXIT_MISMATCH)


def _is_quantized(model) -> bool:
    from .frontend import load_model
    from .quantization import io_params
    return bool(io_params(load_model(model)[0]))


def _run_quantized(cm, model, inputs_path, seed, float_model, profile):
    from .quantization.compare import compare_quantized, random_float_inputs
    labels = None
    if inputs_path:
        data = _load_inputs(inputs_path, cm, seed)
        labels = data.pop("y", None)
        if len(cm.input_names) == 1 and len(data) == 1:
            data = {cm.input_names[0]: next(iter(data.values()))}
    else:
        data = random_float_inputs(model, cm.graph, seed)
    lines, ok = compare_quantized(cm, model, data, float_model, labels)
    click.echo(cm.report.table())
    click.echo("\n".join(lines))
    if profile:
        from .quantization import quantize_inputs
        click.echo(cm.profile(quantize_inputs(model, data)).table())
    if not ok:
        sys.exit(EXIT_MISMATCH)


@cli.command("quantize")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--calib", "calib_path", required=True, type=click.Path(dir_okay=False),
              help=".npz with calibration samples: one array per model input (batch first).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Where to write the quantized model (.onnx).")
@click.option("--method", default="minmax", show_default=True, help="minmax | percentile | mse")
@click.option("--percentile", default=99.99, show_default=True, type=float)
@click.option("--per-tensor", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--softmax", default="ita", show_default=True, type=click.Choice(["ita", "ibert"]),
              help="Integer softmax: ITA streaming (shift-only exp) or I-BERT (polynomial exp).")
@click.option("--fwsa", is_flag=True, help="Fused-weight self-attention where it lowers MACs, before quantizing.")
@input_shape_option
def quantize_cmd(model, calib_path, out_path, method, percentile, per_tensor, softmax, fwsa, input_shapes):
    """Post-training int8 quantization of MODEL from calibration data."""
    import onnx
    from .quantization import io_params, quantize
    if Path(out_path).resolve() == Path(model).resolve():
        raise MicrotrainError(f"-o {out_path} would overwrite the input model; choose another path")
    try:
        calib = dict(np.load(calib_path))
    except Exception as exc:
        raise MicrotrainError(f"{calib_path}: cannot read calibration data ({type(exc).__name__}); "
                              "give an .npz saved with numpy.savez") from None
    q = quantize(model, calib if len(calib) != 1 else next(iter(calib.values())), method=method,
                 percentile=percentile, per_channel=not per_tensor, softmax=softmax, fwsa=fwsa,
                 input_shapes=_parse_input_shapes(input_shapes))
    onnx.save(q, out_path)
    click.echo(f"wrote {out_path}: {len(q.graph.node)} integer nodes, int8 inputs/outputs "
               + ", ".join(f"{k} (scale {s:.6g}, zero point {z})" for k, (s, z) in io_params(q).items()))


def _table_with_errors(report, layer_err: dict) -> str:
    lines = report.table().splitlines()
    out = [lines[0] + f" {'|C-golden|':>11}"]
    for row, line in zip(report.layers, lines[1:]):
        out.append(line + f" {layer_err.get(row.name, 0.0):>11.2e}")
    out.extend(lines[1 + len(report.layers):])
    return "\n".join(out)


def _load_inputs(path, cm, seed) -> dict[str, np.ndarray]:
    names = cm.input_names
    if path:
        try:
            data = dict(np.load(path))
        except Exception as exc:
            raise MicrotrainError(f"{path}: cannot read inputs ({type(exc).__name__}); "
                                  "give an .npz saved with numpy.savez") from None
        if len(names) == 1 and len(data) == 1 and names[0] not in data:
            data = {names[0]: next(iter(data.values()))}
        return data
    rng = np.random.default_rng(seed)
    out = {}
    for n in names:
        t = cm.graph.types[n]
        if np.issubdtype(t.dtype, np.floating):
            out[n] = rng.standard_normal(t.shape).astype(t.dtype)
        else:
            out[n] = np.zeros(t.shape, dtype=t.dtype)  # ids/indices: 0 is always in range
    return out


def _oracle(model, inputs, cm):
    try:
        import onnxruntime as ort
    except ImportError:
        return cm.reference(inputs), "the numpy golden model (onnxruntime not installed)"
    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
        res = sess.run(None, inputs)
    except Exception as exc:
        click.echo(f"note: onnxruntime could not run the model ({type(exc).__name__}); "
                   "comparing with the golden model", err=True)
        return cm.reference(inputs), "the numpy golden model"
    return dict(zip([o.name for o in sess.get_outputs()], res)), "onnxruntime"


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", "data_path", required=True, type=click.Path(dir_okay=False),
              help=".npz with arrays x (inputs, batch first) and y (labels/targets); optional x_val, y_val.")
@click.option("--strategy", default="full", show_default=True,
              help="full | last-layer | layers | bias-only | lora")
@click.option("--layers", default=None, help="For --strategy layers: names or glob patterns, comma-separated.")
@click.option("--loss", default="cross_entropy", show_default=True, help="cross_entropy | mse")
@click.option("--optimizer", default="sgd", show_default=True, help="sgd | adam")
@click.option("--lr", default=0.01, show_default=True, type=float)
@click.option("--momentum", default=0.0, show_default=True, type=float)
@click.option("--weight-decay", default=0.0, show_default=True, type=float)
@click.option("--epochs", default=1, show_default=True, type=int)
@click.option("--batch", default=1, show_default=True, type=int, help="Samples per optimizer step.")
@click.option("--micro-batch", default=None, type=int, help="Samples per forward/backward pass (gradient accumulation).")
@click.option("--lora-rank", default=4, show_default=True, type=int)
@click.option("--lora-alpha", default=8.0, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batchnorm", default="frozen", show_default=True, help="frozen | train | group | layer")
@click.option("--recompute", default=None, help="Op types or node globs to recompute in the backward (comma-separated).")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Write the trained inference model here (.onnx). Never overwrites MODEL.")
def train(model, data_path, strategy, layers, loss, optimizer, lr, momentum, weight_decay, epochs, batch,
          micro_batch, lora_rank, lora_alpha, seed, batchnorm, recompute, out_path):
    """Fine-tune MODEL in the generated C training step on --data."""
    from .training import compile_training
    if out_path and Path(out_path).resolve() == Path(model).resolve():
        raise MicrotrainError(f"-o {out_path} would overwrite the input model; choose another path")
    try:
        data = dict(np.load(data_path))
    except Exception as exc:
        raise MicrotrainError(f"{data_path}: cannot read training data ({type(exc).__name__}); "
                              "give an .npz with arrays x and y") from None
    if "x" not in data or "y" not in data:
        raise MicrotrainError(f"{data_path}: needs arrays 'x' and 'y' (found {sorted(data)})")
    trainer = compile_training(model, strategy=strategy, layers=layers, loss=loss, optimizer=optimizer, lr=lr,
                               momentum=momentum, weight_decay=weight_decay, batch=batch,
                               micro_batch=micro_batch, lora_rank=lora_rank, lora_alpha=lora_alpha,
                               batchnorm=batchnorm, recompute=recompute)
    x, y = data["x"], data["y"]
    xv, yv = data.get("x_val", x), data.get("y_val", y)
    from tqdm import tqdm
    rows = []
    for epoch in tqdm(range(1, epochs + 1), desc="training", unit="epoch"):
        hist = trainer.fit(x, y, epochs=1, shuffle=True, seed=seed + epoch)
        ev = trainer.evaluate(xv, yv)
        rows.append((epoch, hist["loss"][0], ev.get("loss"), ev.get("accuracy")))
    click.echo(f"{'epoch':>5} {'train loss':>11} {'eval loss':>10} {'eval acc':>9}")
    for e, tl, vl, acc in rows:
        click.echo(f"{e:>5} {tl:>11.4f} {vl:>10.4f} " + (f"{acc:>9.3f}" if acc is not None else f"{'-':>9}"))
    click.echo(trainer.report.table())
    if out_path:
        trainer.export_onnx(out_path)
        click.echo(f"wrote the trained inference model to {out_path}")


@cli.command()
def ops():
    """List the supported ONNX operators."""
    from .ops.registry import compiled_ops, supported_ops
    compiled = set(compiled_ops())
    for name in supported_ops():
        click.echo(f"{name:<28} {'C kernel' if name in compiled else 'compile-time only (constant inputs)'}")


@cli.command()
@click.option("--full", is_flag=True, help="Every protocol and seed (5 seeds, 3 pseudo-subjects each, all "
              "MCU targets; ~35 min on a shared 2-core host) instead of the short version (~7 min).")
@click.option("--out", "out_dir", default="microtrain-demo", show_default=True, type=click.Path(),
              help="Folder for report.md, results.json and the PNG plots (only these files are written).")
@click.option("--select", is_flag=True, help="Choose each trained strategy's lr (x 1/3, 1, 3) and epochs on "
              "the adaptation slice's last 25 % (inner validation), then retrain on the whole slice (~3x the "
              "adaptation time).")
@click.option("--replay", is_flag=True, help="Also run \"full + replay\": full fine-tuning on the slice plus "
              "a rehearsal buffer of 32 class-balanced pretraining trials (one more full training per split).")
@click.option("--model", type=click.Choice(["eegnet", "epidenet"]), default="eegnet", show_default=True,
              help="The reference model, sized for SCP1 at 128 Hz (6 x 448): EEGNet-family or EpiDeNet-like.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
def demo(full, out_dir, select, replay, model, no_progress):
    """Real-EEG on-device adaptation: pretrain EEGNet (or EpiDeNet) in PyTorch, adapt it in the generated C."""
    from .demo import FULL, SHORT, run_demo
    from .demo.report import summary
    if select and replay:   # checked before pretraining; adapt_in_c refuses it too
        raise MicrotrainError("--select with --replay: the inner validation part would be rehearsal trials; "
                              "run them separately")
    result = run_demo((FULL if full else SHORT).with_(select=select, replay=replay, model=model), out_dir,
                      progress=not no_progress)
    click.echo(summary(result))
    click.echo(f"report: {result.out_dir / 'report.md'} (plots and results.json beside it)")


def _csv_option(value: str, allowed, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise MicrotrainError(f"--{what} {value!r}: choose from {', '.join(allowed)} (comma-separated)")
    return items


@cli.command()
@click.option("--models", default="eegnet,epidenet,cct", show_default=True,
              help="Reference models, comma-separated (small configurations, see docs/targets.md).")
@click.option("--targets", default="host,cortex-m4,cortex-m7,rv32imc,rv32imfc", show_default=True,
              help="Targets, comma-separated.")
@click.option("--modes", default=None,
              help="Comma-separated subset of: inference fp32, inference int8, train full, train last-layer, "
                   "train bias-only, train lora (default: all).")
@click.option("-o", "--out", "out_dir", default="bench-out", show_default=True, type=click.Path(file_okay=False),
              help="Directory for bench.md and bench.csv.")
@click.option("--timeline", is_flag=True, help="Also write a memory-timeline PNG per model and target "
              "(needs matplotlib: pip install 'microtrain[plot]').")
def bench(models, targets, modes, out_dir, timeline):
    """Instructions (not cycles), MACs, instructions/MAC, flash and RAM per
    reference model x target x mode, as markdown and CSV."""
    from .benchmark import BENCH_MODELS, BENCH_TARGETS, MODES, run_bench
    from .targets import TARGETS
    model_list = _csv_option(models, tuple(BENCH_MODELS), "models")
    target_list = _csv_option(targets, tuple(TARGETS) or BENCH_TARGETS, "targets")
    mode_list = _csv_option(modes, MODES, "modes") if modes else list(MODES)
    result = run_bench(model_list, target_list, mode_list, timeline_dir=out_dir if timeline else None)
    md, cs = result.write(out_dir)
    click.echo(result.markdown())
    click.echo(f"wrote {md} and {cs}" + "".join(f"\nwrote {p}" for p in result.timelines))


def _register_optional_commands():
    try:
        from .scheduler.cli import schedule_command
    except ImportError:
        return
    cli.add_command(schedule_command, "schedule")


_register_optional_commands()


def main(argv=None) -> None:
    try:
        cli.main(args=argv, prog_name="microtrain", standalone_mode=False)
    except MicrotrainError as exc:
        click.echo(f"microtrain: error: {exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort:
        click.echo("microtrain: aborted", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.ClickException as exc:
        click.echo(f"microtrain: error: {exc.format_message()}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except OSError as exc:
        click.echo(f"microtrain: error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: still one line, but say it is ours
        click.echo(f"microtrain: internal error ({type(exc).__name__}: {exc}); please report it "
                   "with the model", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()
